package jetstream

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/federation/transport/transporttest"
)

const peer = "jetstream:ROUTERD_LAB"

// TestDelivery: events of a reach b and events of b reach a through the stream; each
// router ignores its own messages; the publishes are delivery rows of the pseudo-peer.
func TestDelivery(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	a := startRouter(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil)
	b := startRouter(t, "b", openStore(t, dir, "b"), jsConfig(srv.URL()), nil)
	fromA, fromB := newEvents("a", 50), newEvents("b", 5)
	insert(t, a.st, fromA)
	insert(t, b.st, fromB)
	transporttest.WaitUntil(t, 20*time.Second, "a's events at b and b's at a", func() bool { return has(t, b.st, fromA) && has(t, a.st, fromB) })
	transporttest.WaitUntil(t, 10*time.Second, "own messages read back and ignored", func() bool {
		return a.b.OwnIgnored() == 50 && b.b.OwnIgnored() == 5
	})
	transporttest.WaitUntil(t, 10*time.Second, "publishes recorded delivered", func() bool { return deliveryStates(t, a.st, peer)["delivered"] == 50 })
	if n := count(t, a.st, "a"); n != 50 {
		t.Errorf("a holds %d of its own events, want 50 (own messages must not be stored twice)", n)
	}
	if st := b.d.BrokerReceiver().Status().Counters; st.Accepted != 50 || st.Duplicate != 0 {
		t.Errorf("b's receiver counters = %+v, want 50 accepted, 0 duplicates", st)
	}
	se, err := b.st.GetEvent(context.Background(), fromA[0].ID)
	if err != nil || se.Event.SourceNode != "a" || se.Event.Payload["address"] != "10.0.0.1" || !se.Event.ExpiresAt.Equal(fromA[0].ExpiresAt) {
		t.Errorf("stored at b: %+v, %v", se.Event, err)
	}
}

// TestPartition: with the server down, a's events wait in its outbox (retrying rows of
// the pseudo-peer); after the server restarts on the same port and files they reach b.
func TestPartition(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	port := srv.Port()
	a := startRouter(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil)
	b := startRouter(t, "b", openStore(t, dir, "b"), jsConfig(srv.URL()), nil)
	before := newEvents("a", 5)
	insert(t, a.st, before)
	transporttest.WaitUntil(t, 20*time.Second, "first events at b", func() bool { return has(t, b.st, before) })

	srv.Shutdown()
	during := newEvents("a", 20)
	insert(t, a.st, during)
	transporttest.WaitUntil(t, 20*time.Second, "publishes queued in the outbox while the server is down", func() bool {
		s := deliveryStates(t, a.st, peer)
		return s["retrying"]+s["pending"] == 20
	})
	if has(t, b.st, during[:1]) {
		t.Fatal("an event reached b while the server was down")
	}
	startServer(t, dir, port)
	transporttest.WaitUntil(t, 30*time.Second, "queued events at b after the restart", func() bool { return has(t, b.st, during) })
	transporttest.WaitUntil(t, 10*time.Second, "queued publishes delivered", func() bool { return deliveryStates(t, a.st, peer)["delivered"] == 25 })
	if n := count(t, b.st, "a"); n != 25 {
		t.Errorf("b holds %d events of a, want 25", n)
	}
}

// TestRouterRestart: b stops; a's events published meanwhile wait in the stream for b's
// durable consumer; the restarted b receives exactly those (nothing lost, nothing
// delivered twice).
func TestRouterRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	a := startRouter(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil)
	bStore := openStore(t, dir, "b")
	b := startRouter(t, "b", bStore, jsConfig(srv.URL()), nil)
	first := newEvents("a", 10)
	insert(t, a.st, first)
	transporttest.WaitUntil(t, 20*time.Second, "first events at b", func() bool { return has(t, bStore, first) })
	// Let b's acknowledgements reach the server before it stops.
	if err := b.d.Close(); err != nil {
		t.Fatal(err)
	}

	second := newEvents("a", 30)
	insert(t, a.st, second)
	transporttest.WaitUntil(t, 20*time.Second, "second batch acknowledged by the stream", func() bool { return deliveryStates(t, a.st, peer)["delivered"] == 40 })
	if has(t, bStore, second[:1]) {
		t.Fatal("b received while stopped")
	}
	b2 := startRouter(t, "b", bStore, jsConfig(srv.URL()), nil)
	transporttest.WaitUntil(t, 20*time.Second, "second batch at the restarted b", func() bool { return has(t, bStore, second) })
	if n := count(t, bStore, "a"); n != 40 {
		t.Errorf("b holds %d events of a, want 40", n)
	}
	// Only what b had not acknowledged comes again: no duplicate of the first batch.
	transporttest.WaitUntil(t, 5*time.Second, "restarted receiver counted the second batch", func() bool {
		return b2.d.BrokerReceiver().Status().Counters.Accepted == 30
	})
	if st := b2.d.BrokerReceiver().Status().Counters; st.Duplicate != 0 {
		t.Errorf("restarted b counters = %+v, want no duplicates", st)
	}
}

// TestForgedMessages: messages published straight into the stream (a compromised broker
// or client) are verified like v1 requests: only a correctly signed one is stored, every
// other one is rejected and counted under its reason.
func TestForgedMessages(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	b := startRouter(t, "b", openStore(t, dir, "b"), jsConfig(srv.URL()), nil)
	js := jsClient(t, srv.URL())
	// b creates the stream when it starts.
	select {
	case <-b.b.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("b's consumer not ready")
	}
	now := time.Now().Unix()
	tests := []struct {
		name   string
		src    string // source node of the event
		secret []byte
		ts     int64
		tamper bool // change the body after signing
		want   transport.Reason
	}{
		{name: "valid", src: "c", secret: groupKey, ts: now, want: ""},
		{name: "wrong key", src: "c", secret: wrongKey, ts: now, want: transport.ReasonBadSignature},
		{name: "body changed after signing", src: "c", secret: groupKey, ts: now, tamper: true, want: transport.ReasonBadSignature},
		{name: "older than the stream keeps messages", src: "c", secret: groupKey, ts: now - 2*3600, want: transport.ReasonStaleTimestamp},
		{name: "claims to come from the receiver", src: "b", secret: groupKey, ts: now, want: transport.ReasonSpoofedSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvents(tt.src, 1)[0]
			body, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			sig := transport.Sign(tt.secret, tt.ts, body)
			if tt.tamper {
				e.Payload["address"] = "10.6.6.6"
				if body, err = e.Marshal(); err != nil {
					t.Fatal(err)
				}
			}
			m := &nats.Msg{Subject: Subject("routerd", testGroup, e.Type, "c"), Data: body, Header: nats.Header{}}
			m.Header.Set(transport.HeaderTimestamp, strconv.FormatInt(tt.ts, 10))
			m.Header.Set(transport.HeaderSignature, sig)
			rx := b.d.BrokerReceiver()
			before := int64(0)
			if tt.want != "" {
				before = rx.Rejected(tt.want)
			}
			accepted := rx.Status().Counters.Accepted
			if _, err := js.PublishMsg(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				transporttest.WaitUntil(t, 10*time.Second, "valid message stored", func() bool { return has(t, b.st, []event.Event{e}) })
				return
			}
			transporttest.WaitUntil(t, 10*time.Second, "rejection counted as "+string(tt.want), func() bool { return rx.Rejected(tt.want) == before+1 })
			if has(t, b.st, []event.Event{e}) || rx.Status().Counters.Accepted != accepted {
				t.Errorf("forged event %s was stored", e.ID)
			}
		})
	}
}

// TestTTLRefresh: extending a local event's expiresAt re-publishes it (a new Nats-Msg-Id)
// and the receiver extends its stored copy; the store still holds it once.
func TestTTLRefresh(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	a := startRouter(t, "a", openStore(t, dir, "a"), jsConfig(srv.URL()), nil)
	b := startRouter(t, "b", openStore(t, dir, "b"), jsConfig(srv.URL()), nil)
	e := newEvents("a", 1)
	insert(t, a.st, e)
	transporttest.WaitUntil(t, 20*time.Second, "event at b", func() bool { return has(t, b.st, e) })
	transporttest.WaitUntil(t, 10*time.Second, "publish recorded", func() bool { return deliveryStates(t, a.st, peer)["delivered"] == 1 })
	refreshed := e[0]
	refreshed.ExpiresAt = e[0].ExpiresAt.Add(time.Hour)
	if n, err := a.st.ExtendExpiry(context.Background(), []event.Event{refreshed}); err != nil || n != 1 {
		t.Fatalf("extend: %d, %v", n, err)
	}
	a.d.Sender().Notify()
	transporttest.WaitUntil(t, 20*time.Second, "refreshed expiresAt at b", func() bool {
		se, err := b.st.GetEvent(context.Background(), e[0].ID)
		return err == nil && se.Event.ExpiresAt.Equal(refreshed.ExpiresAt)
	})
	if n := count(t, b.st, "a"); n != 1 {
		t.Errorf("b holds %d copies, want 1", n)
	}
	if d := b.d.BrokerReceiver().Status().Counters.Duplicate; d != 1 {
		t.Errorf("b counted %d duplicates, want 1 (the refresh)", d)
	}
}

// TestSubject checks the subject and name escaping.
func TestSubject(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{name: "plain", got: Subject("routerd", "lab", "routerd.client.ipv4.observed", "router-a"), want: "routerd.lab.routerd.client.ipv4.observed.router-a"},
		{name: "dots in group and node", got: Subject("site1.routerd", "lab.eu", "t", "r.a"), want: "site1.routerd.lab%2Eeu.t.r%2Ea"},
		{name: "wildcards and space", got: Token("a*b> c%"), want: "a%2Ab%3E%20c%25"},
		{name: "empty token", got: Token(""), want: "%"},
		{name: "durable", got: DurableName("router-a.site1"), want: "routerd-router-a%2Esite1"},
		{name: "filter", got: GroupFilter("routerd", "lab.eu"), want: "routerd.lab%2Eeu.>"},
		{name: "source token", got: sourceToken(Subject("routerd", "lab", "x.y", "r.a")), want: Token("r.a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	e := event.Event{ID: "x"}
	if MsgID(&e) != "x" {
		t.Errorf("MsgID without expiry = %q", MsgID(&e))
	}
	e.ExpiresAt = time.Unix(5, 0)
	if MsgID(&e) != "x@5000000000" {
		t.Errorf("MsgID = %q", MsgID(&e))
	}
}
