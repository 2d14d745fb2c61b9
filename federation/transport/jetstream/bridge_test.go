package jetstream

import (
	"context"
	"net"
	"testing"
	"time"

	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/federation/transport/transporttest"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBridge: a mixed fleet. p speaks only the HMAC push (like routerd v1alpha1) and
// knows b as its one peer; b is in the nats-jetstream group and has p as an EventPeer;
// n is in the NATS group only. Every event reaches every router, each exactly once, and
// nothing goes back where it came from: p never receives its own events, and the stream
// holds each event once.
func TestBridge(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	pAddr, bAddr := freeAddr(t), freeAddr(t)

	// p: a plain push router. It accepts n's events relayed by b because it knows n (a
	// receive-only EventPeer without endpoint; routerd v1alpha1 accepts any node that
	// signs with the group secret).
	pStore := openStore(t, dir, "p")
	pd, err := transport.NewDaemon(transport.GroupConfig{
		Group: testGroup, LocalNode: "p", ListenAddress: pAddr,
		ReceiveKeys: []transport.Key{{Secret: groupKey, Nodes: []string{"b", "n"}}},
		Peers:       []transport.Peer{{Name: "b", NodeName: "b", Endpoint: "http://" + bAddr, Key: transport.Key{Secret: groupKey}}},
		RetryBase:   20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}, pStore, transport.DaemonOptions{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := pd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pd.Close() })

	// b: the bridge.
	b := startRouter(t, "b", openStore(t, dir, "b"), jsConfig(srv.URL()), func(c *transport.GroupConfig) {
		c.ListenAddress = bAddr
		c.ReceiveKeys = []transport.Key{{Secret: groupKey, Nodes: []string{"p"}}}
		c.Peers = []transport.Peer{{Name: "p", NodeName: "p", Endpoint: "http://" + pAddr, Key: transport.Key{Secret: groupKey}}}
	})
	n := startRouter(t, "n", openStore(t, dir, "n"), jsConfig(srv.URL()), nil)

	fromP, fromB, fromN := newEvents("p", 6), newEvents("b", 4), newEvents("n", 5)
	insert(t, pStore, fromP)
	insert(t, b.st, fromB)
	insert(t, n.st, fromN)
	transporttest.WaitUntil(t, 30*time.Second, "every event at every router", func() bool {
		return has(t, pStore, fromB) && has(t, pStore, fromN) &&
			has(t, b.st, fromP) && has(t, b.st, fromN) &&
			has(t, n.st, fromP) && has(t, n.st, fromB)
	})
	// b relays n's events to p but never p's own back; it publishes p's events once.
	transporttest.WaitUntil(t, 10*time.Second, "b's outbox settled", func() bool {
		return deliveryStates(t, b.st, "p")["delivered"] == 9 && deliveryStates(t, b.st, peer)["delivered"] == 10
	})
	tests := []struct {
		name string
		got  int64
		want int64
	}{
		{name: "p accepted b's and n's events", got: pd.Receiver().Status().Counters.Accepted, want: 9},
		{name: "p got no duplicates", got: pd.Receiver().Status().Counters.Duplicate, want: 0},
		{name: "p got none of its own events back", got: pd.Receiver().Rejected(transport.ReasonSpoofedSource), want: 0},
		{name: "n accepted p's and b's events from the stream", got: n.d.BrokerReceiver().Status().Counters.Accepted, want: 10},
		{name: "n got no duplicates", got: n.d.BrokerReceiver().Status().Counters.Duplicate, want: 0},
		{name: "b accepted p's events by push", got: b.d.Receiver().Status().Counters.Accepted, want: 6},
		{name: "b accepted n's events from the stream", got: b.d.BrokerReceiver().Status().Counters.Accepted, want: 5},
		{name: "p's events read back by b are duplicates, not new", got: b.d.BrokerReceiver().Status().Counters.Duplicate, want: 6},
		{name: "p holds each event once", got: count(t, pStore, ""), want: 15},
		{name: "n holds each event once", got: count(t, n.st, ""), want: 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
	js := jsClient(t, srv.URL())
	s, err := js.Stream(context.Background(), "ROUTERD_LAB")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(context.Background()); err != nil || info.State.Msgs != 15 {
		t.Errorf("stream holds %+v messages (%v), want 15: an event was published twice", info.State.Msgs, err)
	}
}
