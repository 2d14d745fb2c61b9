package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Backend is where kernel objects live: the Linux kernel in one network namespace
// (package netlinkdp) or an in-memory recorder (package fake).
type Backend interface {
	// Name describes the backend for logs and reports, e.g. "netlink netns rd-a".
	Name() string
	// Current returns the objects routerd owns right now (those carrying routerd's
	// ownership markers), never a foreign one.
	Current(ctx context.Context) (State, error)
	// Apply performs the changes of diff in order. desired is the complete normalized
	// desired state the diff was computed against: a backend that replaces a whole group
	// of objects at once (the nftables table) builds it from desired.
	Apply(ctx context.Context, diff Diff, desired State) error
	// Close releases the backend's resources; it is idempotent.
	Close() error
}

// ErrClosed is returned by a Reconciler used after Close.
var ErrClosed = errors.New("dataplane: reconciler closed")

// Reconciler drives a Backend towards a desired State. It is safe for concurrent use;
// reconciliations are serialized.
type Reconciler struct {
	backend Backend
	log     *slog.Logger

	reconciles metric.Int64Counter
	changes    metric.Int64Counter
	drift      metric.Int64Counter
	duration   metric.Float64Histogram
	objects    metric.Int64Gauge

	mu      sync.Mutex
	closed  bool
	last    State // last desired state applied successfully
	applied bool  // last is set
}

// Option configures a Reconciler.
type Option func(*reconcilerOptions)

type reconcilerOptions struct {
	mp metric.MeterProvider
}

// WithMeterProvider records the reconciler's metrics with mp (default: the no-op
// provider): routerd_dataplane_reconcile_total{result: changed|unchanged|error},
// routerd_dataplane_changes_total{op, kind}, routerd_dataplane_drift_repaired_total{op, kind}
// (changes made while the desired state was the one already applied: someone else altered
// the kernel), routerd_dataplane_reconcile_duration_seconds and
// routerd_dataplane_desired_objects.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *reconcilerOptions) { o.mp = mp }
}

// NewReconciler returns a Reconciler over backend. A nil logger discards logs.
func NewReconciler(backend Backend, log *slog.Logger, opts ...Option) *Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := reconcilerOptions{mp: noop.NewMeterProvider()}
	for _, f := range opts {
		f(&o)
	}
	if o.mp == nil {
		o.mp = noop.NewMeterProvider()
	}
	r := &Reconciler{backend: backend, log: log}
	meter := o.mp.Meter("routerd.net/routerd/dataplane")
	var errs []error
	var err error
	r.reconciles, err = meter.Int64Counter("routerd_dataplane_reconcile_total",
		metric.WithDescription("Dataplane reconciliations (Apply), by result: changed, unchanged or error."))
	errs = append(errs, err)
	r.changes, err = meter.Int64Counter("routerd_dataplane_changes_total",
		metric.WithDescription("Kernel object changes of successful reconciliations, by op (add, remove, replace) and kind."))
	errs = append(errs, err)
	r.drift, err = meter.Int64Counter("routerd_dataplane_drift_repaired_total",
		metric.WithDescription("Changes that repaired drift (the desired state had not changed since the last successful apply), by op and kind."))
	errs = append(errs, err)
	r.duration, err = meter.Float64Histogram("routerd_dataplane_reconcile_duration_seconds",
		metric.WithDescription("Duration of one reconciliation (read current state, diff, apply)."), metric.WithUnit("s"))
	errs = append(errs, err)
	r.objects, err = meter.Int64Gauge("routerd_dataplane_desired_objects",
		metric.WithDescription("Objects in the last desired state applied successfully."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		// Instrument creation only fails on invalid names, which are constants here.
		log.Error("dataplane: metrics", "err", err)
	}
	return r
}

// Backend returns the reconciler's backend.
func (r *Reconciler) Backend() Backend { return r.backend }

// DryRun returns the Diff Apply would perform for desired, without changing anything.
func (r *Reconciler) DryRun(ctx context.Context, desired State) (Diff, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Diff{}, ErrClosed
	}
	d, _, err := r.plan(ctx, desired)
	return d, err
}

// Apply makes the backend match desired and returns the Diff it applied (empty when
// nothing had to change). Calling it again with the same desired state returns an empty
// Diff. On error, part of the diff may have been applied; the next Apply repairs it.
func (r *Reconciler) Apply(ctx context.Context, desired State) (Diff, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Diff{}, ErrClosed
	}
	start := time.Now()
	result := "error"
	defer func() {
		r.reconciles.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
		r.duration.Record(ctx, time.Since(start).Seconds())
	}()
	d, want, err := r.plan(ctx, desired)
	if err != nil {
		return d, err
	}
	if d.Empty() {
		r.last, r.applied = want, true
		result = "unchanged"
		r.objects.Record(ctx, int64(want.Len()))
		return d, nil
	}
	if err := r.backend.Apply(ctx, d, want); err != nil {
		return d, fmt.Errorf("dataplane: apply on %s: %w", r.backend.Name(), err)
	}
	// The same desired state as last time, yet changes: the kernel drifted.
	drift := false
	if r.applied {
		if same, err := Compute(r.last, want); err == nil && same.Empty() {
			drift = true
		}
	}
	for _, c := range d.Changes {
		a := metric.WithAttributes(attribute.String("op", string(c.Op)), attribute.String("kind", c.Object().Kind().String()))
		r.changes.Add(ctx, 1, a)
		if drift {
			r.drift.Add(ctx, 1, a)
		}
	}
	r.last, r.applied = want, true
	result = "changed"
	r.objects.Record(ctx, int64(want.Len()))
	add, rm, repl := d.Count()
	r.log.Info("dataplane applied", "backend", r.backend.Name(), "added", add, "removed", rm, "replaced", repl)
	return d, nil
}

// LastApplied returns the desired state of the last successful Apply.
func (r *Reconciler) LastApplied() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Close closes the backend; it is idempotent.
func (r *Reconciler) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.backend.Close()
}

func (r *Reconciler) plan(ctx context.Context, desired State) (Diff, State, error) {
	want, err := desired.Normalize()
	if err != nil {
		return Diff{}, want, err
	}
	cur, err := r.backend.Current(ctx)
	if err != nil {
		return Diff{}, want, fmt.Errorf("dataplane: read current state of %s: %w", r.backend.Name(), err)
	}
	d, err := Compute(cur, want)
	return d, want, err
}
