package subscribe

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/tracectx"
)

// pendingEvent is a matching event waiting for dispatch, with when the engine first saw it.
type pendingEvent struct {
	rec  Record
	seen time.Time
}

// runner drives one subscription in its own goroutine; only that goroutine touches the
// fields below mu, except through status().
type runner struct {
	e    *Engine
	spec Spec

	wake    chan struct{}
	timerC  chan struct{}
	retryC  chan struct{}
	stopC   chan struct{}
	done    chan struct{}
	stopped sync.Once
	ctx     context.Context
	cancel  context.CancelFunc

	// owned by the run goroutine
	fetched  int64 // highest Seq read from the store
	pending  []pendingEvent
	lastSeen time.Time
	timer    clock.Timer
	deadline time.Time
	inflight *Batch // the batch being dispatched, or a failed one waiting for its retry
	// inflightSeen is when the engine first saw the inflight batch's first event.
	inflightSeen time.Time
	retry        clock.Timer
	bo           *backoff.ExponentialBackOff

	mu sync.Mutex
	st Status
	// oldest is when the oldest pending event was first seen (zero when none).
	oldest time.Time
}

func newRunner(e *Engine, s Spec) *runner {
	ctx, cancel := context.WithCancel(e.ctx)
	return &runner{
		e: e, spec: s,
		wake:   make(chan struct{}, 1),
		timerC: make(chan struct{}, 1),
		retryC: make(chan struct{}, 1),
		stopC:  make(chan struct{}),
		done:   make(chan struct{}),
		ctx:    ctx, cancel: cancel,
		bo: e.newBackoff(),
		st: Status{Name: s.Name, Group: s.Group, Plugin: s.Plugin, State: StateStarting},
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (r *runner) poke() { signal(r.wake) }

func (r *runner) stopAndWait() {
	r.stopped.Do(func() {
		close(r.stopC)
		r.cancel()
	})
	<-r.done
}

func (r *runner) status(now time.Time) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	if !r.oldest.IsZero() {
		s.LagSeconds = now.Sub(r.oldest).Seconds()
		if s.LagSeconds < 0 {
			s.LagSeconds = 0
		}
	}
	return s
}

func (r *runner) update(f func(s *Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
	n := len(r.pending)
	var oldest time.Time
	if len(r.pending) > 0 {
		oldest = r.pending[0].seen
	}
	if r.inflight != nil {
		n += len(r.inflight.Events)
		oldest = r.inflightSeen
	}
	r.st.Pending = n
	r.oldest = oldest
	r.e.statusChanged()
}

func (r *runner) run() {
	defer close(r.done)
	defer func() {
		if r.timer != nil {
			r.timer.Stop()
		}
		if r.retry != nil {
			r.retry.Stop()
		}
		r.update(func(s *Status) { s.State = StateStopped })
	}()
	log := r.e.log.With("subscription", r.spec.Name)

	// Load the durable cursor, retrying while the store is unavailable.
	for {
		c, err := r.e.opts.Cursors.GetCursor(r.ctx, r.spec.Name)
		if err == nil {
			r.fetched = c
			r.update(func(s *Status) { s.Cursor = c; s.State = StateIdle })
			break
		}
		if r.ctx.Err() != nil {
			return // stopping
		}
		log.Warn("subscribe: load cursor", "err", err)
		r.update(func(s *Status) { s.LastError = fmt.Sprintf("load cursor: %v", err) })
		if !r.sleep(r.bo.NextBackOff()) {
			return
		}
	}
	r.bo.Reset()
	r.poke() // read what is already stored
	if r.e.onStep != nil {
		r.e.onStep()
	}

	for {
		select {
		case <-r.stopC:
			return
		case <-r.wake:
			if err := r.fetch(); err != nil {
				log.Warn("subscribe: read events", "err", err)
				r.update(func(s *Status) { s.LastError = err.Error() })
				// Try again on the next notification or poll.
			}
			r.schedule()
		case <-r.timerC:
			r.schedule()
		case <-r.retryC:
			r.retry = nil
			if r.inflight != nil {
				r.dispatch(*r.inflight)
			}
			r.schedule()
		}
		if r.e.onStep != nil {
			r.e.onStep()
		}
	}
}

// sleep waits d on the engine clock; false when the runner is stopped meanwhile.
func (r *runner) sleep(d time.Duration) bool {
	c := make(chan struct{}, 1)
	t := r.e.clk.AfterFunc(d, func() { signal(c) })
	select {
	case <-c:
		return true
	case <-r.stopC:
		t.Stop()
		return false
	}
}

// fetch reads every new event of the group and types after r.fetched and queues the
// matching ones.
func (r *runner) fetch() error {
	now := r.e.clk.Now()
	added := false
	for {
		recs, err := r.e.opts.Source.Events(r.ctx, r.spec.Group, r.spec.Types, r.fetched, r.e.opts.PageSize)
		if err != nil {
			return fmt.Errorf("subscribe: subscription %s: read events after %d: %w", r.spec.Name, r.fetched, err)
		}
		for _, rec := range recs {
			if rec.Seq <= r.fetched {
				continue
			}
			r.fetched = rec.Seq
			if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
				continue // no longer true: nothing to act on
			}
			if r.spec.Matches(rec) {
				r.pending = append(r.pending, pendingEvent{rec: rec, seen: now})
				added = true
			}
		}
		if len(recs) < r.e.opts.PageSize {
			break
		}
	}
	if added {
		r.lastSeen = now
	}
	r.update(func(*Status) {})
	return nil
}

// schedule dispatches the pending batch when it is due, else arms the batch timer for
// the moment it will be. It also moves the durable cursor past events that did not match.
func (r *runner) schedule() {
	for {
		if r.inflight != nil {
			return // the retry timer owns the next step
		}
		if len(r.pending) == 0 {
			r.stopTimer()
			r.advanceIdleCursor()
			r.update(func(s *Status) {
				if s.State != StateStopped {
					s.State = StateIdle
				}
			})
			return
		}
		now := r.e.clk.Now()
		due := r.dueAt()
		if len(r.pending) < r.spec.maxBatch() && due.After(now) {
			if r.timer == nil || !r.deadline.Equal(due) {
				r.stopTimer()
				r.deadline = due
				r.timer = r.e.clk.AfterFunc(due.Sub(now), func() { signal(r.timerC) })
			}
			r.update(func(s *Status) { s.State = StateWaiting })
			return
		}
		r.stopTimer()
		n := min(len(r.pending), r.spec.maxBatch())
		b := Batch{Subscription: r.spec.Name, Group: r.spec.Group, Plugin: r.spec.Plugin, Context: r.spec.Context}
		for _, p := range r.pending[:n] {
			b.Events = append(b.Events, p.rec)
		}
		b.ID = fmt.Sprintf("%s/%d-%d", r.spec.Name, b.FirstSeq(), b.LastSeq())
		r.inflightSeen = r.pending[0].seen
		r.pending = append([]pendingEvent(nil), r.pending[n:]...)
		if !r.dispatch(b) {
			return
		}
		select {
		case <-r.stopC:
			return
		default:
		}
	}
}

// dueAt is when the pending batch must be dispatched according to batchWindow/debounce.
func (r *runner) dueAt() time.Time {
	first := r.pending[0].seen
	w, d := r.spec.BatchWindow, r.spec.Debounce
	switch {
	case w == 0 && d == 0:
		return first
	case w == 0:
		return r.lastSeen.Add(d)
	case d == 0:
		return first.Add(w)
	}
	due := r.lastSeen.Add(d)
	if limit := first.Add(w); limit.Before(due) {
		due = limit
	}
	return due
}

func (r *runner) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
		r.deadline = time.Time{}
	}
}

// advanceIdleCursor saves the cursor at r.fetched when nothing is pending, so that
// events that did not match are not read again after a restart.
func (r *runner) advanceIdleCursor() {
	r.mu.Lock()
	cur := r.st.Cursor
	r.mu.Unlock()
	if r.fetched <= cur {
		return
	}
	if err := r.e.opts.Cursors.SetCursor(r.ctx, r.spec.Name, r.fetched); err != nil {
		r.e.log.Warn("subscribe: save cursor", "subscription", r.spec.Name, "err", err)
		return
	}
	seq := r.fetched
	r.update(func(s *Status) { s.Cursor = seq })
}

// dispatch runs b through the plugin and the handler. On success it saves the cursor and
// reports true; on failure it keeps b for a retry after a backoff and reports false.
func (r *runner) dispatch(b Batch) bool {
	b.Attempt++
	r.inflight = &b
	r.update(func(s *Status) { s.State = StateRunning; s.LastBatchID = b.ID })
	start := r.e.clk.Now()
	nres, err := r.call(b)
	end := r.e.clk.Now()
	run := Run{
		Subscription: b.Subscription, BatchID: b.ID, FirstSeq: b.FirstSeq(), LastSeq: b.LastSeq(),
		Events: len(b.Events), Attempt: b.Attempt, StartedAt: start, FinishedAt: end, Outcome: "ok", Resources: nres,
	}
	if err != nil {
		run.Outcome, run.Error = "error", err.Error()
	}
	if r.ctx.Err() != nil {
		// Stopping: the batch stays after the durable cursor and runs again next time.
		return false
	}
	if r.e.opts.Recorder != nil {
		if rerr := r.e.opts.Recorder.RecordRun(r.ctx, run); rerr != nil {
			r.e.log.Warn("subscribe: record run", "subscription", b.Subscription, "batch", b.ID, "err", rerr)
		}
	}
	r.e.countBatch(r.ctx, b.Subscription, run.Outcome, len(b.Events), end.Sub(start))
	if err != nil {
		delay := r.bo.NextBackOff()
		next := end.Add(delay)
		r.e.log.Warn("subscribe: batch failed; will retry", "subscription", b.Subscription, "batch", b.ID,
			"attempt", b.Attempt, "retryIn", delay, "err", err)
		r.retry = r.e.clk.AfterFunc(delay, func() { signal(r.retryC) })
		r.update(func(s *Status) {
			s.State, s.LastError, s.Failures, s.Attempts = StateRetrying, err.Error(), s.Failures+1, b.Attempt
			s.LastRunAt, s.NextRetryAt = &end, &next
		})
		return false
	}
	// The cursor covers the batch and, when nothing else is pending, every event read.
	cursor := b.LastSeq()
	if len(r.pending) == 0 {
		cursor = r.fetched
	}
	if cerr := r.e.opts.Cursors.SetCursor(r.ctx, b.Subscription, cursor); cerr != nil {
		// The result is handled; a lost cursor only means this batch may run again.
		r.e.log.Warn("subscribe: save cursor", "subscription", b.Subscription, "err", cerr)
	}
	r.inflight = nil
	r.bo.Reset()
	r.update(func(s *Status) {
		s.Cursor, s.Batches, s.Attempts, s.NextRetryAt, s.LastError = cursor, s.Batches+1, 0, nil, ""
		s.LastRunAt = &end
	})
	return true
}

// call sends the batch to the plugin and hands the result to the handler, returning the
// number of resources the plugin proposed.
//
// Tracing: the batch is one span, subscription.run, continuing the trace of its first
// event and linking every event's; the plugin call (plugin.call) and the handling of its
// result (dynamic.propose: the DynamicConfigParts) are its children.
func (r *runner) call(b Batch) (n int, err error) {
	ctx, span := tracectx.Start(r.ctx, "subscription.run", batchParents(b))
	defer func() { endSpan(span, err) }()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("routerd.subscription", b.Subscription), attribute.String("routerd.batch", b.ID),
			attribute.Int("routerd.events", len(b.Events)), attribute.Int("routerd.attempt", b.Attempt))
	}
	req, err := BuildRequest(b, r.e.clk.Now())
	if err != nil {
		return 0, err
	}
	pctx, pspan := tracectx.Tracer().Start(ctx, "plugin.call")
	if pspan.IsRecording() {
		pspan.SetAttributes(attribute.String("routerd.plugin", b.Plugin), attribute.String("routerd.hook", HookOnEvents))
	}
	var res Result
	if di, ok := r.e.opts.Invoker.(DecodingInvoker); ok {
		err = di.InvokeDecode(pctx, b.Plugin, HookOnEvents, req, func(out []byte) (err error) {
			res, err = ParseResult(out)
			return err
		})
	} else {
		var out []byte
		if out, err = r.e.opts.Invoker.Invoke(pctx, b.Plugin, HookOnEvents, req); err == nil {
			res, err = ParseResult(out)
		}
	}
	endSpan(pspan, err)
	if err != nil {
		return 0, fmt.Errorf("plugin %s: %s: %w", b.Plugin, HookOnEvents, err)
	}
	hctx, hspan := tracectx.Tracer().Start(ctx, "dynamic.propose")
	if hspan.IsRecording() {
		hspan.SetAttributes(attribute.Int("routerd.resources", len(res.Resources)))
	}
	err = r.e.opts.Handler.HandleResult(hctx, b, res)
	endSpan(hspan, err)
	if err != nil {
		return len(res.Resources), fmt.Errorf("handle result of batch %s: %w", b.ID, err)
	}
	return len(res.Resources), nil
}

// batchParents are the stored trace contexts of b's events (nil without tracing).
func batchParents(b Batch) []string {
	var out []string
	for _, e := range b.Events {
		if e.TraceParent != "" {
			out = append(out, e.TraceParent)
		}
	}
	return out
}

// endSpan records err on span (when recording) and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
