package jetstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/federation/transport/transporttest"
)

// meter is an SDK MeterProvider read by a ManualReader: each read is what a scrape of
// /metrics would see.
type meter struct {
	mp *sdkmetric.MeterProvider
	r  *sdkmetric.ManualReader
}

func newMeter(t testing.TB) *meter {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &meter{mp: mp, r: r}
}

// series is one exported int64 series: its metric name, attributes and value.
type series struct {
	name  string
	attrs attribute.Set
	value int64
}

// collect reads every int64 series (counters and gauges) once.
func (m *meter) collect(t testing.TB) []series {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []series
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			var dps []metricdata.DataPoint[int64]
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				dps = d.DataPoints
			case metricdata.Gauge[int64]:
				dps = d.DataPoints
			default:
				t.Fatalf("%s: unexpected data type %T", mt.Name, mt.Data)
			}
			for _, dp := range dps {
				out = append(out, series{name: mt.Name, attrs: dp.Attributes, value: dp.Value})
			}
		}
	}
	return out
}

// value is the value of metric name (without the routerd_eventd_jetstream_ prefix) for
// group lab and the optional reason; ok is false when the series is not exported.
func (m *meter) value(t testing.TB, name, reason string) (v int64, ok bool) {
	t.Helper()
	kv := []attribute.KeyValue{attribute.String("group", testGroup)}
	if reason != "" {
		kv = append(kv, attribute.String("reason", reason))
	}
	want := attribute.NewSet(kv...)
	for _, s := range m.collect(t) {
		if s.name == MetricPrefix+name && s.attrs.Equals(&want) {
			return s.value, true
		}
	}
	return 0, false
}

// is reports whether the series of name (and reason) is exported with value want.
func (m *meter) is(t testing.TB, name, reason string, want int64) bool {
	t.Helper()
	v, ok := m.value(t, name, reason)
	return ok && v == want
}

func (m *meter) get(t testing.TB, name, reason string) int64 {
	t.Helper()
	v, _ := m.value(t, name, reason)
	return v
}

func withMeter(m *meter) func(*Options) {
	return func(o *Options) { o.MeterProvider = m.mp }
}

// TestMetricsConnection: connected follows the server going away and coming back on the
// same port, each lost connection and reconnection is counted once, publishes while
// disconnected are counted as such, and the router's own shutdown is no lost connection.
func TestMetricsConnection(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	port := srv.Port()
	m := newMeter(t)
	a := startRouterOpts(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil, withMeter(m))
	transporttest.WaitUntil(t, 20*time.Second, "connected 1", func() bool { return m.is(t, "connected", "", 1) })
	for _, name := range []string{"reconnects_total", "disconnects_total"} {
		if !m.is(t, name, "", 0) {
			t.Errorf("%s not exported as 0 after the first connection", name)
		}
	}

	srv.Shutdown()
	transporttest.WaitUntil(t, 20*time.Second, "connected 0 and one disconnect", func() bool {
		return m.is(t, "connected", "", 0) && m.is(t, "disconnects_total", "", 1)
	})
	insert(t, a.st, newEvents("a", 3))
	transporttest.WaitUntil(t, 20*time.Second, "publishes failed as disconnected", func() bool {
		return m.get(t, "publish_errors_total", PublishDisconnected) > 0
	})

	startServer(t, dir, port)
	transporttest.WaitUntil(t, 30*time.Second, "connected 1 and one reconnect", func() bool {
		return m.is(t, "connected", "", 1) && m.is(t, "reconnects_total", "", 1)
	})
	transporttest.WaitUntil(t, 20*time.Second, "queued publishes delivered", func() bool { return deliveryStates(t, a.st, peer)["delivered"] == 3 })

	if err := a.d.Close(); err != nil {
		t.Fatal(err)
	}
	if v, ok := m.value(t, "connected", ""); ok {
		t.Errorf("connected still exported (%d) after the broker shut down", v)
	}
	if v := m.get(t, "disconnects_total", ""); v != 1 {
		t.Errorf("disconnects_total = %d after shutdown, want 1 (closing is not a lost connection)", v)
	}
}

// TestMetricsMessages: what the consumer does with each kind of message is counted under
// its metric and no other.
func TestMetricsMessages(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	m := newMeter(t)
	a := startRouter(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil)
	b := startRouterOpts(t, "b", openStore(t, dir, "b"), jsConfig(srv.URL()), nil, withMeter(m))
	select {
	case <-b.b.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("b's consumer not ready")
	}
	js := jsClient(t, srv.URL())
	forge := func(secret []byte) []event.Event {
		e := newEvents("c", 1)[0]
		body, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ts := time.Now().Unix()
		msg := &nats.Msg{Subject: Subject("routerd", testGroup, e.Type, "c"), Data: body, Header: nats.Header{}}
		msg.Header.Set(transport.HeaderTimestamp, strconv.FormatInt(ts, 10))
		msg.Header.Set(transport.HeaderSignature, transport.Sign(secret, ts, body))
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		return []event.Event{e}
	}
	tests := []struct {
		name string
		send func() []event.Event // returns what b must store (nil: nothing)
		own  int64                // own_ignored_total increase
		term int64                // terminated_total increase
	}{
		{name: "another router's events stored", send: func() []event.Event {
			evs := newEvents("a", 3)
			insert(t, a.st, evs)
			return evs
		}},
		{name: "own events read back and ignored", own: 4, send: func() []event.Event {
			insert(t, b.st, newEvents("b", 4))
			return nil
		}},
		{name: "forged message terminated", term: 1, send: func() []event.Event {
			forge(wrongKey)
			return nil
		}},
		{name: "correctly signed message stored", send: func() []event.Event { return forge(groupKey) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own0, term0 := m.get(t, "own_ignored_total", ""), m.get(t, "terminated_total", "")
			ownAcc0 := b.b.OwnIgnored()
			accepted0 := b.d.BrokerReceiver().Status().Counters.Accepted
			stored := tt.send()
			transporttest.WaitUntil(t, 20*time.Second, "the messages handled", func() bool {
				return m.get(t, "own_ignored_total", "") >= own0+tt.own &&
					m.get(t, "terminated_total", "") >= term0+tt.term &&
					b.d.BrokerReceiver().Status().Counters.Accepted >= accepted0+int64(len(stored))
			})
			if len(stored) > 0 && !has(t, b.st, stored) {
				t.Error("events not stored at b")
			}
			if d := m.get(t, "own_ignored_total", "") - own0; d != tt.own {
				t.Errorf("own_ignored_total grew by %d, want %d", d, tt.own)
			}
			if d := b.b.OwnIgnored() - ownAcc0; d != tt.own {
				t.Errorf("OwnIgnored() grew by %d, want %d", d, tt.own)
			}
			if d := m.get(t, "terminated_total", "") - term0; d != tt.term {
				t.Errorf("terminated_total grew by %d, want %d", d, tt.term)
			}
		})
	}
	if v := m.get(t, "redeliveries_total", RedeliveryStoreError); v != 0 {
		t.Errorf("redeliveries_total{reason=store_error} = %d without a store failure", v)
	}
}

// TestMetricsConsumerPending: consumer_pending shows the backlog of a router that was
// stopped while events were published, stays while it cannot store them, and drops to 0
// once it caught up.
func TestMetricsConsumerPending(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	js := jsConfig(srv.URL())
	a := startRouter(t, "a", openStore(t, dir, "a"), js, nil)
	bStore := openStore(t, dir, "b")
	b := startRouter(t, "b", bStore, js, nil)
	first := newEvents("a", 5)
	insert(t, a.st, first)
	transporttest.WaitUntil(t, 20*time.Second, "first events at b", func() bool { return has(t, bStore, first) })
	if err := b.d.Close(); err != nil {
		t.Fatal(err)
	}
	second := newEvents("a", 30)
	insert(t, a.st, second)
	transporttest.WaitUntil(t, 20*time.Second, "second batch in the stream", func() bool { return deliveryStates(t, a.st, peer)["delivered"] == 35 })

	// b comes back over a store that fails until the test lets it store.
	gated := &flakyStore{Store: bStore}
	gated.failures.Store(1 << 40)
	rx, err := transport.NewReceiver(transport.ReceiverOptions{Group: testGroup, LocalNode: "b", Store: gated,
		Keys: js.GroupKeys, MaxMessageAge: js.MaxAge})
	if err != nil {
		t.Fatal(err)
	}
	m := newMeter(t)
	br, err := NewBroker(Options{Group: testGroup, LocalNode: "b", Config: *js, MeterProvider: m.mp, PendingInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(context.Background(), rx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Shutdown(context.Background()) })
	transporttest.WaitUntil(t, 20*time.Second, "consumer_pending 30 while b cannot store", func() bool { return m.is(t, "consumer_pending", "", 30) })
	transporttest.WaitUntil(t, 20*time.Second, "a store failure handed back", func() bool { return m.get(t, "redeliveries_total", RedeliveryStoreError) > 0 })
	if !m.is(t, "consumer_pending", "", 30) {
		t.Errorf("consumer_pending = %d after a store failure, want 30", m.get(t, "consumer_pending", ""))
	}

	gated.failures.Store(0)
	transporttest.WaitUntil(t, 30*time.Second, "second batch at b", func() bool { return has(t, bStore, second) })
	transporttest.WaitUntil(t, 20*time.Second, "consumer_pending 0 after catching up", func() bool { return m.is(t, "consumer_pending", "", 0) })
}

// TestMetricsExported: a running broker exports every instrument, only with the group
// and bounded reasons as attributes, and docs/transport.md lists each one.
func TestMetricsExported(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	m := newMeter(t)
	startRouterOpts(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil, withMeter(m))
	transporttest.WaitUntil(t, 20*time.Second, "connected and consumer_pending exported", func() bool {
		_, ok := m.value(t, "consumer_pending", "")
		return ok && m.is(t, "connected", "", 1)
	})
	reasons := map[string][]string{
		MetricPrefix + "redeliveries_total":   {RedeliveryStoreError, RedeliveryRedelivered},
		MetricPrefix + "publish_errors_total": publishReasons,
	}
	names := map[string]int{}
	for _, s := range m.collect(t) {
		names[s.name]++
		for _, kv := range s.attrs.ToSlice() {
			switch kv.Key {
			case "group":
				if kv.Value.AsString() != testGroup {
					t.Errorf("%s: group %q", s.name, kv.Value.AsString())
				}
			case "reason":
				if !slices.Contains(reasons[s.name], kv.Value.AsString()) {
					t.Errorf("%s: reason %q is not one of %v", s.name, kv.Value.AsString(), reasons[s.name])
				}
			default:
				t.Errorf("%s has attribute %q", s.name, kv.Key)
			}
		}
	}
	want := map[string]int{
		"connected": 1, "consumer_pending": 1, "reconnects_total": 1, "disconnects_total": 1,
		"redeliveries_total": 2, "terminated_total": 1, "own_ignored_total": 1, "publish_errors_total": len(publishReasons),
	}
	doc, err := os.ReadFile("../../../docs/transport.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range want {
		full := MetricPrefix + name
		if names[full] != n {
			t.Errorf("%s: %d series exported from the start, want %d", full, names[full], n)
		}
		if !strings.Contains(string(doc), "| `"+full+"` |") {
			t.Errorf("docs/transport.md has no metrics table row for %s", full)
		}
	}
	if len(names) != len(want) {
		t.Errorf("exported %v, want exactly the %d metrics above", names, len(want))
	}
}

// TestPublishReason: every publish failure maps to one bounded reason, wrapped or not.
func TestPublishReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "larger than the servers allow", err: nats.ErrMaxPayload, want: PublishMaxPayload},
		{name: "larger than the stream allows", err: jetstream.ErrStreamMessageExceedsMaximum, want: PublishMaxPayload},
		{name: "no stream", err: jetstream.ErrNoStreamResponse, want: PublishNoResponders},
		{name: "no responders", err: nats.ErrNoResponders, want: PublishNoResponders},
		{name: "ack timeout", err: jetstream.ErrAsyncPublishTimeout, want: PublishTimeout},
		{name: "caller deadline", err: fmt.Errorf("jetstream: stream S: no acknowledgement: %w", context.DeadlineExceeded), want: PublishTimeout},
		{name: "stalled", err: jetstream.ErrTooManyStalledMsgs, want: PublishTimeout},
		{name: "reconnecting", err: nats.ErrReconnectBufExceeded, want: PublishDisconnected},
		{name: "closed", err: nats.ErrConnectionClosed, want: PublishDisconnected},
		{name: "not started", err: fmt.Errorf("jetstream: group lab: %w", errNotConnected), want: PublishDisconnected},
		{name: "wrapped by publishError", err: publishError("S", nats.ErrMaxPayload), want: PublishMaxPayload},
		{name: "anything else", err: errors.New("stream name mismatch"), want: PublishOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := publishReason(tt.err); got != tt.want {
				t.Errorf("publishReason(%v) = %q, want %q", tt.err, got, tt.want)
			}
			if !slices.Contains(publishReasons, tt.want) {
				t.Errorf("%q is not among publishReasons", tt.want)
			}
		})
	}
}
