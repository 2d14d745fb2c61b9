package host

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// meterName is the instrumentation scope of the host's metrics.
const meterName = "routerd.net/routerd/host"

// instruments are the host's OTel metrics. Attributes are low-cardinality: plugin, hook,
// outcome, kind, function.
type instruments struct {
	calls    metric.Int64Counter         // routerd_plugin_calls_total{plugin,hook,outcome}
	errors   metric.Int64Counter         // routerd_plugin_errors_total{plugin,hook,kind}
	duration metric.Float64Histogram     // routerd_plugin_call_duration_seconds{plugin,hook}
	denied   metric.Int64Counter         // routerd_plugin_hostcall_denied_total{plugin,function}
	hostcall metric.Int64Counter         // routerd_plugin_hostcalls_total{plugin,function}
	loads    metric.Int64Counter         // routerd_plugin_loads_total{plugin,outcome}
	breaker  metric.Int64ObservableGauge // routerd_plugin_breaker_state{plugin}
	warm     metric.Int64ObservableGauge // routerd_plugin_warm_instances{plugin}
	reg      metric.Registration

	mu    sync.Mutex
	attrs map[[2]string]callAttrs // (plugin, hook) → precomputed attribute sets
}

// callAttrs are the attribute options of one (plugin, hook), built once.
type callAttrs struct {
	base metric.MeasurementOption // plugin, hook
	ok   metric.MeasurementOption // plugin, hook, outcome=ok
	fail metric.MeasurementOption // plugin, hook, outcome=error
}

// newInstruments creates the instruments; breakerStates and warmInstances feed the
// observable gauges at each collection.
func newInstruments(mp metric.MeterProvider, breakerStates func() map[string]BreakerState, warmInstances func() map[string]int) (*instruments, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	in := &instruments{attrs: make(map[[2]string]callAttrs)}
	var err error
	if in.calls, err = m.Int64Counter("routerd_plugin_calls", metric.WithDescription("Plugin hook calls by outcome (ok, error).")); err != nil {
		return nil, err
	}
	if in.errors, err = m.Int64Counter("routerd_plugin_errors", metric.WithDescription("Failed plugin hook calls by error kind (timeout, memory_limit, trap, ...).")); err != nil {
		return nil, err
	}
	if in.duration, err = m.Float64Histogram("routerd_plugin_call_duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of plugin hook calls."),
		metric.WithExplicitBucketBoundaries(5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 500e-3, 2)); err != nil {
		return nil, err
	}
	if in.denied, err = m.Int64Counter("routerd_plugin_hostcall_denied", metric.WithDescription("Host-function calls denied for lack of a grant, by function.")); err != nil {
		return nil, err
	}
	if in.hostcall, err = m.Int64Counter("routerd_plugin_hostcalls", metric.WithDescription("Host-function calls made by plugins, by function.")); err != nil {
		return nil, err
	}
	if in.loads, err = m.Int64Counter("routerd_plugin_loads", metric.WithDescription("Plugin module loads by outcome (ok, error).")); err != nil {
		return nil, err
	}
	if in.breaker, err = m.Int64ObservableGauge("routerd_plugin_breaker_state",
		metric.WithDescription("Circuit breaker state per plugin: 0 closed, 1 half-open, 2 open.")); err != nil {
		return nil, err
	}
	if in.warm, err = m.Int64ObservableGauge("routerd_plugin_warm_instances",
		metric.WithDescription("Idle instances kept ready per plugin (limits.warmInstances at most).")); err != nil {
		return nil, err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for name, st := range breakerStates() {
			o.ObserveInt64(in.breaker, int64(st), metric.WithAttributes(attribute.String("plugin", name)))
		}
		for name, n := range warmInstances() {
			o.ObserveInt64(in.warm, int64(n), metric.WithAttributes(attribute.String("plugin", name)))
		}
		return nil
	}, in.breaker, in.warm)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// forCall returns the precomputed attributes of (plugin, hook).
func (in *instruments) forCall(plugin, hook string) callAttrs {
	key := [2]string{plugin, hook}
	in.mu.Lock()
	defer in.mu.Unlock()
	a, ok := in.attrs[key]
	if !ok {
		p, h := attribute.String("plugin", plugin), attribute.String("hook", hook)
		a = callAttrs{
			base: metric.WithAttributeSet(attribute.NewSet(p, h)),
			ok:   metric.WithAttributeSet(attribute.NewSet(p, h, attribute.String("outcome", "ok"))),
			fail: metric.WithAttributeSet(attribute.NewSet(p, h, attribute.String("outcome", "error"))),
		}
		in.attrs[key] = a
	}
	return a
}

// observeCall records one call.
func (in *instruments) observeCall(ctx context.Context, plugin, hook string, seconds float64, err error) {
	a := in.forCall(plugin, hook)
	in.duration.Record(ctx, seconds, a.base)
	if err == nil {
		in.calls.Add(ctx, 1, a.ok)
		return
	}
	in.calls.Add(ctx, 1, a.fail)
	in.errors.Add(ctx, 1, metric.WithAttributes(attribute.String("plugin", plugin), attribute.String("hook", hook), attribute.String("kind", ErrorKind(err))))
}

// loaded starts plugin's denied-host-call series at 0 for every host function, so a
// dashboard's rate() over them works before the first denial.
func (in *instruments) loaded(ctx context.Context, plugin string, functions []string) {
	for _, fn := range functions {
		in.denied.Add(ctx, 0, metric.WithAttributeSet(attribute.NewSet(attribute.String("plugin", plugin), attribute.String("function", fn))))
	}
}

func (in *instruments) close() {
	if in.reg != nil {
		_ = in.reg.Unregister()
		in.reg = nil
	}
}

func attrString(k, v string) attribute.KeyValue { return attribute.String(k, v) }
