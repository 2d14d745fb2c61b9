package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/retry"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/tracectx"
)

// Outbox is the persistent delivery queue the sender drives (implemented by
// *store.Store in federation/store/outbox.go).
type Outbox interface {
	HasBacklog(ctx context.Context, group, peer string) (bool, error)
	NextEvents(ctx context.Context, req store.EnqueueRequest) (store.FreshEvents, error)
	CommitFresh(ctx context.Context, group, peer string, fresh store.FreshEvents, outcomes []store.DeliveryOutcome, now time.Time) (int, error)
	EnqueueDeliveries(ctx context.Context, req store.EnqueueRequest) (int, error)
	DueDeliveries(ctx context.Context, group, peer string, now time.Time, limit int) ([]store.Delivery, error)
	RecordDeliveries(ctx context.Context, group, peer string, outcomes []store.DeliveryOutcome) error
	RequeueRefreshed(ctx context.Context, group string, peers []string, since, now time.Time, before time.Duration) (map[string]store.RequeueResult, error)
	BacklogPeers(ctx context.Context, group string, peers []string) ([]string, error)
	PruneDeliveries(ctx context.Context, group string, peers []string, now time.Time, maxAge time.Duration) (int64, error)
	LastSeq(ctx context.Context) (int64, error)
	LastSourceSeq(ctx context.Context, group, source string) (int64, error)
	Prune(ctx context.Context, o store.PruneOptions) (store.PruneResult, error)
}

// Peer is one push target of the group.
type Peer struct {
	// Name is the EventPeer resource name (the peer column of event_deliveries).
	Name string
	// NodeName is the peer's node name (events from it are never pushed back to it).
	NodeName string
	// Endpoint is the peer's base URL.
	Endpoint string
	// Types and SubjectPrefixes filter what is pushed (empty: everything).
	Types           []string
	SubjectPrefixes []string
	// Key signs requests to this peer (the newest key the peer knows).
	Key Key
	// Publisher, when set, delivers to this peer instead of the HTTP push (Endpoint and
	// Key are then unused): a message broker, whose acknowledgements are recorded in
	// event_deliveries like a peer's answers (federation/transport/jetstream).
	Publisher Publisher
	// Relay, when set, also sends the events of other source nodes for which it returns
	// true (a router bridging a brokered group to push peers); by default only this
	// node's own events are sent.
	Relay func(sourceNode string) bool
}

// Publisher delivers events to a message broker for the sender. It is called by one
// goroutine at a time, with events in store order and their bodies as event.Marshal
// encoded them (at most MaxEventBytes each).
type Publisher interface {
	// Publish delivers the events and returns one error per event: nil once the broker
	// has acknowledged it. An error whose Permanent method reports true fails the
	// delivery at once; any other is retried with backoff.
	Publish(ctx context.Context, events []event.Event, bodies [][]byte) []error
}

// Matches reports whether the peer wants e.
func (p *Peer) Matches(e *event.Event) bool {
	if e.SourceNode == p.NodeName {
		return false
	}
	if len(p.Types) > 0 && !slices.Contains(p.Types, e.Type) {
		return false
	}
	if len(p.SubjectPrefixes) == 0 {
		return true
	}
	for _, pre := range p.SubjectPrefixes {
		if strings.HasPrefix(e.Subject, pre) {
			return true
		}
	}
	return false
}

// SenderOptions configure a Sender. Zero durations take the EventGroup defaults.
type SenderOptions struct {
	Group     string
	LocalNode string
	Peers     []Peer
	Outbox    Outbox
	// HTTP is the client for pushes (default: a keep-alive client with RequestTimeout).
	HTTP *http.Client
	// BatchSize is the most events per pass and per batch request (default 256).
	BatchSize int
	// RetryBase and RetryMax bound the exponential backoff (defaults 200ms, 5s).
	RetryBase, RetryMax time.Duration
	// FailAfter is how long a delivery may keep failing before it is failed (default 24h).
	FailAfter time.Duration
	// TTLRefreshBefore re-pushes live events this long before the peer's copy expires
	// (default 2m).
	TTLRefreshBefore time.Duration
	// PollInterval is how often the store is checked for new local events (default 10ms).
	PollInterval time.Duration
	// RefreshInterval is how often the TTL refresh runs, for every peer at once, and how
	// often peers with queued or retrying deliveries are looked for (default 1s).
	RefreshInterval time.Duration
	// PruneInterval and PruneMaxAge drive the delivery-row pruner (defaults 1m, 24h).
	PruneInterval, PruneMaxAge time.Duration
	// EventRetention, when set, is applied to the store's events of the group after each
	// delivery prune (store.GroupRetention of the EventGroup's retention).
	EventRetention *store.PruneOptions
	// RequestTimeout bounds one push (default 10s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	Metrics        *Metrics
	Now            func() time.Time
}

// Sender pushes locally originated events to every peer of one group: one goroutine per
// peer with at most one request in flight, so each peer receives events in store order.
type Sender struct {
	opts  SenderOptions
	peers []*peerLoop
	wg    sync.WaitGroup

	mu      sync.Mutex
	cancel  context.CancelFunc
	started bool
	closed  bool
}

type peerLoop struct {
	s      *Sender
	peer   Peer
	client *Client
	wake   chan struct{}
	attrs  []attribute.KeyValue

	probed bool
	batch  *BatchExtension

	// Fast-path pipeline: the next page is read while the current one is pushed, and a
	// delivered page is recorded while the next one is pushed. Only the peer's own loop
	// touches these.
	ahead     *readAhead
	recording *recording
	committed int64 // cursor after the last recorded fast-path page (0: unknown)

	mu     sync.Mutex
	health PeerHealth
}

// readAhead is a page of fresh events being read in the background.
type readAhead struct {
	after int64
	done  chan struct{}
	fresh store.FreshEvents
	err   error
}

// recording is a delivered page whose rows are being written in the background.
type recording struct {
	done chan struct{}
	err  error
}

// settle waits for the background work of the pipeline and returns the recording's
// error; a failed recording also discards the read-ahead and the remembered cursor.
func (p *peerLoop) settle() error {
	var err error
	if p.recording != nil {
		<-p.recording.done
		err = p.recording.err
		p.recording = nil
	}
	if err != nil {
		p.committed = 0
		p.dropAhead()
	}
	return err
}

func (p *peerLoop) dropAhead() {
	if p.ahead != nil {
		<-p.ahead.done
		p.ahead = nil
	}
}

// PeerHealth is what the sender last saw of a peer.
type PeerHealth struct {
	Peer        string    `json:"peer"`
	Batch       bool      `json:"batch"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
}

// NewSender validates opts and builds the per-peer loops; Start runs them.
func NewSender(opts SenderOptions) (*Sender, error) {
	if opts.Group == "" || opts.LocalNode == "" {
		return nil, errors.New("transport: sender: group and local node are required")
	}
	if opts.Outbox == nil {
		return nil, fmt.Errorf("transport: sender %s: outbox is nil", opts.Group)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	def(&opts.RetryBase, 200*time.Millisecond)
	def(&opts.RetryMax, 5*time.Second)
	def(&opts.FailAfter, 24*time.Hour)
	def(&opts.TTLRefreshBefore, 2*time.Minute)
	def(&opts.PollInterval, 10*time.Millisecond)
	def(&opts.RefreshInterval, time.Second)
	def(&opts.PruneInterval, time.Minute)
	def(&opts.PruneMaxAge, 24*time.Hour)
	def(&opts.RequestTimeout, 10*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		opts.Metrics = m
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		opts.HTTP = &http.Client{Transport: tr, Timeout: opts.RequestTimeout}
	}
	s := &Sender{opts: opts}
	seen := map[string]bool{}
	for _, p := range opts.Peers {
		if p.Name == "" || p.Publisher == nil && (p.Endpoint == "" || len(p.Key.Secret) == 0) {
			return nil, fmt.Errorf("transport: sender %s: peer %q needs a name, an endpoint and a key", opts.Group, p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("transport: sender %s: peer %q listed twice", opts.Group, p.Name)
		}
		seen[p.Name] = true
		s.peers = append(s.peers, &peerLoop{
			s:      s,
			peer:   p,
			client: &Client{Endpoint: p.Endpoint, Key: p.Key, HTTP: opts.HTTP, Now: opts.Now},
			wake:   make(chan struct{}, 1),
			attrs:  []attribute.KeyValue{attribute.String("group", opts.Group), attribute.String("peer", p.Name)},
			health: PeerHealth{Peer: p.Name},
			probed: p.Publisher != nil, // a broker has nothing to probe
		})
	}
	// Export every series from the start, so dashboards and alerts see zeros, not gaps.
	ctx := context.Background()
	g := attribute.String("group", opts.Group)
	for _, p := range s.peers {
		for _, st := range []string{store.DeliveryDelivered, store.DeliveryRetrying, store.DeliveryFailed} {
			opts.Metrics.deliveries.Add(ctx, 0, attrs(p.attrs[0], p.attrs[1], attribute.String("status", st)))
		}
		for _, st := range []string{"ok", "error"} {
			opts.Metrics.attempts.Add(ctx, 0, attrs(p.attrs[0], p.attrs[1], attribute.String("status", st)))
		}
		opts.Metrics.repush.Add(ctx, 0, attrs(p.attrs...))
		opts.Metrics.staleTTL.Add(ctx, 0, attrs(p.attrs...))
		opts.Metrics.outboxTicks.Add(ctx, 0, attrs(p.attrs...))
		opts.Metrics.outboxTickErrs.Add(ctx, 0, attrs(p.attrs...))
	}
	opts.Metrics.prunerTicks.Add(ctx, 0, attrs(g))
	for _, r := range []string{"deliveries", "expired", "aged", "over_limit"} {
		opts.Metrics.prunerPruned.Add(ctx, 0, attrs(g, attribute.String("reason", r)))
	}
	opts.Metrics.prunerTickErrs.Add(ctx, 0, attrs(g))
	return s, nil
}

// Start runs the peer loops, the new-event watcher and the pruner until Shutdown.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("transport: sender %s: already shut down", s.opts.Group)
	}
	if s.started {
		return fmt.Errorf("transport: sender %s: already started", s.opts.Group)
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	for _, p := range s.peers {
		s.wg.Go(func() { p.run(ctx) })
	}
	s.wg.Go(func() { s.watch(ctx) })
	s.wg.Go(func() { s.refresh(ctx) })
	s.wg.Go(func() { s.prune(ctx) })
	return nil
}

// Notify wakes every peer loop to look for new events now (for callers that insert in
// the same process; others are picked up within PollInterval).
func (s *Sender) Notify() {
	for _, p := range s.peers {
		p.poke()
	}
}

// Health returns what the sender last saw of each peer.
func (s *Sender) Health() []PeerHealth {
	out := make([]PeerHealth, 0, len(s.peers))
	for _, p := range s.peers {
		p.mu.Lock()
		out = append(out, p.health)
		p.mu.Unlock()
	}
	return out
}

// Shutdown stops taking new work, lets every in-flight request finish and its outcome be
// recorded, and returns when all loops ended or ctx is done. Safe to call twice.
func (s *Sender) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transport: sender %s: shutdown: %w", s.opts.Group, ctx.Err())
	}
}

// Close is Shutdown with a 10s limit.
func (s *Sender) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// watch polls the store's newest sequence number of this node's events (of any
// event when a peer relays other sources) and wakes the peers when it grows. Events
// received from others do not wake anyone: in a mesh of N routers they are N−1 times
// as many as the local ones.
func (s *Sender) watch(ctx context.Context) {
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	relays := slices.ContainsFunc(s.peers, func(p *peerLoop) bool { return p.peer.Relay != nil })
	newest := func() (int64, error) {
		if relays {
			return s.opts.Outbox.LastSeq(ctx)
		}
		return s.opts.Outbox.LastSourceSeq(ctx, s.opts.Group, s.opts.LocalNode)
	}
	var last int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq, err := newest()
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.Warn("sender: poll store", "group", s.opts.Group, "err", err)
			}
			continue
		}
		if seq != last {
			last = seq
			s.Notify()
		}
	}
}

// refresh runs the TTL refresh for every peer in one transaction each RefreshInterval,
// then wakes each peer that has deliveries queued or retrying: those the refresh
// requeued, retries coming due, and rows another process (routerd's ExtendExpiry, a
// remediation) put back. An idle peer loop has no timer of its own, so a router with
// N−1 peers pays one write and one read per interval, not N−1 of each.
func (s *Sender) refresh(ctx context.Context) {
	o := &s.opts
	names := make([]string, len(s.peers))
	byName := make(map[string]*peerLoop, len(s.peers))
	for i, p := range s.peers {
		names[i] = p.peer.Name
		byName[p.peer.Name] = p
	}
	t := time.NewTicker(o.RefreshInterval)
	defer t.Stop()
	var refreshedTo time.Time // TTL-refresh window already examined (see RequeueRefreshed)
	for {
		now := o.Now()
		requeued, err := o.Outbox.RequeueRefreshed(ctx, o.Group, names, refreshedTo, now, o.TTLRefreshBefore)
		if err == nil {
			refreshedTo = now.Add(o.TTLRefreshBefore)
			for name, r := range requeued {
				p := byName[name]
				if r.Requeued > 0 {
					o.Metrics.repush.Add(ctx, int64(r.Requeued), attrs(p.attrs...))
				}
				if r.Stale > 0 {
					o.Metrics.staleTTL.Add(ctx, int64(r.Stale), attrs(p.attrs...))
				}
			}
			var backlog []string
			if backlog, err = o.Outbox.BacklogPeers(ctx, o.Group, names); err == nil {
				for _, name := range backlog {
					byName[name].poke()
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			o.Logger.Warn("sender: ttl refresh", "group", o.Group, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune removes old delivery rows every PruneInterval, then applies the group's event
// retention (when EventRetention is set).
func (s *Sender) prune(ctx context.Context) {
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	g := attribute.String("group", s.opts.Group)
	a := attrs(g)
	peers := make([]string, len(s.peers))
	for i, p := range s.peers {
		peers[i] = p.peer.Name
	}
	pruned := func(reason string, n int64) {
		if n > 0 {
			s.opts.Metrics.prunerPruned.Add(ctx, n, attrs(g, attribute.String("reason", reason)))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.opts.Metrics.prunerTicks.Add(ctx, 1, a)
		n, err := s.opts.Outbox.PruneDeliveries(ctx, s.opts.Group, peers, s.opts.Now(), s.opts.PruneMaxAge)
		if err == nil {
			pruned("deliveries", n)
			if s.opts.EventRetention != nil {
				o := *s.opts.EventRetention
				o.Now = s.opts.Now()
				var r store.PruneResult
				if r, err = s.opts.Outbox.Prune(ctx, o); err == nil {
					pruned("expired", r.Expired)
					pruned("aged", r.Aged)
					pruned("over_limit", r.OverLimit)
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			s.opts.Metrics.prunerTickErrs.Add(ctx, 1, a)
			s.opts.Logger.Warn("sender: prune", "group", s.opts.Group, "err", err)
		}
	}
}

func (p *peerLoop) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is one peer's loop: pass, then wait for new events, a retry time or shutdown.
func (p *peerLoop) run(ctx context.Context) {
	o := &p.s.opts
	// Store errors back off with jitter up to RetryMax; push failures wait for the
	// deliveries' own next attempt time.
	bo := o.retryPolicy().NewBackOff()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer func() {
		// Shutdown: the last delivered page must be recorded before the loop ends.
		if err := p.settle(); err != nil {
			o.Logger.Warn("sender: record deliveries at shutdown", "group", o.Group, "peer", p.peer.Name, "err", err)
		}
		p.dropAhead()
	}()
	a := attrs(p.attrs[0], p.attrs[1])
	for {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		full, retryAt, err := p.pass(ctx)
		o.Metrics.outboxTicks.Add(ctx, 1, a)
		o.Metrics.outboxTickDur.Record(ctx, time.Since(start).Seconds(), a)
		// Idle: wait to be woken (new local events, the refresh finding a backlog).
		wait := idleWait
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			o.Metrics.outboxTickErrs.Add(ctx, 1, a)
			o.Logger.Warn("sender: outbox pass", "group", o.Group, "peer", p.peer.Name, "err", err)
			wait = bo.NextBackOff()
		case !retryAt.IsZero():
			// The peer is failing: new events must not shorten the wait.
			bo.Reset()
			wait = max(time.Until(retryAt), time.Millisecond)
			if !sleep(ctx, timer, wait, nil) {
				return
			}
			continue
		case full:
			bo.Reset()
			continue
		default:
			bo.Reset()
		}
		if !sleep(ctx, timer, wait, p.wake) {
			return
		}
	}
}

// idleWait is the longest an idle peer loop sleeps without being woken: the watcher
// wakes it for new events and the refresh for a backlog, so this is only a safety net.
const idleWait = time.Minute

// sleep waits for d, a wake-up (when wake is not nil) or ctx; false means ctx ended.
func sleep(ctx context.Context, t *time.Timer, d time.Duration, wake <-chan struct{}) bool {
	t.Reset(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// pass pushes one batch. Without a backlog it takes the fast
// path: the next local events after the peer's cursor are pushed straight away and their
// delivery rows are written once, with the outcome. With a backlog (retries, TTL
// refreshes) new events queue behind it as pending rows and the due rows go first, so
// the peer sees events in order. full reports that more may be waiting; retryAt is set
// when a push failed (its outcome is recorded) and says when to try again; err is a
// store failure.
func (p *peerLoop) pass(ctx context.Context) (full bool, retryAt time.Time, err error) {
	o := &p.s.opts
	now := o.Now()
	// Backlog rows come only from recorded failures and TTL refreshes, which are written
	// synchronously, so this read need not wait for a page still being recorded.
	backlog, err := o.Outbox.HasBacklog(ctx, o.Group, p.peer.Name)
	if err != nil {
		return false, time.Time{}, err
	}
	req := store.EnqueueRequest{Group: o.Group, Peer: p.peer.Name, SourceNode: o.LocalNode, Match: p.match, AnySource: p.peer.Relay != nil, Now: now}
	var (
		due   []store.Delivery
		fresh store.FreshEvents
	)
	if backlog {
		if err := p.settle(); err != nil {
			return false, time.Time{}, fmt.Errorf("record deliveries: %w", err)
		}
		p.dropAhead()
		p.committed = 0
		req.Limit = 4 * o.BatchSize
		if _, err := o.Outbox.EnqueueDeliveries(ctx, req); err != nil {
			return false, time.Time{}, fmt.Errorf("enqueue: %w", err)
		}
		if due, err = o.Outbox.DueDeliveries(ctx, o.Group, p.peer.Name, now, o.BatchSize); err != nil {
			return false, time.Time{}, fmt.Errorf("due deliveries: %w", err)
		}
		if len(due) == 0 {
			return false, time.Time{}, nil
		}
	} else {
		req.Limit = o.BatchSize
		if ra := p.ahead; ra != nil && p.committed != 0 && ra.after == p.committed {
			<-ra.done
			fresh, err = ra.fresh, ra.err
		} else {
			// The stored cursor is only current once the last page is recorded.
			if err := p.settle(); err != nil {
				return false, time.Time{}, fmt.Errorf("record deliveries: %w", err)
			}
			fresh, err = o.Outbox.NextEvents(ctx, req)
		}
		p.dropAhead()
		if err != nil {
			return false, time.Time{}, fmt.Errorf("next events: %w", err)
		}
		if fresh.Last == fresh.After {
			// Idle: finish recording so listings and stats are current.
			if err := p.settle(); err != nil {
				return false, time.Time{}, fmt.Errorf("record deliveries: %w", err)
			}
			return false, time.Time{}, nil
		}
		if len(fresh.Events) == 0 {
			// Nothing for this peer among them: just move the cursor on.
			if err := p.settle(); err != nil {
				return false, time.Time{}, fmt.Errorf("record deliveries: %w", err)
			}
			_, err := o.Outbox.CommitFresh(ctx, o.Group, p.peer.Name, fresh, nil, now)
			p.committed = 0
			return err == nil, time.Time{}, err
		}
		due = make([]store.Delivery, len(fresh.Events))
		for i, se := range fresh.Events {
			due[i] = store.Delivery{Seq: se.Seq, Event: se.Event, StoredAt: se.ReceivedAt, TraceParent: se.TraceParent, State: store.DeliveryPending, CreatedAt: now}
		}
		// Read the next page while this one is pushed.
		ra := &readAhead{after: fresh.Last, done: make(chan struct{})}
		next := req
		next.After, next.UseAfter = fresh.Last, true
		go func() {
			defer close(ra.done)
			ra.fresh, ra.err = o.Outbox.NextEvents(context.WithoutCancel(ctx), next)
		}()
		p.ahead = ra
	}
	if !p.probed {
		p.probe(ctx)
	}
	// The push and its bookkeeping finish even when shutdown began meanwhile.
	wctx := context.WithoutCancel(ctx)
	outcomes, pushErr := p.push(wctx, due)
	// The previous page must be recorded before this one: if that failed, this page is
	// not recorded either (both are pushed again; the receiver drops the duplicates).
	if err := p.settle(); err != nil {
		return false, time.Time{}, fmt.Errorf("record deliveries: %w", err)
	}
	switch {
	case backlog:
		err = o.Outbox.RecordDeliveries(wctx, o.Group, p.peer.Name, outcomes)
	default:
		byID := make(map[string]store.DeliveryOutcome, len(outcomes))
		for _, x := range outcomes {
			byID[x.EventID] = x
		}
		ordered := make([]store.DeliveryOutcome, len(fresh.Events))
		for i, se := range fresh.Events {
			ordered[i] = byID[se.Event.ID]
		}
		if pushErr != nil {
			// Failed rows become the backlog: record them now, and read afresh later.
			p.dropAhead()
			p.committed = 0
			_, err = o.Outbox.CommitFresh(wctx, o.Group, p.peer.Name, fresh, ordered, now)
			break
		}
		// Record in the background while the next page is pushed; the next pass
		// waits for it before it records anything itself.
		rec := &recording{done: make(chan struct{})}
		go func() {
			defer close(rec.done)
			_, rec.err = o.Outbox.CommitFresh(wctx, o.Group, p.peer.Name, fresh, ordered, now)
		}()
		p.recording = rec
		p.committed = fresh.Last
	}
	if err != nil {
		return false, time.Time{}, fmt.Errorf("record deliveries: %w", err)
	}
	p.count(outcomes)
	if pushErr == nil {
		// Refused content (4xx) fails single deliveries without stopping the pass; it
		// still shows as the peer's last error.
		for _, x := range outcomes {
			if x.State == store.DeliveryFailed && x.LastError != "" {
				p.setError(errors.New(x.LastError))
			}
		}
	}
	if pushErr != nil {
		p.setError(pushErr)
		p.probed = p.peer.Publisher != nil // a peer may come back as another version: ask again
		retryAt = o.Now().Add(o.RetryMax)
		for _, x := range outcomes {
			if x.State == store.DeliveryRetrying && x.NextAttemptAt.Before(retryAt) {
				retryAt = x.NextAttemptAt
			}
		}
		return false, retryAt, nil
	}
	p.mu.Lock()
	p.health.LastSuccess = o.Now()
	p.mu.Unlock()
	return backlog && len(due) == o.BatchSize || !backlog, time.Time{}, nil
}

// match reports whether e is sent to the peer: this node's events (and the relayed
// sources' with Relay) that the peer's filters accept.
func (p *peerLoop) match(e *event.Event) bool {
	if e.SourceNode != p.s.opts.LocalNode && (p.peer.Relay == nil || !p.peer.Relay(e.SourceNode)) {
		return false
	}
	return p.peer.Matches(e)
}

// probe asks the peer what it understands; any failure means plain v1 for now.
func (p *peerLoop) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := p.client.Status(ctx)
	p.batch = nil
	if err == nil && st.Extensions.Batch != nil && st.Extensions.Batch.Path == PathBatch && st.Extensions.Batch.MaxEvents > 0 {
		p.batch = st.Extensions.Batch
	}
	// A peer that answered anything (even 404 or another document) has told us what it
	// is: plain v1. Only no answer at all means asking again before the next push.
	var pe *PushError
	p.probed = err == nil || (errors.As(err, &pe) && pe.Status != 0)
	p.mu.Lock()
	p.health.Batch = p.batch != nil
	p.mu.Unlock()
}

func (p *peerLoop) setError(err error) {
	p.mu.Lock()
	p.health.LastError = err.Error()
	p.health.LastErrorAt = p.s.opts.Now()
	p.mu.Unlock()
}

// push sends due deliveries in order and returns one outcome per delivery.
func (p *peerLoop) push(ctx context.Context, due []store.Delivery) ([]store.DeliveryOutcome, error) {
	outcomes := make([]store.DeliveryOutcome, 0, len(due))
	bodies := make([][]byte, len(due))
	for i := range due {
		b, err := due[i].Event.Marshal()
		if err == nil && len(b) > MaxEventBytes {
			err = fmt.Errorf("event is %d bytes, over the %d-byte limit", len(b), MaxEventBytes)
		}
		if err != nil {
			// Cannot ever be sent: fail it now, keep the rest.
			outcomes = append(outcomes, p.outcome(due[i], &PushError{Status: http.StatusBadRequest, Err: err}))
			continue
		}
		bodies[i] = b
	}
	if p.peer.Publisher != nil {
		return p.publish(ctx, due, bodies, outcomes)
	}
	var firstErr error
	send := func(idx []int) {
		if len(idx) == 0 {
			return
		}
		err := p.send(ctx, due, bodies, idx)
		var pe *PushError
		if err != nil && errors.As(err, &pe) && pe.Permanent() && len(idx) > 1 {
			// One bad event must not sink its batch: retry them one by one.
			for _, i := range idx {
				err1 := p.send(ctx, due, bodies, []int{i})
				outcomes = append(outcomes, p.outcome(due[i], err1))
				if isTransient(err1) && firstErr == nil {
					firstErr = err1
				}
			}
			return
		}
		for _, i := range idx {
			outcomes = append(outcomes, p.outcome(due[i], err))
		}
		if isTransient(err) && firstErr == nil {
			firstErr = err
		}
	}
	var (
		pending      []int
		pendingBytes int64
	)
	for i := range due {
		if bodies[i] == nil {
			continue
		}
		if firstErr != nil {
			// The peer is failing: keep order, retry the rest later without sending.
			outcomes = append(outcomes, p.heldBack(due[i], firstErr))
			continue
		}
		if p.batch == nil {
			send([]int{i})
			continue
		}
		size := int64(len(bodies[i]) + 1)
		if len(pending) > 0 && (len(pending) >= p.batch.MaxEvents || pendingBytes+size > p.batch.MaxBytes-1024) {
			send(pending)
			pending, pendingBytes = nil, 0
			if firstErr != nil {
				outcomes = append(outcomes, p.heldBack(due[i], firstErr))
				continue
			}
		}
		pending = append(pending, i)
		pendingBytes += size
	}
	if firstErr == nil {
		send(pending)
	} else {
		for _, i := range pending {
			outcomes = append(outcomes, p.heldBack(due[i], firstErr))
		}
	}
	return outcomes, firstErr
}

// publish hands the encodable deliveries to the peer's Publisher and turns its answers
// into outcomes (appended to outcomes, which holds those already failed).
func (p *peerLoop) publish(ctx context.Context, due []store.Delivery, bodies [][]byte, outcomes []store.DeliveryOutcome) ([]store.DeliveryOutcome, error) {
	o := &p.s.opts
	var (
		idx    []int
		events []event.Event
		bs     [][]byte
	)
	for i := range due {
		if bodies[i] != nil {
			idx = append(idx, i)
			events = append(events, due[i].Event)
			bs = append(bs, bodies[i])
		}
	}
	if len(idx) == 0 {
		return outcomes, nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	errs := p.peer.Publisher.Publish(ctx, events, bs)
	if len(errs) != len(idx) {
		err := fmt.Errorf("publisher answered %d of %d events", len(errs), len(idx))
		errs = make([]error, len(idx))
		for j := range errs {
			errs[j] = err
		}
	}
	var firstErr error
	var ok, failed int64
	for j, i := range idx {
		outcomes = append(outcomes, p.outcome(due[i], errs[j]))
		if errs[j] == nil {
			ok++
			continue
		}
		failed++
		if isTransient(errs[j]) && firstErr == nil {
			firstErr = errs[j]
		}
	}
	for st, n := range map[string]int64{"ok": ok, "error": failed} {
		if n > 0 {
			o.Metrics.attempts.Add(ctx, n, attrs(p.attrs[0], p.attrs[1], attribute.String("status", st)))
		}
	}
	return outcomes, firstErr
}

// permanent is an error that retrying cannot cure (*PushError for a refused body, and a
// Publisher's own errors).
type permanent interface{ Permanent() bool }

// isPermanent reports whether err says that retrying the same event cannot succeed.
func isPermanent(err error) bool {
	var pe permanent
	return errors.As(err, &pe) && pe.Permanent()
}

// isTransient reports whether err is a push failure worth retrying (not a refusal of
// the content itself). A transient failure stops the pass to keep the peer's order.
func isTransient(err error) bool {
	return err != nil && !isPermanent(err)
}

// send pushes the events idx as one request (v1 when single and no batch support).
func (p *peerLoop) send(ctx context.Context, due []store.Delivery, bodies [][]byte, idx []int) error {
	o := &p.s.opts
	ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	// The push continues the trace of the (first) event and links the others; the
	// client sends the span as the traceparent header.
	parents := make([]string, 0, len(idx))
	for _, i := range idx {
		if tp := due[i].TraceParent; tp != "" {
			parents = append(parents, tp)
		}
	}
	ctx, span := tracectx.Start(ctx, "eventd.deliver", parents)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("routerd.group", p.s.opts.Group), attribute.String("routerd.peer", p.peer.Name), attribute.Int("routerd.events", len(idx)))
	}
	var err error
	if p.batch == nil {
		_, err = p.client.PushEvent(ctx, bodies[idx[0]])
	} else {
		// The bodies are already compact JSON from event.Marshal: join them as they are
		// instead of letting encoding/json re-validate every byte.
		size := len(`{"events":[]}`) + len(idx)
		for _, i := range idx {
			size += len(bodies[i])
		}
		body := make([]byte, 0, size)
		body = append(body, `{"events":[`...)
		for j, i := range idx {
			if j > 0 {
				body = append(body, ',')
			}
			body = append(body, bodies[i]...)
		}
		body = append(body, `]}`...)
		var resp BatchResponse
		resp, err = p.client.PushBatch(ctx, p.batch.Path, body)
		if err == nil && resp.Count != len(idx) {
			err = &PushError{Status: http.StatusOK, Err: fmt.Errorf("peer acknowledged %d of %d events", resp.Count, len(idx))}
		}
	}
	var pe *PushError
	if errors.As(err, &pe) && pe.Status == http.StatusConflict && pe.Reason == ReasonReplay {
		// The identical signed batch was accepted before (our earlier attempt's answer
		// was lost): it is delivered.
		err = nil
	}
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		p.probed = false // the peer changed; ask again
	}
	status := "ok"
	if err != nil {
		status = "error"
	}
	o.Metrics.attempts.Add(ctx, int64(len(idx)), attrs(p.attrs[0], p.attrs[1], attribute.String("status", status)))
	return err
}

// outcome turns a push result into the delivery row's next state.
func (p *peerLoop) outcome(d store.Delivery, err error) store.DeliveryOutcome {
	o := &p.s.opts
	now := o.Now()
	out := store.DeliveryOutcome{EventID: d.Event.ID, Attempts: d.Attempts + 1}
	if err == nil {
		out.State = store.DeliveryDelivered
		out.DeliveredAt = now
		out.DeliveredExpiresAt = d.Event.ExpiresAt
		out.FirstDelivery = d.DeliveredAt.IsZero()
		out.Lag = now.Sub(d.StoredAt)
		return out
	}
	out.LastError = err.Error()
	if isPermanent(err) || now.Sub(d.CreatedAt) >= o.FailAfter {
		out.State = store.DeliveryFailed
		return out
	}
	out.State = store.DeliveryRetrying
	out.NextAttemptAt = now.Add(o.retryPolicy().Delay(d.Attempts))
	return out
}

// heldBack is the outcome of a delivery not sent because an earlier one of the pass
// failed: it waits like the failed one but its attempt count is unchanged.
func (p *peerLoop) heldBack(d store.Delivery, err error) store.DeliveryOutcome {
	out := p.outcome(d, err)
	out.Attempts = d.Attempts
	if out.State == store.DeliveryFailed && d.CreatedAt.Add(p.s.opts.FailAfter).After(p.s.opts.Now()) {
		out.State = store.DeliveryRetrying
		out.NextAttemptAt = p.s.opts.Now().Add(p.s.opts.retryPolicy().Delay(d.Attempts))
	}
	return out
}

func (p *peerLoop) count(outcomes []store.DeliveryOutcome) {
	o := &p.s.opts
	ctx := context.Background()
	var n [3]int64
	for _, x := range outcomes {
		switch x.State {
		case store.DeliveryDelivered:
			n[0]++
			if x.FirstDelivery {
				o.Metrics.lag.Record(ctx, x.Lag.Seconds(), attrs(p.attrs...))
			}
		case store.DeliveryRetrying:
			n[1]++
		case store.DeliveryFailed:
			n[2]++
		}
	}
	for i, st := range []string{store.DeliveryDelivered, store.DeliveryRetrying, store.DeliveryFailed} {
		if n[i] > 0 {
			o.Metrics.deliveries.Add(ctx, n[i], attrs(p.attrs[0], p.attrs[1], attribute.String("status", st)))
		}
	}
}

// SenderRetryJitter spreads the sender's retry waits by ±25%.
const SenderRetryJitter = 0.25

// retryPolicy is the sender's retry schedule: RetryBase doubling up to RetryMax, ±25%
// jitter (never above RetryMax). It times both a failing delivery's next attempt
// (base·2^attempts) and the loop's wait after a store error.
func (o *SenderOptions) retryPolicy() retry.Policy {
	return retry.Policy{Base: o.RetryBase, Max: o.RetryMax, Jitter: SenderRetryJitter}
}
