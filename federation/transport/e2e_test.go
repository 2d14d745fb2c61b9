package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport/transporttest"
)

// testNode is one in-process router: a store and a transport daemon.
type testNode struct {
	name   string
	st     *store.Store
	d      *Daemon
	addr   string
	cfg    GroupConfig
	events []event.Event
}

// freeAddr reserves a loopback port and releases it for a daemon to bind.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// meshConfigs returns the group configs of a full mesh of names with one group key.
func meshConfigs(t testing.TB, names []string, addrs map[string]string) map[string]GroupConfig {
	out := map[string]GroupConfig{}
	for _, n := range names {
		cfg := GroupConfig{
			Group: "lab", LocalNode: n, ListenAddress: addrs[n],
			RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		}
		var others []string
		for _, o := range names {
			if o == n {
				continue
			}
			others = append(others, o)
			cfg.Peers = append(cfg.Peers, Peer{
				Name: "peer-" + o, NodeName: o, Endpoint: "http://" + addrs[o],
				Key: Key{ID: "g1", Secret: secretGroup},
			})
		}
		cfg.ReceiveKeys = []Key{{ID: "g1", Secret: secretGroup, Nodes: others}}
		out[n] = cfg
	}
	return out
}

func startNode(t testing.TB, name string, st *store.Store, cfg GroupConfig) *testNode {
	t.Helper()
	d, err := NewDaemon(cfg, st, DaemonOptions{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return &testNode{name: name, st: st, d: d, addr: d.Addr(), cfg: cfg}
}

// emit stores n local events on node and returns them.
func (n *testNode) emit(t testing.TB, count int) []event.Event {
	t.Helper()
	evs := make([]event.Event, count)
	for i := range evs {
		evs[i] = newEvent("lab", n.name)
	}
	if _, err := n.st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	n.events = append(n.events, evs...)
	return evs
}

func storedIDs(t testing.TB, st *store.Store) map[string]string {
	t.Helper()
	evs, err := st.ListEvents(context.Background(), store.EventFilter{Group: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range evs {
		if _, dup := m[e.Event.ID]; dup {
			t.Fatalf("event %s stored twice", e.Event.ID)
		}
		m[e.Event.ID] = e.Event.SourceNode
	}
	return m
}

func TestThreeNodesExactlyOnce(t *testing.T) {
	names := []string{"a", "b", "c"}
	addrs := map[string]string{}
	for _, n := range names {
		addrs[n] = freeAddr(t)
	}
	cfgs := meshConfigs(t, names, addrs)
	nodes := map[string]*testNode{}
	for _, n := range names {
		nodes[n] = startNode(t, n, openStore(t, n), cfgs[n])
	}
	const perNode = 150
	for _, n := range names {
		nodes[n].emit(t, perNode)
	}
	total := perNode * len(names)
	for _, n := range names {
		transporttest.WaitUntil(t, 15*time.Second, "all events on "+n, func() bool { return countEvents(t, nodes[n].st) == int64(total) })
	}
	for _, n := range names {
		ids := storedIDs(t, nodes[n].st)
		for _, o := range names {
			for _, e := range nodes[o].events {
				if ids[e.ID] != o {
					t.Fatalf("node %s: event %s from %s missing or wrong source %q", n, e.ID, o, ids[e.ID])
				}
			}
		}
		// Nothing was pushed back to its origin: no rejection anywhere, and each node's
		// deliveries cover only its own events, for its two peers.
		transporttest.WaitUntil(t, 5*time.Second, "receiver counters on "+n, func() bool {
			return nodes[n].d.Receiver().Status().Counters.Accepted == int64(total-perNode)
		})
		st := nodes[n].d.Receiver().Status()
		for r, c := range st.Counters.Rejected {
			if c != 0 {
				t.Errorf("node %s rejected %d requests (%s)", n, c, r)
			}
		}
		if st.Counters.Accepted != int64(total-perNode) || st.Counters.Duplicate != 0 {
			t.Errorf("node %s accepted %d dup %d, want %d and 0", n, st.Counters.Accepted, st.Counters.Duplicate, total-perNode)
		}
		// The receivers stored the events before the sender recorded the answers.
		transporttest.WaitUntil(t, 5*time.Second, "deliveries recorded on "+n, func() bool {
			s, err := nodes[n].st.PeerStats(context.Background(), "lab", time.Now())
			return err == nil && len(s) == 2 && s[0].Delivered == perNode && s[1].Delivered == perNode
		})
		rows, err := nodes[n].st.ListDeliveries(context.Background(), store.DeliveryFilter{Group: "lab", Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != perNode*2 {
			t.Errorf("node %s has %d delivery rows, want %d", n, len(rows), perNode*2)
		}
		for _, r := range rows {
			if r.State != store.DeliveryDelivered {
				t.Errorf("node %s: delivery %s to %s is %s", n, r.EventID, r.Peer, r.State)
			}
			if nodes[n].st != nil && ids[r.EventID] != n {
				t.Errorf("node %s has a delivery row for foreign event %s", n, r.EventID)
			}
		}
		for _, h := range nodes[n].d.Sender().Health() {
			if !h.Batch {
				t.Errorf("node %s did not use the batch form with %s", n, h.Peer)
			}
		}
	}
}

// v1Peer is a minimal routerd v1 peer written from COMPAT.md alone: single-event POST
// /v1/events verified with the group secret, GET /v1/status with plain counters, no batch
// and no key id. It also pushes its own events to us the v1 way.
type v1Peer struct {
	secret []byte
	mu     sync.Mutex
	events map[string]json.RawMessage
	posts  int
	probes int
}

func (p *v1Peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/status":
		p.mu.Lock()
		defer p.mu.Unlock()
		p.probes++
		fmt.Fprintf(w, `{"received":%d}`, len(p.events))
		return
	case "/v1/events":
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(405)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(400)
		return
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-Routerd-Timestamp"), 10, 64)
	if err != nil {
		w.WriteHeader(400)
		return
	}
	if d := time.Now().Unix() - ts; d > 300 || d < -300 {
		w.WriteHeader(403)
		return
	}
	if r.Header.Get("X-Routerd-Signature") != Sign(p.secret, ts, body) {
		w.WriteHeader(401)
		return
	}
	var e struct {
		ID    string `json:"id"`
		Group string `json:"group"`
		Type  string `json:"type"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || e.Group == "" || e.Type == "" {
		w.WriteHeader(400)
		return
	}
	p.mu.Lock()
	_, dup := p.events[e.ID]
	p.events[e.ID] = body
	p.posts++
	p.mu.Unlock()
	fmt.Fprintf(w, `{"accepted":true,"id":%q,"duplicate":%v}`, e.ID, dup)
}

func (p *v1Peer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

func TestInteropWithV1Peer(t *testing.T) {
	peer := &v1Peer{secret: secretGroup, events: map[string]json.RawMessage{}}
	psrv := httptest.NewServer(peer)
	t.Cleanup(psrv.Close)

	cfg := GroupConfig{
		Group: "lab", LocalNode: "a", ListenAddress: "127.0.0.1:0",
		ReceiveKeys: []Key{{Secret: secretGroup, Nodes: []string{"old"}}},
		Peers:       []Peer{{Name: "old-router", NodeName: "old", Endpoint: psrv.URL, Key: Key{Secret: secretGroup}}},
	}
	a := startNode(t, "a", openStore(t, "a"), cfg)
	a.emit(t, 40)
	transporttest.WaitUntil(t, 10*time.Second, "v1 peer received 40 events", func() bool { return peer.count() == 40 })
	peer.mu.Lock()
	posts, probes := peer.posts, peer.probes
	peer.mu.Unlock()
	if posts != 40 {
		t.Errorf("v1 peer saw %d POSTs, want 40 single-event posts", posts)
	}
	if probes != 1 {
		t.Errorf("v1 peer was asked for its status %d times, want once", probes)
	}
	for _, e := range a.events {
		var got event.Event
		if err := json.Unmarshal(peer.events[e.ID], &got); err != nil || got.SourceNode != "a" || got.Subject != e.Subject {
			t.Errorf("v1 peer holds %s as %+v (%v)", e.ID, got, err)
		}
	}
	if h := a.d.Sender().Health(); len(h) != 1 || h[0].Batch {
		t.Errorf("sender health = %+v, want plain v1 (no batch)", h)
	}

	// The v1 peer pushes to us: one event per POST, no key id.
	for i := range 5 {
		e := newEvent("lab", "old")
		body, _ := json.Marshal(e)
		ts := time.Now().Unix()
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.addr+"/v1/events", bytesReader(body))
		req.Header.Set("X-Routerd-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("X-Routerd-Signature", Sign(secretGroup, ts, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ack map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ack)
		resp.Body.Close()
		if resp.StatusCode != 200 || ack["accepted"] != true || ack["id"] != e.ID || ack["duplicate"] != false {
			t.Fatalf("v1 push %d: %d %v", i, resp.StatusCode, ack)
		}
	}
	if n := countEvents(t, a.st); n != 45 {
		t.Errorf("node a holds %d events, want 45", n)
	}
}

func TestPartitionBacklogDrains(t *testing.T) {
	addrs := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	cfgs := meshConfigs(t, []string{"a", "b"}, addrs)
	a := startNode(t, "a", openStore(t, "a"), cfgs["a"])
	bStore := openStore(t, "b")
	b := startNode(t, "b", bStore, cfgs["b"])
	a.emit(t, 20)
	transporttest.WaitUntil(t, 10*time.Second, "first events on b", func() bool { return countEvents(t, bStore) == 20 })

	// Partition: b goes away; a keeps emitting.
	if err := b.d.Close(); err != nil {
		t.Fatal(err)
	}
	a.emit(t, 200)
	transporttest.WaitUntil(t, 10*time.Second, "a to see failures", func() bool {
		rows, _ := a.st.ListDeliveries(context.Background(), store.DeliveryFilter{State: store.DeliveryRetrying, Limit: 1})
		return len(rows) == 1
	})
	stats, err := a.st.PeerStats(context.Background(), "lab", time.Now())
	if err != nil || len(stats) != 1 || stats[0].Backlog != 200 || stats[0].LastError == "" {
		t.Fatalf("peer stats during partition = %+v, %v", stats, err)
	}

	// Heal: b comes back on the same address with the same store.
	startNode(t, "b", bStore, cfgs["b"])
	transporttest.WaitUntil(t, 10*time.Second, "backlog drained to b", func() bool { return countEvents(t, bStore) == 220 })
	ids := storedIDs(t, bStore)
	for _, e := range a.events {
		if _, ok := ids[e.ID]; !ok {
			t.Fatalf("event %s lost in the partition", e.ID)
		}
	}
	transporttest.WaitUntil(t, 5*time.Second, "no backlog", func() bool {
		s, _ := a.st.PeerStats(context.Background(), "lab", time.Now())
		return len(s) == 1 && s[0].Backlog == 0 && s[0].Delivered == 220
	})
}

func TestTTLRefreshRepushes(t *testing.T) {
	addrs := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	cfgs := meshConfigs(t, []string{"a", "b"}, addrs)
	a := startNode(t, "a", openStore(t, "a"), cfgs["a"])
	b := startNode(t, "b", openStore(t, "b"), cfgs["b"])
	evs := a.emit(t, 3)
	transporttest.WaitUntil(t, 10*time.Second, "events on b", func() bool { return countEvents(t, b.st) == 3 })

	// The fact is observed again: its expiry moves an hour later at the origin.
	ext := evs[1]
	ext.ExpiresAt = ext.ExpiresAt.Add(time.Hour)
	if n, err := a.st.ExtendExpiry(context.Background(), []event.Event{ext}); err != nil || n != 1 {
		t.Fatalf("ExtendExpiry = %d, %v", n, err)
	}
	a.d.Sender().Notify()
	transporttest.WaitUntil(t, 10*time.Second, "refreshed expiry on b", func() bool {
		se, err := b.st.GetEvent(context.Background(), ext.ID)
		return err == nil && se.Event.ExpiresAt.Equal(ext.ExpiresAt)
	})
	if n := countEvents(t, b.st); n != 3 {
		t.Errorf("b holds %d events after the refresh, want 3", n)
	}
	if d := b.d.Receiver().Status().Counters.Duplicate; d != 1 {
		t.Errorf("b counted %d duplicates, want 1 (the refresh)", d)
	}
}

func TestPrunerAppliesRetention(t *testing.T) {
	addrs := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	cfgs := meshConfigs(t, []string{"a", "b"}, addrs)
	a := startNode(t, "a", openStore(t, "a"), cfgs["a"])
	bcfg := cfgs["b"]
	bcfg.RetentionMaxEvents, bcfg.RetentionMaxAge = 5, time.Hour
	bst := openStore(t, "b")
	d, err := NewDaemon(bcfg, bst, DaemonOptions{PollInterval: 5 * time.Millisecond, PruneInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	a.emit(t, 20)
	transporttest.WaitUntil(t, 10*time.Second, "all 20 accepted by b", func() bool { return d.Receiver().Status().Counters.Accepted == 20 })
	transporttest.WaitUntil(t, 10*time.Second, "b pruned to its 5 newest", func() bool { return countEvents(t, bst) == 5 })
	ids := storedIDs(t, bst)
	for _, e := range a.events[15:] {
		if _, ok := ids[e.ID]; !ok {
			t.Errorf("newest event %s was pruned", e.ID)
		}
	}
}
