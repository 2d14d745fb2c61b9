package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"routerd.net/routerd/federation/event"
)

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	s, err := Open(filepath.Join(t.TempDir(), "routerd.db"), Options{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	batch := []event.Event{
		ev("a1", "ga", "t", "s", time.Minute), ev("a2", "ga", "t", "s", time.Minute),
		ev("b1", "gb", "t", "s", 0), ev("a1", "ga", "t", "s", 0),
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, PruneOptions{Now: t0.Add(time.Hour), Expired: true}); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range d.DataPoints {
					key := m.Name
					for _, kv := range p.Attributes.ToSlice() {
						key += "{" + string(kv.Key) + "=" + kv.Value.Emit() + "}"
					}
					sums[key] += p.Value
				}
			}
		}
	}
	tests := []struct {
		name string
		key  string
		want int64
	}{
		{name: "inserted in group ga", key: "routerd_store_events_inserted_total{group=ga}", want: 2},
		{name: "inserted in group gb", key: "routerd_store_events_inserted_total{group=gb}", want: 1},
		{name: "duplicate in ga", key: "routerd_store_events_duplicate_total{group=ga}", want: 1},
		{name: "pruned expired", key: "routerd_store_events_pruned_total{reason=expired}", want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sums[tc.key]; got != tc.want {
				t.Errorf("%s = %d, want %d (all: %v)", tc.key, got, tc.want, sums)
			}
		})
	}
}
