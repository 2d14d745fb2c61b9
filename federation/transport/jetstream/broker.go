package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/retry"
	"routerd.net/routerd/federation/transport"
)

// Options configure a Broker.
type Options struct {
	// Group and LocalNode name the group and this router.
	Group, LocalNode string
	// Config is the group's spec.transport (transport.GroupConfig.JetStream).
	Config transport.JetStreamConfig
	// DefaultStoreDir is the embedded server's directory when Config.Embedded.StoreDir
	// is empty (routerd-eventd: <state-dir>/nats/<group>).
	DefaultStoreDir string
	// BatchSize is the most messages verified and stored in one transaction (default 256).
	BatchSize int
	// AckWait is how long the stream waits for this router's acknowledgement before it
	// redelivers a message (default 30s).
	AckWait time.Duration
	// ReconnectWait is the pause between reconnection attempts (default 250ms).
	ReconnectWait time.Duration
	// Logger gets connection changes and failures (default: discard).
	Logger *slog.Logger
	// Now is the clock of signatures (default time.Now).
	Now func() time.Time
	// MeterProvider gets the routerd_eventd_jetstream_* metrics (nil: none); routerd-eventd
	// passes the provider of its /metrics, the one of transport.DaemonOptions.
	MeterProvider metric.MeterProvider
	// PendingInterval is how often, at most, a scrape of consumer_pending asks the
	// servers for the consumer's info (default DefaultPendingInterval).
	PendingInterval time.Duration
}

// Broker is the NATS JetStream transport of one group: the publisher behind the sender's
// pseudo-peer PeerName(stream) and the durable consumer that feeds a transport.Receiver.
// It implements transport.Broker and transport.Publisher.
type Broker struct {
	opts     Options
	cfg      transport.JetStreamConfig
	embedded *Embedded
	filter   string
	own      string

	mu     sync.Mutex
	nc     *nats.Conn
	js     jetstream.JetStream
	cancel context.CancelFunc
	done   chan struct{}
	closed bool

	ready     chan struct{} // closed once the consumer first receives
	readyOnce sync.Once

	ownIgnored atomic.Int64
	redeliver  atomic.Int64

	metrics *metrics
	conn    atomic.Pointer[nats.Conn] // read by the gauges without mu
	pending pendingCache
	reg     metric.Registration // the gauges' callback, from Start to Shutdown
	closing atomic.Bool         // Shutdown closes the connection: not a lost one
}

// NewBroker validates opts; Start connects (and starts the embedded server).
func NewBroker(opts Options) (*Broker, error) {
	c := opts.Config
	switch {
	case opts.Group == "" || opts.LocalNode == "":
		return nil, errors.New("jetstream: group and local node are required")
	case c.Stream == "" || c.SubjectPrefix == "":
		return nil, fmt.Errorf("jetstream: group %s: spec.transport.stream and subjectPrefix are required (EventGroup.SetDefaults sets them)", opts.Group)
	case len(c.SignKey.Secret) == 0:
		return nil, fmt.Errorf("jetstream: group %s: no signing key: set spec.auth.secretFile of the EventGroup", opts.Group)
	case len(c.Servers) == 0 && c.Embedded == nil:
		return nil, fmt.Errorf("jetstream: group %s: spec.transport.servers is empty: list the NATS servers or set spec.transport.embedded", opts.Group)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.ReconnectWait <= 0 {
		opts.ReconnectWait = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PendingInterval <= 0 {
		opts.PendingInterval = DefaultPendingInterval
	}
	m, err := newMetrics(opts.MeterProvider, opts.Group)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		opts: opts, cfg: c, ready: make(chan struct{}),
		filter:  GroupFilter(c.SubjectPrefix, opts.Group),
		own:     Token(opts.LocalNode),
		metrics: m,
	}
	b.pending.interval = opts.PendingInterval
	return b, nil
}

// Peer is the sender's pseudo-peer: delivery rows under PeerName(stream), delivered when
// the stream acknowledged the publish.
func (b *Broker) Peer() transport.Peer {
	return transport.Peer{Name: PeerName(b.cfg.Stream), Publisher: b}
}

// Ready is closed once the stream and this router's consumer exist and it receives.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// OwnIgnored counts this router's own messages read back from the stream and ignored.
func (b *Broker) OwnIgnored() int64 { return b.ownIgnored.Load() }

// Redelivered counts messages handed back to the stream because the store failed.
func (b *Broker) Redelivered() int64 { return b.redeliver.Load() }

// Embedded returns the in-process server (nil when not embedded).
func (b *Broker) Embedded() *Embedded { return b.embedded }

// Start starts the embedded server (when configured), connects, and receives into recv
// in the background: the stream and the durable consumer are created when missing,
// retried until the servers answer. An unreachable cluster is not an error here; the
// outbox keeps what is published meanwhile.
func (b *Broker) Start(ctx context.Context, recv *transport.Receiver) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.nc != nil {
		return fmt.Errorf("jetstream: group %s: broker already started", b.opts.Group)
	}
	servers := b.cfg.Servers
	if e := b.cfg.Embedded; e != nil {
		dir := e.StoreDir
		if dir == "" {
			dir = b.opts.DefaultStoreDir
		}
		emb, err := StartEmbedded(EmbeddedOptions{Listen: e.Listen, StoreDir: dir, Name: "routerd-" + b.own, Logger: b.opts.Logger})
		if err != nil {
			return err
		}
		b.embedded = emb
		if len(servers) == 0 {
			servers = []string{emb.URL()}
		}
	}
	log := b.opts.Logger
	m := b.metrics
	nopts := []nats.Option{
		nats.Name("routerd-eventd " + b.opts.Group + "/" + b.opts.LocalNode),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(b.opts.ReconnectWait),
		// Publishing while disconnected fails at once: the outbox is the buffer.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("jetstream: connected", "group", b.opts.Group, "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.closing.Load() {
				return
			}
			m.disconnects.Add(context.Background(), 1, m.group)
			log.Warn("jetstream: disconnected", "group", b.opts.Group, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.reconnects.Add(context.Background(), 1, m.group)
			log.Info("jetstream: reconnected", "group", b.opts.Group, "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			if !b.closing.Load() {
				log.Warn("jetstream: connection closed", "group", b.opts.Group)
			}
		}),
	}
	if b.cfg.CredentialsFile != "" {
		nopts = append(nopts, nats.UserCredentials(b.cfg.CredentialsFile))
	}
	nc, err := nats.Connect(strings.Join(servers, ","), nopts...)
	if err != nil {
		b.stopEmbedded()
		return fmt.Errorf("jetstream: group %s: connect %s: %w", b.opts.Group, strings.Join(servers, ","), err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4*b.opts.BatchSize), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		b.stopEmbedded()
		return fmt.Errorf("jetstream: group %s: %w", b.opts.Group, err)
	}
	reg, err := m.meter.RegisterCallback(b.observe, m.connected, m.pending)
	if err != nil {
		nc.Close()
		b.stopEmbedded()
		return fmt.Errorf("jetstream: group %s: register metrics: %w", b.opts.Group, err)
	}
	b.nc, b.js, b.reg = nc, js, reg
	b.conn.Store(nc)
	ctx, b.cancel = context.WithCancel(ctx)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		b.run(ctx, recv)
	}()
	return nil
}

// Shutdown stops consuming (messages being stored are stored and acknowledged first),
// closes the connection and stops the embedded server, within ctx. Safe to call twice.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	cancel, done, nc, reg := b.cancel, b.done, b.nc, b.reg
	b.mu.Unlock()
	// Unregistered outside mu: a scrape running the callback finishes first.
	if reg != nil {
		_ = reg.Unregister()
	}
	var err error
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("jetstream: group %s: shutdown: %w", b.opts.Group, ctx.Err())
		}
	}
	if nc != nil {
		// Flush the last acknowledgements before closing.
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		_ = nc.FlushWithContext(fctx)
		fcancel()
		b.closing.Store(true)
		nc.Close()
	}
	b.stopEmbedded()
	return err
}

func (b *Broker) stopEmbedded() {
	if b.embedded != nil {
		b.embedded.Shutdown()
	}
}

// run ensures the stream and the consumer, then consumes; it starts over (with backoff)
// when either step fails or the consumer goes away, until ctx ends.
func (b *Broker) run(ctx context.Context, recv *transport.Receiver) {
	bo := retry.Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.25}.NewBackOff()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		cons, err := b.ensure(ctx)
		if err == nil {
			bo.Reset()
			err = b.consume(ctx, cons, recv)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.opts.Logger.Warn("jetstream: consumer", "group", b.opts.Group, "stream", b.cfg.Stream, "err", err)
		}
		timer.Reset(bo.NextBackOff())
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// ensure creates the stream when it is missing (an existing one is used as it is, so an
// operator may create it with replicas or other limits) and this router's durable
// consumer.
func (b *Broker) ensure(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := b.js.Stream(ctx, b.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        b.cfg.Stream,
			Description: "routerd federation events of group " + b.opts.Group,
			Subjects:    []string{b.filter},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      b.cfg.MaxAge,
			Duplicates:  dupWindow(b.cfg.MaxAge),
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = b.js.Stream(ctx, b.cfg.Stream) // another router created it meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", b.cfg.Stream, err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != b.cfg.MaxAge {
		b.opts.Logger.Warn("jetstream: stream retention differs from the group's retention.maxAge; using the stream as it is",
			"group", b.opts.Group, "stream", b.cfg.Stream, "streamMaxAge", got, "retentionMaxAge", b.cfg.MaxAge)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       DurableName(b.opts.LocalNode),
		Description:   "routerd node " + b.opts.LocalNode,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.opts.AckWait,
		MaxAckPending: 8 * b.opts.BatchSize,
		FilterSubject: b.filter,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on stream %s: %w", DurableName(b.opts.LocalNode), b.cfg.Stream, err)
	}
	b.pending.set(cons)
	return cons, nil
}

// consume receives until ctx ends (nil) or the consumption stops on its own (error).
// Messages are taken in batches: the first one waits, then whatever else has arrived,
// up to BatchSize, is verified and stored with it in one transaction.
func (b *Broker) consume(ctx context.Context, cons jetstream.Consumer, recv *transport.Receiver) error {
	in := make(chan jetstream.Msg, b.opts.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(2*b.opts.BatchSize), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		b.opts.Logger.Debug("jetstream: consume", "group", b.opts.Group, "err", err)
	}))
	if err != nil {
		return err
	}
	defer cc.Stop()
	b.readyOnce.Do(func() { close(b.ready) })
	batch := make([]jetstream.Msg, 0, b.opts.BatchSize)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case <-cc.Closed():
			return errors.New("consumption stopped (consumer deleted?)")
		case m := <-in:
			batch = append(batch, m)
		}
	fill:
		for len(batch) < b.opts.BatchSize {
			select {
			case m := <-in:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		b.handle(context.WithoutCancel(ctx), batch, recv)
	}
}

// handle verifies and stores one batch, then acknowledges: stored, duplicate and expired
// messages are acknowledged, rejected ones terminated (never redelivered), and on a store
// failure every message is handed back for redelivery.
func (b *Broker) handle(ctx context.Context, batch []jetstream.Msg, recv *transport.Receiver) {
	msgs := make([]transport.SignedMessage, 0, len(batch))
	idx := make([]int, 0, len(batch))
	var own, again int64
	for i, m := range batch {
		if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
			again++
		}
		if sourceToken(m.Subject()) == b.own {
			own++
			_ = m.Ack()
			continue
		}
		msgs = append(msgs, transport.SignedMessage{Header: http.Header(m.Headers()), Body: m.Data()})
		idx = append(idx, i)
	}
	mx := b.metrics
	if again > 0 {
		mx.redeliveries.Add(ctx, again, mx.redelivered)
	}
	if own > 0 {
		b.ownIgnored.Add(own)
		mx.ownIgnored.Add(ctx, own, mx.group)
	}
	if len(msgs) == 0 {
		return
	}
	res, err := recv.AcceptMessages(ctx, msgs)
	if err != nil {
		b.redeliver.Add(int64(len(idx)))
		mx.redeliveries.Add(ctx, int64(len(idx)), mx.storeError)
		for _, i := range idx {
			_ = batch[i].NakWithDelay(time.Second)
		}
		return
	}
	var terminated int64
	for j, i := range idx {
		if res[j].Rejected != "" {
			terminated++
			_ = batch[i].Term()
			continue
		}
		_ = batch[i].Ack()
	}
	if terminated > 0 {
		mx.terminated.Add(ctx, terminated, mx.group)
	}
}

// permanentError is a publish that can never succeed (the message is too large for the
// servers): the delivery fails at once.
type permanentError struct{ error }

// Permanent implements the transport's permanent-error check.
func (permanentError) Permanent() bool { return true }

func (e permanentError) Unwrap() error { return e.error }

// Publish implements transport.Publisher: every event is signed with the group key and
// published asynchronously with its Nats-Msg-Id, then each acknowledgement is awaited
// (until ctx ends).
func (b *Broker) Publish(ctx context.Context, events []event.Event, bodies [][]byte) []error {
	errs := make([]error, len(events))
	defer b.countPublishErrors(errs)
	b.mu.Lock()
	js := b.js
	b.mu.Unlock()
	if js == nil {
		err := fmt.Errorf("jetstream: group %s: %w", b.opts.Group, errNotConnected)
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	key := b.cfg.SignKey
	ts := b.opts.Now().Unix()
	tsText := strconv.FormatInt(ts, 10)
	futures := make([]jetstream.PubAckFuture, len(events))
	for i := range events {
		e := &events[i]
		m := &nats.Msg{
			Subject: Subject(b.cfg.SubjectPrefix, b.opts.Group, e.Type, e.SourceNode),
			Data:    bodies[i],
			Header:  nats.Header{},
		}
		m.Header.Set(transport.HeaderTimestamp, tsText)
		m.Header.Set(transport.HeaderSignature, transport.Sign(key.Secret, ts, bodies[i]))
		if key.ID != "" {
			m.Header.Set(transport.HeaderKeyID, key.ID)
		}
		f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(MsgID(e)), jetstream.WithExpectStream(b.cfg.Stream))
		if err != nil {
			errs[i] = publishError(b.cfg.Stream, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = publishError(b.cfg.Stream, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("jetstream: stream %s: no acknowledgement: %w", b.cfg.Stream, ctx.Err())
		}
	}
	return errs
}

// countPublishErrors counts the failed publishes of one call by reason; those cut short
// by the caller (the router stopping) are not failures of the broker.
func (b *Broker) countPublishErrors(errs []error) {
	var counts map[string]int
	for _, err := range errs {
		if err == nil || errors.Is(err, context.Canceled) {
			continue
		}
		if counts == nil {
			counts = make(map[string]int, len(publishReasons))
		}
		counts[publishReason(err)]++
	}
	for r, n := range counts {
		b.metrics.publishFailed(r, n)
	}
}

func publishError(stream string, err error) error {
	err = fmt.Errorf("jetstream: publish to stream %s: %w", stream, err)
	if errors.Is(err, nats.ErrMaxPayload) {
		return permanentError{err}
	}
	return err
}
