package transport

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport/transporttest"
)

// countingOutbox counts the calls an idle sender makes, per method.
type countingOutbox struct {
	*store.Store
	mu    sync.Mutex
	calls map[string]int
	peers [][]string // the peer lists of RequeueRefreshed calls
}

func (c *countingOutbox) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingOutbox) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

func (c *countingOutbox) HasBacklog(ctx context.Context, group, peer string) (bool, error) {
	c.count("HasBacklog")
	return c.Store.HasBacklog(ctx, group, peer)
}

func (c *countingOutbox) NextEvents(ctx context.Context, req store.EnqueueRequest) (store.FreshEvents, error) {
	c.count("NextEvents")
	return c.Store.NextEvents(ctx, req)
}

func (c *countingOutbox) RequeueRefreshed(ctx context.Context, group string, peers []string, since, now time.Time, before time.Duration) (map[string]store.RequeueResult, error) {
	c.mu.Lock()
	c.calls["RequeueRefreshed"]++
	c.peers = append(c.peers, peers)
	c.mu.Unlock()
	return c.Store.RequeueRefreshed(ctx, group, peers, since, now, before)
}

// TestIdleSenderCostDoesNotGrowWithPeers: an idle sender with many peers refreshes all of
// them in one call per interval and does not pass each peer's outbox on a timer (a
// router in a mesh of N has N−1 peers; per-peer timers made its idle cost N−1 writes
// and 3·(N−1) reads per interval). A peer whose deliveries were put back by another
// process is still woken by the refresh and pushed.
func TestIdleSenderCostDoesNotGrowWithPeers(t *testing.T) {
	const peers = 40
	st := openStore(t, "a")
	ob := &countingOutbox{Store: st, calls: map[string]int{}}
	rx := openStore(t, "b")
	_, srv := receiverFor(t, rx, "b", []Key{{Secret: []byte("k"), Nodes: []string{"a"}}}, nil)
	var list []Peer
	for i := range peers {
		list = append(list, Peer{Name: fmt.Sprintf("p%02d", i), NodeName: fmt.Sprintf("p%02d", i), Endpoint: srv.URL, Key: Key{Secret: []byte("k")}})
	}
	s, err := NewSender(SenderOptions{Group: "lab", LocalNode: "a", Peers: list, Outbox: ob, RefreshInterval: 10 * time.Millisecond, PollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const intervals = 10
	transporttest.WaitUntil(t, 10*time.Second, "ten refresh intervals", func() bool { return ob.get("RequeueRefreshed") >= intervals })
	if got := ob.get("NextEvents"); got > 2*peers {
		t.Errorf("idle for %d refresh intervals: %d outbox reads (NextEvents) for %d peers, want each peer read about once", intervals, got, peers)
	}
	if got := ob.get("HasBacklog"); got > 2*peers {
		t.Errorf("idle for %d refresh intervals: %d backlog checks for %d peers, want about one each", intervals, got, peers)
	}
	ob.mu.Lock()
	for _, p := range ob.peers {
		if len(p) != peers {
			t.Errorf("a refresh covered %d peers, want all %d in one call", len(p), peers)
			break
		}
	}
	ob.mu.Unlock()

	// Events received from other routers do not wake the peer loops (they have nothing
	// to send): five inserts, then five more refresh intervals (the watcher polls every
	// 2ms, the refresh every 10ms).
	reads := ob.get("NextEvents")
	for i := range 5 {
		e := newEvent("lab", "z")
		e.ID = fmt.Sprintf("received-%d", i)
		if _, err := st.InsertEvents(context.Background(), []event.Event{e}); err != nil {
			t.Fatal(err)
		}
		r := ob.get("RequeueRefreshed")
		transporttest.WaitUntil(t, 10*time.Second, "a refresh interval", func() bool { return ob.get("RequeueRefreshed") >= r+2 })
	}
	if got := ob.get("NextEvents") - reads; got >= peers {
		t.Errorf("5 received events made %d outbox reads for %d peers, want none", got, peers)
	}

	// Another process puts a delivery back (as routerd's ExtendExpiry does): the refresh
	// finds the backlog and wakes that peer, which pushes it.
	if _, err := st.InsertEvents(context.Background(), []event.Event{newEvent("lab", "a")}); err != nil {
		t.Fatal(err)
	}
	delivered := func(peer string) int {
		t.Helper()
		var n int
		q := `SELECT count(*) FROM event_deliveries WHERE state = 'delivered' AND (?1 = '' OR peer = ?1)`
		if err := st.DB().QueryRow(q, peer).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	transporttest.WaitUntil(t, 10*time.Second, "the event delivered to every peer", func() bool { return delivered("") == peers })
	if _, err := st.DB().Exec(`UPDATE event_deliveries SET state = 'pending' WHERE peer = 'p07'`); err != nil {
		t.Fatal(err)
	}
	transporttest.WaitUntil(t, 10*time.Second, "p07 pushed again after its row was put back", func() bool { return delivered("p07") == 1 })
}
