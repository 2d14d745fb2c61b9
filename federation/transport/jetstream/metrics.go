package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"routerd.net/routerd/federation/transport"
)

// MetricPrefix starts the name of every broker metric (routerd_eventd_jetstream_).
const MetricPrefix = transport.MetricPrefix + "jetstream_"

// Reasons of routerd_eventd_jetstream_redeliveries_total.
const (
	// RedeliveryStoreError: this router handed the message back (NakWithDelay) because
	// the store failed.
	RedeliveryStoreError = "store_error"
	// RedeliveryRedelivered: the message arrived with NumDelivered > 1, the stream sent
	// it again (after a store error, an acknowledgement timeout or a restart).
	RedeliveryRedelivered = "redelivered"
)

// Reasons of routerd_eventd_jetstream_publish_errors_total (one per failed message).
const (
	// PublishTimeout: no acknowledgement from the stream in time.
	PublishTimeout = "timeout"
	// PublishNoResponders: the servers answered that no stream takes the subject.
	PublishNoResponders = "no_responders"
	// PublishMaxPayload: the message is larger than the servers or the stream allow.
	PublishMaxPayload = "max_payload"
	// PublishDisconnected: the router was not connected (the outbox retries).
	PublishDisconnected = "disconnected"
	// PublishOther: any other failure (see the delivery's last error).
	PublishOther = "other"
)

var publishReasons = []string{PublishTimeout, PublishNoResponders, PublishMaxPayload, PublishDisconnected, PublishOther}

// DefaultPendingInterval is how often, at most, consumer_pending asks the servers for the
// consumer's info; a scrape in between reports the cached value.
const DefaultPendingInterval = 2 * time.Second

// pendingTimeout bounds the consumer info request made during a scrape: on timeout the
// scrape reports the last known value.
const pendingTimeout = 500 * time.Millisecond

// metrics are the broker's instruments on the daemon's MeterProvider. Attributes are only
// group and reason (bounded sets); event ids and subjects never become attributes.
type metrics struct {
	meter         metric.Meter
	connected     metric.Int64ObservableGauge
	pending       metric.Int64ObservableGauge
	reconnects    metric.Int64Counter
	disconnects   metric.Int64Counter
	redeliveries  metric.Int64Counter
	terminated    metric.Int64Counter
	ownIgnored    metric.Int64Counter
	publishErrors metric.Int64Counter

	// Attribute sets, built once: the hot path adds with them.
	group       metric.MeasurementOption
	storeError  metric.MeasurementOption
	redelivered metric.MeasurementOption
	publish     map[string]metric.MeasurementOption
}

// newMetrics creates the instruments on mp (nil: the no-op provider) and exports every
// counter series of group with value 0.
func newMetrics(mp metric.MeterProvider, group string) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := &metrics{meter: mp.Meter("routerd.net/routerd/federation/transport/jetstream")}
	var errs []error
	counter := func(dst *metric.Int64Counter, name, desc string) {
		c, err := m.meter.Int64Counter(MetricPrefix+name, metric.WithDescription(desc))
		errs = append(errs, err)
		*dst = c
	}
	gauge := func(dst *metric.Int64ObservableGauge, name, desc string) {
		g, err := m.meter.Int64ObservableGauge(MetricPrefix+name, metric.WithDescription(desc))
		errs = append(errs, err)
		*dst = g
	}
	gauge(&m.connected, "connected", "1 while the router is connected to a NATS server, 0 while it is not.")
	gauge(&m.pending, "consumer_pending", "Messages of the stream this router's durable consumer has not acknowledged yet (NumPending + NumAckPending; refreshed at most every few seconds).")
	counter(&m.reconnects, "reconnects_total", "Reconnections to a NATS server after a lost connection.")
	counter(&m.disconnects, "disconnects_total", "Connections to a NATS server lost (not counting the router's own shutdown).")
	counter(&m.redeliveries, "redeliveries_total", "Messages handed back for redelivery (reason store_error) and messages that arrived again (reason redelivered).")
	counter(&m.terminated, "terminated_total", "Messages terminated (never redelivered) because the receiver rejected them.")
	counter(&m.ownIgnored, "own_ignored_total", "This router's own messages read back from the stream, acknowledged and ignored.")
	counter(&m.publishErrors, "publish_errors_total", "Events whose publish into the stream failed, by reason (timeout, no_responders, max_payload, disconnected, other).")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("jetstream: group %s: create metrics: %w", group, err)
	}
	g := attribute.String("group", group)
	set := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(kv...))
	}
	m.group = set(g)
	m.storeError = set(g, attribute.String("reason", RedeliveryStoreError))
	m.redelivered = set(g, attribute.String("reason", RedeliveryRedelivered))
	m.publish = make(map[string]metric.MeasurementOption, len(publishReasons))
	for _, r := range publishReasons {
		m.publish[r] = set(g, attribute.String("reason", r))
	}
	ctx := context.Background()
	for _, c := range []metric.Int64Counter{m.reconnects, m.disconnects, m.terminated, m.ownIgnored} {
		c.Add(ctx, 0, m.group)
	}
	m.redeliveries.Add(ctx, 0, m.storeError)
	m.redeliveries.Add(ctx, 0, m.redelivered)
	for _, o := range m.publish {
		m.publishErrors.Add(ctx, 0, o)
	}
	return m, nil
}

// publishFailed counts n failed publishes of reason.
func (m *metrics) publishFailed(reason string, n int) {
	if n > 0 {
		m.publishErrors.Add(context.Background(), int64(n), m.publish[reason])
	}
}

// publishReason is the bounded reason of a failed publish.
func publishReason(err error) string {
	switch {
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum):
		return PublishMaxPayload
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return PublishNoResponders
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return PublishTimeout
	case errors.Is(err, errNotConnected), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining):
		return PublishDisconnected
	}
	return PublishOther
}

// errNotConnected: Publish was called before Start connected.
var errNotConnected = errors.New("not connected")

// pendingCache is the last consumer_pending value: a scrape asks the servers at most every
// interval, one request at a time, bounded by pendingTimeout.
type pendingCache struct {
	interval time.Duration
	cons     atomic.Pointer[consumerRef]
	fetching atomic.Bool

	mu      sync.Mutex
	value   int64
	known   bool
	fetched time.Time
}

// consumerRef holds the current consumer (an interface, so behind a pointer).
type consumerRef struct{ c jetstream.Consumer }

// set records the consumer and its info at creation (the backlog when the router starts).
func (p *pendingCache) set(c jetstream.Consumer) {
	p.cons.Store(&consumerRef{c})
	if info := c.CachedInfo(); info != nil {
		p.store(info, time.Now())
	}
}

func (p *pendingCache) store(info *jetstream.ConsumerInfo, at time.Time) {
	p.mu.Lock()
	p.value = int64(info.NumPending) + int64(info.NumAckPending)
	p.known = true
	p.fetched = at
	p.mu.Unlock()
}

// get returns the pending count, asking the servers first when the cached value is older
// than the interval and no other request is in flight.
func (p *pendingCache) get(ctx context.Context) (int64, bool) {
	ref := p.cons.Load()
	p.mu.Lock()
	stale := time.Since(p.fetched) >= p.interval
	p.mu.Unlock()
	if ref != nil && stale && p.fetching.CompareAndSwap(false, true) {
		fctx, cancel := context.WithTimeout(ctx, pendingTimeout)
		info, err := ref.c.Info(fctx)
		cancel()
		if err == nil {
			p.store(info, time.Now())
		} else {
			// A failed request waits for the next interval too: a scrape while the
			// servers are unreachable costs at most one bounded request per interval.
			p.mu.Lock()
			p.fetched = time.Now()
			p.mu.Unlock()
		}
		p.fetching.Store(false)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.value, p.known
}

// observe reports the gauges of b: connected while b holds a connection, consumer_pending
// once the consumer was created.
func (b *Broker) observe(ctx context.Context, o metric.Observer) error {
	m := b.metrics
	if nc := b.conn.Load(); nc != nil {
		v := int64(0)
		if nc.IsConnected() {
			v = 1
		}
		o.ObserveInt64(m.connected, v, m.group)
	}
	if v, ok := b.pending.get(ctx); ok {
		o.ObserveInt64(m.pending, v, m.group)
	}
	return nil
}
