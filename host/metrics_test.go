package host

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"routerd.net/routerd/abi"
)

// sumOf adds the data points of a counter that carry every attribute in want.
func sumOf(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (int64, bool) {
	var total int64
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			found = true
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
		next:
			for _, p := range points {
				for _, kv := range want {
					if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
						continue next
					}
				}
				total += p.Value
			}
		}
	}
	return total, found
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	spec := Spec{Name: "c", Module: "capcheck.wasm"}
	h := capHost(t, Options{MeterProvider: mp, BreakerThreshold: 2, BreakerCooldown: time.Hour}, spec)
	ctx := context.Background()
	if _, err := h.Call(ctx, "c", abi.HookOnEvents, capInput(t, op{Fn: "kv_get", Key: "a"}, op{Fn: "now"})); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, _ = h.Call(ctx, "c", abi.HookOnEvents, capInput(t, op{Fn: "raw", Value: "bad"}))
	}
	_, _ = h.Call(ctx, "c", abi.HookOnEvents, capInput(t, op{Fn: "now"})) // refused: breaker open

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	p := attribute.String("plugin", "c")
	tests := []struct {
		name   string
		metric string
		attrs  []attribute.KeyValue
		want   int64
	}{
		{name: "ok calls", metric: "routerd_plugin_calls", attrs: []attribute.KeyValue{p, attribute.String("outcome", "ok")}, want: 1},
		{name: "failed calls", metric: "routerd_plugin_calls", attrs: []attribute.KeyValue{p, attribute.String("outcome", "error")}, want: 3},
		{name: "bad output errors", metric: "routerd_plugin_errors", attrs: []attribute.KeyValue{p, attribute.String("kind", "bad_output")}, want: 2},
		{name: "circuit open errors", metric: "routerd_plugin_errors", attrs: []attribute.KeyValue{p, attribute.String("kind", "circuit_open")}, want: 1},
		{name: "denied host calls", metric: "routerd_plugin_hostcall_denied", attrs: []attribute.KeyValue{p, attribute.String("function", "kv_get")}, want: 1},
		{name: "host calls", metric: "routerd_plugin_hostcalls", attrs: []attribute.KeyValue{p}, want: 2},
		{name: "loads", metric: "routerd_plugin_loads", attrs: []attribute.KeyValue{p, attribute.String("outcome", "ok")}, want: 1},
		{name: "breaker open", metric: "routerd_plugin_breaker_state", attrs: []attribute.KeyValue{p}, want: int64(BreakerOpen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := sumOf(rm, tt.metric, tt.attrs...)
			if !found || got != tt.want {
				t.Fatalf("%s%v = %d (found %v), want %d", tt.metric, tt.attrs, got, found, tt.want)
			}
		})
	}
	// The serving version keeps its idle instances (how many are warm by now depends on
	// the background warm-up, but the instance of the first call went back to the pool).
	if got, found := sumOf(rm, "routerd_plugin_warm_instances", p); !found || got < 1 || got > int64(DefaultWarmInstances) {
		t.Errorf("routerd_plugin_warm_instances{plugin=c} = %d (found %v), want 1..%d", got, found, DefaultWarmInstances)
	}
	// Denials of functions never called are exported as 0 from the load on.
	var zeroSeries bool
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "routerd_plugin_hostcall_denied" {
				for _, dp := range d.DataPoints {
					if v, _ := dp.Attributes.Value("function"); v.AsString() == abi.FuncProviderRequest && dp.Value == 0 {
						zeroSeries = true
					}
				}
			}
		}
	}
	if !zeroSeries {
		t.Errorf("no routerd_plugin_hostcall_denied{plugin=c,function=%s} 0 series", abi.FuncProviderRequest)
	}
	var sawHistogram bool
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "routerd_plugin_call_duration" && m.Unit == "s" {
				for _, dp := range h.DataPoints {
					sawHistogram = sawHistogram || dp.Count > 0
				}
			}
		}
	}
	if !sawHistogram {
		t.Fatal("no routerd_plugin_call_duration data")
	}
}

func TestBreakerTransitions(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at      time.Duration // since t0
		outcome string        // "ok", "fail", "abort", or "" for allow-only
		allowed bool
		state   BreakerState
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "successes keep it closed", steps: []step{
			{0, "ok", true, BreakerClosed}, {1, "fail", true, BreakerClosed}, {2, "ok", true, BreakerClosed},
			{3, "fail", true, BreakerClosed}, {4, "fail", true, BreakerClosed}, {5, "ok", true, BreakerClosed},
		}},
		{name: "threshold opens, cool-down half-opens, success closes", steps: []step{
			{0, "fail", true, BreakerClosed}, {1, "fail", true, BreakerClosed}, {2, "fail", true, BreakerOpen},
			{3, "", false, BreakerOpen}, {12, "ok", true, BreakerClosed}, {13, "ok", true, BreakerClosed},
		}},
		{name: "failed trial reopens", steps: []step{
			{0, "fail", true, BreakerClosed}, {0, "fail", true, BreakerClosed}, {0, "fail", true, BreakerOpen},
			{10, "fail", true, BreakerOpen}, {15, "", false, BreakerOpen}, {20, "ok", true, BreakerClosed},
		}},
		{name: "aborted trial lets the next call try", steps: []step{
			{0, "fail", true, BreakerClosed}, {0, "fail", true, BreakerClosed}, {0, "fail", true, BreakerOpen},
			{10, "abort", true, BreakerHalfOpen}, {11, "ok", true, BreakerClosed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(3, 10*time.Second)
			for i, s := range tt.steps {
				now := t0.Add(s.at * time.Second)
				ok, _ := b.allow(now)
				if ok != s.allowed {
					t.Fatalf("step %d: allowed %v, want %v", i, ok, s.allowed)
				}
				if ok {
					switch s.outcome {
					case "ok":
						b.record(true, now)
					case "fail":
						b.record(false, now)
					case "abort":
						b.abort()
					}
				}
				if got := b.current(now); got != s.state {
					t.Fatalf("step %d: state %v, want %v", i, got, s.state)
				}
			}
		})
	}
}
