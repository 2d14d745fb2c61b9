package fake_test

import (
	"context"
	"net/netip"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/fake"
)

func TestReconcilerMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b := fake.New("fake metrics")
	r := dataplane.NewReconciler(b, nil, dataplane.WithMeterProvider(mp))
	defer r.Close()
	ctx := context.Background()
	s := dataplane.State{Routes: []dataplane.Route{
		{Dst: netip.MustParsePrefix("10.0.0.1/32"), Dev: "wg0"},
		{Dst: netip.MustParsePrefix("10.0.0.2/32"), Dev: "wg0"},
	}}
	for range 2 {
		if _, err := r.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Someone removes a route behind our back: the next Apply of the same state repairs it.
	b.Delete("route 10.0.0.2/32 table main metric 0")
	if _, err := r.Apply(ctx, s); err != nil {
		t.Fatal(err)
	}
	b.FailOn("route 10.0.0.3/32 table main metric 0")
	s.Routes = append(s.Routes, dataplane.Route{Dst: netip.MustParsePrefix("10.0.0.3/32"), Dev: "wg0"})
	if _, err := r.Apply(ctx, s); err == nil {
		t.Fatal("injected failure not reported")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	var gauge int64 = -1
	var histCount uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					key := m.Name
					for _, kv := range p.Attributes.ToSlice() {
						key += " " + string(kv.Key) + "=" + kv.Value.Emit()
					}
					sums[key] += p.Value
				}
			case metricdata.Gauge[int64]:
				gauge = d.DataPoints[0].Value
			case metricdata.Histogram[float64]:
				histCount = d.DataPoints[0].Count
			}
		}
	}
	tests := []struct {
		name string
		key  string
		want int64
	}{
		{name: "changed", key: "routerd_dataplane_reconcile_total result=changed", want: 2},
		{name: "unchanged", key: "routerd_dataplane_reconcile_total result=unchanged", want: 1},
		{name: "error", key: "routerd_dataplane_reconcile_total result=error", want: 1},
		{name: "route adds", key: "routerd_dataplane_changes_total kind=route op=add", want: 3},
		{name: "drift repaired", key: "routerd_dataplane_drift_repaired_total kind=route op=add", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if sums[tt.key] != tt.want {
				t.Errorf("%s = %d, want %d (all: %v)", tt.key, sums[tt.key], tt.want, sums)
			}
		})
	}
	if gauge != 2 {
		t.Errorf("routerd_dataplane_desired_objects = %d, want 2", gauge)
	}
	if histCount != 4 {
		t.Errorf("duration histogram count = %d, want 4", histCount)
	}
}
