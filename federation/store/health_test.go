package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

// enqueueAll queues every local event of "lab" from node a for peer.
func enqueueAll(t *testing.T, s *Store, peer string, now time.Time) {
	t.Helper()
	if _, err := s.EnqueueDeliveries(context.Background(), EnqueueRequest{Group: "lab", Peer: peer, SourceNode: "a", Now: now}); err != nil {
		t.Fatal(err)
	}
}

func TestBacklogHealth(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	outboxEvents(t, s, t0, "e1 a t", "e2 a t", "e3 a t")
	enqueueAll(t, s, "p", t0)
	enqueueAll(t, s, "q", t0)
	clk.add(time.Minute)
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{
		{EventID: "e1", State: DeliveryDelivered, Attempts: 1, DeliveredAt: clk.now()},
		{EventID: "e2", State: DeliveryRetrying, Attempts: 1, LastError: "refused", NextAttemptAt: clk.now().Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, "lab", "q", []DeliveryOutcome{
		{EventID: "e1", State: DeliveryDelivered, DeliveredAt: clk.now()},
		{EventID: "e2", State: DeliveryDelivered, DeliveredAt: clk.now()},
		{EventID: "e3", State: DeliveryDelivered, DeliveredAt: clk.now()},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.BacklogHealth(ctx, "lab", clk.now())
	if err != nil {
		t.Fatal(err)
	}
	want := []BacklogHealth{{Group: "lab", Peer: "p", Pending: 1, Retrying: 1, Overdue: 1, OldestCreated: t0, OldestDue: t0,
		LastError: "refused", LastSuccess: clk.now()}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("BacklogHealth = %+v\nwant %+v (q has no backlog; e2's next attempt is in the future)", got, want)
	}
	if other, err := s.BacklogHealth(ctx, "other", clk.now()); err != nil || len(other) != 0 {
		t.Errorf("other group: %v, %v; want none", other, err)
	}
}

func TestStaleTTLHealthAndForceRepush(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	exp := t0.Add(30 * time.Minute)
	outboxEvents(t, s, t0, "e1 a t", "e2 a t", "e3 a t")
	enqueueAll(t, s, "p", t0)
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{
		{EventID: "e1", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
		{EventID: "e2", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
		{EventID: "e3", State: DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: exp},
	}); err != nil {
		t.Fatal(err)
	}
	// Another writer extends e1 and e2 without requeueing their deliveries.
	for _, id := range []string{"e1", "e2"} {
		if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = ? WHERE id = ?`, exp.Add(time.Hour).UnixNano(), id); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{name: "peer copies far from expiry", at: t0, want: "[{lab p 2 0 0 " + exp.String() + "}]"},
		{name: "peer copies expire within the window", at: exp.Add(-time.Minute), want: "[{lab p 2 0 2 " + exp.String() + "}]"},
		{name: "peer copies expired", at: exp.Add(time.Minute), want: "[{lab p 2 2 2 " + exp.String() + "}]"},
		{name: "local events expired too", at: exp.Add(2 * time.Hour), want: "[]"},
	}
	for _, tt := range tests {
		got, err := s.StaleTTLHealth(ctx, "lab", tt.at, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != tt.want {
			t.Errorf("%s: StaleTTLHealth = %v, want %v", tt.name, got, tt.want)
		}
	}
	r, err := s.ForceRepushStaleTTL(ctx, "lab", "p", t0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requeued != 2 {
		t.Errorf("ForceRepushStaleTTL requeued %d, want 2 (e1, e2; e3 was not extended)", r.Requeued)
	}
	if got := states(t, s, "p"); got["e1"] != DeliveryPending || got["e2"] != DeliveryPending || got["e3"] != DeliveryDelivered {
		t.Errorf("states after force repush = %v, want e1, e2 pending and e3 delivered", got)
	}
	if got, _ := s.StaleTTLHealth(ctx, "lab", t0, 2*time.Minute); len(got) != 0 {
		t.Errorf("stale after force repush = %v, want none", got)
	}
}

func TestMissingDeliveries(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	outboxEvents(t, s, t0, "e1 a t.one", "e2 a t.two", "e3 b t.one", "e4 a t.one")
	clk.add(time.Minute)
	outboxEvents(t, s, clk.now(), "e5 a t.one")
	// p has a row for e1 only; e4 is missing, e2 is filtered, e3 is foreign, e5 is young.
	if _, err := s.CommitFresh(ctx, "lab", "p", FreshEvents{Events: []StoredEvent{{Seq: 1, Event: event.Event{ID: "e1"}}}, Last: 1},
		[]DeliveryOutcome{{EventID: "e1", State: DeliveryPending}}, t0); err != nil {
		t.Fatal(err)
	}
	// r has rows for e1 and e4.
	if _, err := s.CommitFresh(ctx, "lab", "r", FreshEvents{Events: []StoredEvent{{Seq: 1, Event: event.Event{ID: "e1"}}, {Seq: 4, Event: event.Event{ID: "e4"}}}, Last: 4},
		[]DeliveryOutcome{{EventID: "e1", State: DeliveryDelivered}, {EventID: "e4", State: DeliveryFailed}}, t0); err != nil {
		t.Fatal(err)
	}
	onlyOne := func(e *event.Event) bool { return e.Type == "t.one" }
	peer := func(name string, match func(*event.Event) bool, before time.Time) MissingPeer {
		return MissingPeer{Name: name, Match: match, StoredBefore: before}
	}
	tests := []struct {
		name   string
		peer   MissingPeer
		liveAt time.Time
		want   int64
		sample string
	}{
		{name: "one missing", peer: peer("p", onlyOne, clk.now()), want: 1, sample: "[e4]"},
		{name: "no filter", peer: peer("p", nil, clk.now()), want: 2, sample: "[e2 e4]"},
		{name: "grace covers everything", peer: peer("p", onlyOne, t0), want: 0, sample: "[]"},
		{name: "young event included", peer: peer("p", onlyOne, clk.now().Add(time.Second)), want: 2, sample: "[e4 e5]"},
		{name: "expired events skipped", peer: peer("p", onlyOne, clk.now()), liveAt: t0.Add(time.Hour), want: 0, sample: "[]"},
		{name: "peer with no rows misses all", peer: peer("q", onlyOne, clk.now()), want: 2, sample: "[e1 e4]"},
		{name: "peer with rows for all", peer: peer("r", onlyOne, clk.now()), want: 0, sample: "[]"},
	}
	for _, tt := range tests {
		if tt.liveAt.IsZero() {
			tt.liveAt = clk.now()
		}
		// Each peer is checked alone and together with every other peer of the table:
		// the answer must not depend on the company.
		var all []MissingPeer
		for _, o := range tests {
			if o.peer.Name != tt.peer.Name {
				all = append(all, o.peer)
			}
		}
		for _, peers := range [][]MissingPeer{{tt.peer}, append(all, tt.peer)} {
			res, err := s.MissingDeliveries(ctx, MissingDeliveryQuery{Group: "lab", SourceNode: "a", Peers: peers, LiveAt: tt.liveAt})
			if err != nil {
				t.Fatal(err)
			}
			got := res[tt.peer.Name]
			if got.Missing > 0 && !got.OldestStoredAt.Equal(t0) {
				t.Errorf("%s: oldest stored %v, want %v", tt.name, got.OldestStoredAt, t0)
			}
			if got.Missing != tt.want || fmt.Sprint(got.SampleIDs) != tt.sample {
				t.Errorf("%s (%d peers): missing %d %v, want %d %s", tt.name, len(peers), got.Missing, got.SampleIDs, tt.want, tt.sample)
			}
		}
	}
}

func TestFailedHealth(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	outboxEvents(t, s, clk.now(), "e1 a t", "e2 a t", "e3 a t")
	enqueueAll(t, s, "p", clk.now())
	enqueueAll(t, s, "q", clk.now())
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{{EventID: "e1", State: DeliveryFailed, LastError: "first"}}); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if err := s.RecordDeliveries(ctx, "lab", "p", []DeliveryOutcome{
		{EventID: "e2", State: DeliveryFailed, LastError: "second"},
		{EventID: "e3", State: DeliveryRetrying, LastError: "not failed yet"},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FailedHealth(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	want := []FailedHealth{{Group: "lab", Peer: "p", Failed: 2, LastError: "second", LastFailedAt: clk.now()}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FailedHealth = %+v, want %+v (q has none, e3 is retrying)", got, want)
	}
}

func TestSubscriptionRunHealth(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	run := func(sub, state, errText string) {
		t.Helper()
		clk.add(time.Second)
		n := clk.now().UnixNano()
		if _, err := s.DB().ExecContext(ctx, `INSERT INTO subscription_runs (subscription, state, error, created_at, started_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?)`, sub, state, errText, n, n, n); err != nil {
			t.Fatal(err)
		}
	}
	run("claims", "failed", "old")
	run("claims", "succeeded", "")
	run("claims", "failed", "plugin trapped")
	run("claims", "failed", "plugin trapped again")
	run("healthy", "failed", "once")
	run("healthy", "succeeded", "")
	run("waiting", "pending", "")
	got, err := s.SubscriptionRunHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, h := range got {
		lines = append(lines, fmt.Sprintf("%s runs=%d failing=%d waiting=%d last=%s/%s", h.Subscription, h.Runs, h.Failing, h.Waiting, h.LastState, h.LastError))
	}
	want := "claims runs=4 failing=2 waiting=0 last=failed/plugin trapped again\n" +
		"healthy runs=2 failing=0 waiting=0 last=succeeded/\n" +
		"waiting runs=1 failing=0 waiting=1 last=pending/"
	if g := strings.Join(lines, "\n"); g != want {
		t.Errorf("SubscriptionRunHealth =\n%s\nwant\n%s", g, want)
	}
}

func TestRetryFailedDeliveries(t *testing.T) {
	s, clk := openOutbox(t)
	ctx := context.Background()
	t0 := clk.now()
	outboxEvents(t, s, t0, "e1 a t", "e2 a t")
	for _, p := range []string{"p", "q"} {
		enqueueAll(t, s, p, t0)
		if err := s.RecordDeliveries(ctx, "lab", p, []DeliveryOutcome{
			{EventID: "e1", State: DeliveryFailed, Attempts: 7, LastError: "gave up"},
			{EventID: "e2", State: DeliveryDelivered, DeliveredAt: t0},
		}); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(time.Hour)
	n, err := s.RetryFailedDeliveries(ctx, "lab", "p", clk.now())
	if err != nil || n != 1 {
		t.Fatalf("RetryFailedDeliveries = %d, %v; want 1", n, err)
	}
	due, err := s.DueDeliveries(ctx, "lab", "p", clk.now(), 10)
	if err != nil || len(due) != 1 || due[0].Event.ID != "e1" || due[0].Attempts != 0 || !due[0].CreatedAt.Equal(clk.now()) {
		t.Errorf("due after retry = %+v, %v; want e1 due now with attempts reset", due, err)
	}
	if got := states(t, s, "q"); got["e1"] != DeliveryFailed {
		t.Errorf("peer q: %v, want e1 still failed (only p was retried)", got)
	}
	if n, err := s.RetryFailedDeliveries(ctx, "lab", "", clk.now()); err != nil || n != 1 {
		t.Errorf("retry every peer = %d, %v; want 1 (q's e1)", n, err)
	}
	if _, err := s.RetryFailedDeliveries(ctx, "", "", clk.now()); err == nil {
		t.Error("RetryFailedDeliveries accepted an empty group")
	}
	s.Close()
	if _, err := s.RetryFailedDeliveries(ctx, "lab", "p", clk.now()); !errors.Is(err, ErrClosed) {
		t.Errorf("closed store: %v, want ErrClosed", err)
	}
}
