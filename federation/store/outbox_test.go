package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

type outboxClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *outboxClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *outboxClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func openOutbox(t *testing.T) (*Store, *outboxClock) {
	t.Helper()
	clk := &outboxClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func outboxEvents(t *testing.T, s *Store, now time.Time, specs ...string) {
	t.Helper()
	var evs []event.Event
	for _, spec := range specs { // "id/source/type"
		var id, src, typ string
		if _, err := fmt.Sscanf(spec, "%s %s %s", &id, &src, &typ); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, event.Event{ID: id, Group: "lab", SourceNode: src, Type: typ, ObservedAt: now, ExpiresAt: now.Add(30 * time.Minute)})
	}
	if _, err := s.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func states(t *testing.T, s *Store, peer string) map[string]string {
	t.Helper()
	rows, err := s.ListDeliveries(context.Background(), DeliveryFilter{Group: "lab", Peer: peer})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range rows {
		m[r.EventID] = r.State
	}
	return m
}

func TestEnqueueDeliveriesFiltersAndAdvances(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	outboxEvents(t, s, clk.now(), "e1 a t.one", "e2 b t.one", "e3 a t.two", "e4 a t.one")
	onlyOne := func(e *event.Event) bool { return e.Type == "t.one" }
	req := EnqueueRequest{Group: "lab", Peer: "p", SourceNode: "a", Match: onlyOne, Limit: 2, Now: clk.now()}
	tests := []struct {
		name    string
		created int
		cursor  int64
	}{
		{name: "first page: e1, e3 (e2 is foreign, e3 filtered)", created: 1, cursor: 3},
		{name: "second page: e4", created: 1, cursor: 4},
		{name: "nothing new", created: 0, cursor: 4},
	}
	for _, tt := range tests {
		n, err := s.EnqueueDeliveries(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := s.GetCursor(ctx, OutboxCursorName("lab", "p"))
		if n != tt.created || cur != tt.cursor {
			t.Errorf("%s: created %d cursor %d, want %d and %d", tt.name, n, cur, tt.created, tt.cursor)
		}
	}
	if got := states(t, s, "p"); len(got) != 2 || got["e1"] != DeliveryPending || got["e4"] != DeliveryPending {
		t.Errorf("rows = %v, want e1 and e4 pending", got)
	}
	if ok, _ := s.HasBacklog(ctx, "lab", "p"); !ok {
		t.Error("HasBacklog = false with two pending rows")
	}
}

// TestNextEventsAnySource checks the relay scan: events of every source, Match decides.
func TestNextEventsAnySource(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	outboxEvents(t, s, clk.now(), "e1 a t.one", "e2 b t.one", "e3 c t.one")
	notC := func(e *event.Event) bool { return e.SourceNode != "c" }
	tests := []struct {
		name string
		req  EnqueueRequest
		want string
		last int64
	}{
		{name: "local only", req: EnqueueRequest{Group: "lab", Peer: "p", SourceNode: "a", Match: notC}, want: "e1", last: 1},
		{name: "any source", req: EnqueueRequest{Group: "lab", Peer: "p", SourceNode: "a", AnySource: true, Match: notC}, want: "e1 e2", last: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh, err := s.NextEvents(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, se := range fresh.Events {
				ids = append(ids, se.Event.ID)
			}
			if strings.Join(ids, " ") != tt.want || fresh.Last != tt.last {
				t.Errorf("events %v last %d, want %s and %d", ids, fresh.Last, tt.want, tt.last)
			}
		})
	}
}

func TestDueDeliveriesHonoursRetryTime(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	outboxEvents(t, s, clk.now(), "e1 a t", "e2 a t", "e3 a t")
	if _, err := s.EnqueueDeliveries(ctx, EnqueueRequest{Group: "lab", Peer: "p", SourceNode: "a", Now: clk.now()}); err != nil {
		t.Fatal(err)
	}
	err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{
		{EventID: "e1", State: DeliveryDelivered, Attempts: 1, DeliveredAt: clk.now()},
		{EventID: "e2", State: DeliveryRetrying, Attempts: 1, LastError: "boom", NextAttemptAt: clk.now().Add(time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := func() []string {
		due, err := s.DueDeliveries(ctx, "lab", "p", clk.now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range due {
			out = append(out, fmt.Sprintf("%s/%d", d.Event.ID, d.Attempts))
		}
		return out
	}
	if got := fmt.Sprint(ids()); got != "[e3/0]" {
		t.Errorf("due now = %s, want [e3/0]", got)
	}
	clk.add(time.Second)
	if got := fmt.Sprint(ids()); got != "[e2/1 e3/0]" {
		t.Errorf("due after 1s = %s, want [e2/1 e3/0] (event order)", got)
	}
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{{EventID: "e2", State: "lost"}}); err == nil {
		t.Error("RecordDeliveries accepted an unknown state")
	}
}

func TestRequeueRefreshedAndExtendExpiry(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	outboxEvents(t, s, t0, "e1 a t", "e2 a t", "e3 a t", "e4 a t")
	if _, err := s.EnqueueDeliveries(ctx, EnqueueRequest{Group: "lab", Peer: "p", SourceNode: "a", Now: t0}); err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(30 * time.Minute)
	extend := func(id string, to time.Time) { // another writer changes the expiry directly
		t.Helper()
		if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = ? WHERE id = ?`, to.UnixNano(), id); err != nil {
			t.Fatal(err)
		}
	}
	// e4's push carried an older expiry than the event has by the time it is recorded
	// (extended while the push was in flight): it is queued again at once.
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{
		{EventID: "e1", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
		{EventID: "e2", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
		{EventID: "e3", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
		{EventID: "e4", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp.Add(-time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	if got := states(t, s, "p"); got["e4"] != DeliveryPending || got["e1"] != DeliveryDelivered {
		t.Fatalf("states after recording = %v, want e4 pending (extended in flight)", got)
	}
	extend("e1", exp.Add(time.Hour))
	tests := []struct {
		name            string
		since, at       time.Time
		requeued, stale int
	}{
		{name: "peer copy far from expiry", at: t0},
		{name: "window already examined", since: exp.Add(time.Minute), at: exp.Add(-time.Minute)},
		{name: "peer copy expires within 2m", at: exp.Add(-time.Minute), requeued: 1},
		{name: "already requeued", at: exp.Add(-time.Minute)},
	}
	for _, tt := range tests {
		m, err := s.RequeueRefreshed(ctx, "lab", []string{"p"}, tt.since, tt.at, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := m["p"]
		if len(m) > 1 || (len(m) == 1 && tt.requeued == 0) {
			t.Errorf("%s: result %v names peers without requeued rows", tt.name, m)
		}
		if r.Requeued != tt.requeued || r.Stale != tt.stale {
			t.Errorf("%s: %+v, want requeued %d stale %d", tt.name, r, tt.requeued, tt.stale)
		}
	}
	if got := states(t, s, "p"); got["e1"] != DeliveryPending || got["e2"] != DeliveryDelivered {
		t.Errorf("states = %v", got)
	}
	// e2 is re-observed: its expiry moves on and its delivery is queued at once; a
	// shorter expiry and another source change nothing.
	n, err := s.ExtendExpiry(ctx, []event.Event{
		{ID: "e2", SourceNode: "a", ExpiresAt: exp.Add(time.Hour)},
		{ID: "e3", SourceNode: "a", ExpiresAt: exp.Add(-time.Minute)},
		{ID: "e3", SourceNode: "mallory", ExpiresAt: exp.Add(time.Hour)},
	})
	if err != nil || n != 1 {
		t.Fatalf("ExtendExpiry = %d, %v; want 1", n, err)
	}
	if got := states(t, s, "p"); got["e2"] != DeliveryPending || got["e3"] != DeliveryDelivered {
		t.Errorf("states after ExtendExpiry = %v", got)
	}
	se, _ := s.GetEvent(ctx, "e3")
	if !se.Event.ExpiresAt.Equal(exp) {
		t.Errorf("e3 expiry changed to %v", se.Event.ExpiresAt)
	}
	// A stale refresh: the peer's copy already expired while the origin lives on.
	extend("e3", exp.Add(2*time.Hour))
	m, err := s.RequeueRefreshed(ctx, "lab", []string{"p"}, time.Time{}, exp.Add(time.Minute), 2*time.Minute)
	if r := m["p"]; err != nil || r.Requeued != 1 || r.Stale != 1 {
		t.Errorf("stale refresh = %+v, %v; want 1 requeued, 1 stale", r, err)
	}
}

// TestRequeueRefreshedPeersAndBacklogPeers: one refresh covers every listed peer (and
// only those), and BacklogPeers names exactly the listed peers with pending rows.
func TestRequeueRefreshedPeersAndBacklogPeers(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	outboxEvents(t, s, t0, "e1 a t", "e2 a t")
	exp := t0.Add(30 * time.Minute)
	peers := []string{"p", "q", "r", "idle"}
	for _, peer := range peers[:3] {
		if _, err := s.EnqueueDeliveries(ctx, EnqueueRequest{Group: "lab", Peer: peer, SourceNode: "a", Now: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDeliveries(ctx, "lab", peer, []DeliveryOutcome{
			{EventID: "e1", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
			{EventID: "e2", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.BacklogPeers(ctx, "lab", peers); err != nil || len(got) != 0 {
		t.Fatalf("BacklogPeers with everything delivered = %v, %v; want none", got, err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = ?`, exp.Add(time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	m, err := s.RequeueRefreshed(ctx, "lab", []string{"r", "p", "idle"}, time.Time{}, exp.Add(-time.Minute), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RequeueResult{"p": {Requeued: 2}, "r": {Requeued: 2}}
	if len(m) != len(want) || m["p"] != want["p"] || m["r"] != want["r"] {
		t.Errorf("RequeueRefreshed = %v, want %v (q not listed, idle has no rows)", m, want)
	}
	if got := states(t, s, "q"); got["e1"] != DeliveryDelivered {
		t.Errorf("q's rows changed though q was not listed: %v", got)
	}
	got, err := s.BacklogPeers(ctx, "lab", peers)
	if err != nil || !slices.Equal(got, []string{"p", "r"}) {
		t.Errorf("BacklogPeers = %v, %v; want [p r] in the order given", got, err)
	}
	if got, err := s.BacklogPeers(ctx, "other", peers); err != nil || len(got) != 0 {
		t.Errorf("BacklogPeers of another group = %v, %v; want none", got, err)
	}
}

func TestPruneDeliveries(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	outboxEvents(t, s, t0, "live a t", "gone a t", "bad a t")
	if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = ? WHERE id = 'gone'`, t0.Add(time.Minute).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueDeliveries(ctx, EnqueueRequest{Group: "lab", Peer: "p", SourceNode: "a", Now: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{
		{EventID: "live", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: t0.Add(30 * time.Minute)},
		{EventID: "gone", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: t0.Add(time.Minute)},
		{EventID: "bad", State: DeliveryFailed, LastError: "400"},
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		at     time.Time
		maxAge time.Duration
		pruned int64
		left   string
	}{
		{name: "nothing old yet", at: t0.Add(30 * time.Second), maxAge: time.Hour, pruned: 0, left: "bad,gone,live"},
		{name: "expired event's delivery", at: t0.Add(2 * time.Minute), maxAge: time.Hour, pruned: 1, left: "bad,live"},
		{name: "old failed row; live event kept", at: t0.Add(20 * time.Minute), maxAge: 10 * time.Minute, pruned: 1, left: "live"},
	}
	for _, tt := range tests {
		n, err := s.PruneDeliveries(ctx, "lab", []string{"p"}, tt.at, tt.maxAge)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, id := range []string{"bad", "gone", "live"} {
			if _, ok := states(t, s, "p")[id]; ok {
				left = append(left, id)
			}
		}
		if n != tt.pruned || fmt.Sprint(left) != fmt.Sprint(splitComma(tt.left)) {
			t.Errorf("%s: pruned %d left %v, want %d and %s", tt.name, n, left, tt.pruned, tt.left)
		}
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// TestOutboxScanUsesSourceIndex: the sender's scan for local events must not walk the
// foreign events of the group (a node that mostly receives would rescan all of them on
// every pass).
func TestOutboxScanUsesSourceIndex(t *testing.T) {
	s, _ := openOutbox(t)
	rows, err := s.ReadDB().QueryContext(context.Background(), `EXPLAIN QUERY PLAN SELECT `+eventColumns+` FROM events
		WHERE group_name = ? AND seq > ? AND source_node = ? ORDER BY seq LIMIT ?`, "lab", 0, "a", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "\n"
	}
	if !strings.Contains(plan, "events_group_source_seq (group_name=? AND source_node=? AND seq>?)") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("outbox scan plan:\n%s", plan)
	}
}

func TestLastSourceSeq(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	outboxEvents(t, s, clk.now(), "e1 a t", "e2 b t", "e3 a t", "e4 b t")
	tests := []struct {
		name, group, source string
		want                int64
	}{
		{name: "newest of a", group: "lab", source: "a", want: 3},
		{name: "newest of b", group: "lab", source: "b", want: 4},
		{name: "unknown source", group: "lab", source: "c", want: 0},
		{name: "other group", group: "other", source: "a", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.LastSourceSeq(ctx, tt.group, tt.source)
			if err != nil || got != tt.want {
				t.Errorf("LastSourceSeq(%s, %s) = %d, %v; want %d", tt.group, tt.source, got, err, tt.want)
			}
		})
	}
}
