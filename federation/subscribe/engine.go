package subscribe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/retry"
)

// HookOnEvents is the plugin hook that receives subscription batches.
const HookOnEvents = "on_events"

// Options are the Engine's dependencies. Source, Cursors, Invoker and Handler are
// required.
type Options struct {
	Source   Source
	Cursors  Cursors
	Invoker  Invoker
	Handler  Handler
	Recorder RunRecorder // optional
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// MeterProvider defaults to the no-op provider.
	MeterProvider metric.MeterProvider
	// RetryBase and RetryMax bound the exponential retry backoff of a failing batch
	// (defaults 200ms and 30s); RetryJitter is its randomization factor (default 0.2,
	// negative for none).
	RetryBase   time.Duration
	RetryMax    time.Duration
	RetryJitter float64
	// PollInterval is how often Watch checks the store for new events (default 20ms).
	PollInterval time.Duration
	// PageSize is how many events one store read returns (default 1000).
	PageSize int
}

// Engine runs subscriptions. Its methods are safe for concurrent use.
type Engine struct {
	opts    Options
	log     *slog.Logger
	clk     clock.Clock
	metrics engineMetrics

	updateMu sync.Mutex // serialises Update
	mu       sync.Mutex
	runners  map[string]*runner
	closed   bool
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// onStep, when set (by tests), is called by every runner after each event it handled
	// (a wake-up, a timer, a retry), when its state is consistent.
	onStep func()

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced whenever a subscription's status changes
}

// StatusChanged returns a channel that is closed at the next change of any
// subscription's Status (a batch recorded, a retry scheduled, a cursor moved): a reader
// takes the channel, checks Status, and waits on it only if it must wait.
func (e *Engine) StatusChanged() <-chan struct{} {
	e.changedMu.Lock()
	defer e.changedMu.Unlock()
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

// statusChanged wakes the waiters of StatusChanged.
func (e *Engine) statusChanged() {
	e.changedMu.Lock()
	defer e.changedMu.Unlock()
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

type engineMetrics struct {
	batches  metric.Int64Counter
	events   metric.Int64Counter
	failures metric.Int64Counter
	duration metric.Float64Histogram
	lag      metric.Float64ObservableGauge // routerd_subscription_lag_seconds{subscription}
	pending  metric.Int64ObservableGauge   // routerd_subscription_pending_events{subscription}
	reg      metric.Registration
}

// New returns an Engine with no subscriptions; call Update to start some.
func New(opts Options) (*Engine, error) {
	if opts.Source == nil || opts.Cursors == nil || opts.Invoker == nil || opts.Handler == nil {
		return nil, errors.New("subscribe: new engine: Source, Cursors, Invoker and Handler are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = noop.NewMeterProvider()
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 200 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.RetryJitter == 0 {
		opts.RetryJitter = 0.2
	} else if opts.RetryJitter < 0 {
		opts.RetryJitter = 0
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	m := opts.MeterProvider.Meter("routerd.net/routerd/federation/subscribe")
	var em engineMetrics
	var errs []error
	var err error
	em.batches, err = m.Int64Counter("routerd_subscription_batches_total",
		metric.WithDescription("Plugin dispatches of subscription batches, by subscription and outcome."))
	errs = append(errs, err)
	em.events, err = m.Int64Counter("routerd_subscription_events_total",
		metric.WithDescription("Events handed to subscription plugins successfully, by subscription."))
	errs = append(errs, err)
	em.failures, err = m.Int64Counter("routerd_subscription_failures_total",
		metric.WithDescription("Failed subscription batch dispatches, by subscription."))
	errs = append(errs, err)
	em.duration, err = m.Float64Histogram("routerd_subscription_batch_duration_seconds",
		metric.WithDescription("Time to run one subscription batch (plugin call and result handling)."),
		metric.WithUnit("s"))
	errs = append(errs, err)
	em.lag, err = m.Float64ObservableGauge("routerd_subscription_lag_seconds",
		metric.WithDescription("How long the oldest pending event of a subscription has waited (0 when none)."),
		metric.WithUnit("s"))
	errs = append(errs, err)
	em.pending, err = m.Int64ObservableGauge("routerd_subscription_pending_events",
		metric.WithDescription("Matching events not yet handled, by subscription."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("subscribe: metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		opts: opts, log: opts.Logger, clk: opts.Clock, metrics: em,
		runners: map[string]*runner{}, ctx: ctx, cancel: cancel,
	}
	e.metrics.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, st := range e.Status() {
			a := metric.WithAttributes(attribute.String("subscription", st.Name))
			o.ObserveFloat64(em.lag, st.LagSeconds, a)
			o.ObserveInt64(em.pending, int64(st.Pending), a)
		}
		return nil
	}, em.lag, em.pending)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe: metrics: %w", err)
	}
	return e, nil
}

// Update makes specs the running set: new subscriptions start, removed ones stop, changed
// ones restart (from their durable cursor); unchanged ones keep running undisturbed.
func (e *Engine) Update(specs []Spec) error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("subscribe: subscription %q listed twice", s.Name))
		}
		seen[s.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.updateMu.Lock()
	defer e.updateMu.Unlock()
	// Stop removed and changed subscriptions first, so that a subscription never runs
	// twice at once (which could dispatch a batch twice).
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errors.New("subscribe: update: engine is closed")
	}
	want := map[string]Spec{}
	for _, s := range specs {
		want[s.Name] = s
	}
	var stopping []*runner
	for name, r := range e.runners {
		if s, ok := want[name]; !ok || !specEqual(r.spec, s) {
			stopping = append(stopping, r)
			delete(e.runners, name)
		}
	}
	e.mu.Unlock()
	for _, r := range stopping {
		r.stopAndWait()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("subscribe: update: engine is closed")
	}
	for _, s := range specs {
		if _, ok := e.runners[s.Name]; ok {
			continue
		}
		r := newRunner(e, s)
		e.runners[s.Name] = r
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			r.run()
		}()
	}
	return nil
}

// Notify tells every subscription that new events may be in the store. It never blocks.
func (e *Engine) Notify() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runners {
		r.poke()
	}
}

// Watch polls the store's highest sequence number every PollInterval and calls Notify
// when it grew, so that events inserted by another process (routerd-eventd) are seen. It
// returns when ctx ends or the engine is closed.
func (e *Engine) Watch(ctx context.Context) {
	var last int64
	tick := make(chan struct{}, 1)
	for {
		seq, err := e.opts.Source.MaxSeq(ctx)
		if err != nil {
			if ctx.Err() == nil && e.ctx.Err() == nil {
				e.log.Warn("subscribe: poll store", "err", err)
			}
		} else if seq != last {
			last = seq
			e.Notify()
		}
		t := e.clk.AfterFunc(e.opts.PollInterval, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
		select {
		case <-tick:
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.ctx.Done():
			t.Stop()
			return
		}
	}
}

// Status returns the state of every subscription, sorted by name.
func (e *Engine) Status() []Status {
	e.mu.Lock()
	rs := make([]*runner, 0, len(e.runners))
	for _, r := range e.runners {
		rs = append(rs, r)
	}
	e.mu.Unlock()
	out := make([]Status, 0, len(rs))
	now := e.clk.Now()
	for _, r := range rs {
		out = append(out, r.status(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops every subscription, cancelling plugin calls in progress, and waits for them.
// It is safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	if e.metrics.reg != nil {
		_ = e.metrics.reg.Unregister()
	}
	rs := make([]*runner, 0, len(e.runners))
	for _, r := range e.runners {
		rs = append(rs, r)
	}
	e.runners = map[string]*runner{}
	e.mu.Unlock()
	e.cancel()
	for _, r := range rs {
		r.stopAndWait()
	}
	e.wg.Wait()
	return nil
}

func specEqual(a, b Spec) bool {
	eq := func(x, y []string) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if a.Name != b.Name || a.Group != b.Group || a.Plugin != b.Plugin || a.BatchWindow != b.BatchWindow ||
		a.Debounce != b.Debounce || a.MaxBatchEvents != b.MaxBatchEvents || !eq(a.Types, b.Types) ||
		!eq(a.SubjectPrefixes, b.SubjectPrefixes) || !eq(a.SourceNodes, b.SourceNodes) ||
		!eq(a.ExcludeSourceNodes, b.ExcludeSourceNodes) || len(a.Payload) != len(b.Payload) {
		return false
	}
	for k, v := range a.Payload {
		if w, ok := b.Payload[k]; !ok || w != v {
			return false
		}
	}
	if len(a.Context) != len(b.Context) {
		return false
	}
	for i := range a.Context {
		if !bytes.Equal(a.Context[i], b.Context[i]) {
			return false
		}
	}
	return true
}

func (e *Engine) newBackoff() *backoff.ExponentialBackOff {
	return retry.Policy{Base: e.opts.RetryBase, Max: e.opts.RetryMax, Jitter: e.opts.RetryJitter}.Exponential()
}

func (e *Engine) countBatch(ctx context.Context, name, outcome string, events int, d time.Duration) {
	attrs := metric.WithAttributes(attribute.String("subscription", name), attribute.String("outcome", outcome))
	e.metrics.batches.Add(ctx, 1, attrs)
	e.metrics.duration.Record(ctx, d.Seconds(), attrs)
	sub := metric.WithAttributes(attribute.String("subscription", name))
	if outcome == "ok" {
		e.metrics.events.Add(ctx, int64(events), sub)
	} else {
		e.metrics.failures.Add(ctx, 1, sub)
	}
}
