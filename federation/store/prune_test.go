package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

func TestPrune(t *testing.T) {
	ctx := context.Background()
	// Fixture, all observed at t0:
	//   g1: 10 events received at t0, expiring at t0+1m (x1..x10)
	//   g1: 10 events received at t0+1h, no expiry (a1..a10)
	//   g2: 5 events received at t0+2h, expiring at t0+10h (b1..b5)
	fill := func(t *testing.T, s *Store, clk *fakeClock) {
		t.Helper()
		add := func(prefix, group string, n int, recv time.Time, ttl time.Duration) {
			clk.Set(recv)
			batch := make([]event.Event, n)
			for i := range batch {
				batch[i] = ev(fmt.Sprintf("%s%d", prefix, i+1), group, "t", "s", ttl)
			}
			if _, err := s.InsertEvents(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		add("x", "g1", 10, t0, time.Minute)
		add("a", "g1", 10, t0.Add(time.Hour), 0)
		add("b", "g2", 5, t0.Add(2*time.Hour), 10*time.Hour)
		// A delivery row of an expired event goes with it.
		if _, err := s.DB().Exec(`INSERT INTO event_deliveries (event_id, peer, group_name, created_at, updated_at) VALUES ('x1', 'peer-b', 'g1', 0, 0)`); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(3 * time.Hour)
	tests := []struct {
		name      string
		opts      PruneOptions
		want      PruneResult
		remaining int64
	}{
		{name: "nothing enabled", opts: PruneOptions{Now: now}, want: PruneResult{}, remaining: 25},
		{name: "expired", opts: PruneOptions{Now: now, Expired: true}, want: PruneResult{Expired: 10}, remaining: 15},
		{name: "expired with grace", opts: PruneOptions{Now: now, Expired: true, ExpiredGrace: 4 * time.Hour}, want: PruneResult{}, remaining: 25},
		{name: "age spares events with an expiry", opts: PruneOptions{Now: now, MaxAge: 90 * time.Minute}, want: PruneResult{Aged: 10}, remaining: 15},
		{name: "expired then age counts each event once", opts: PruneOptions{Now: now, Expired: true, MaxAge: 90 * time.Minute}, want: PruneResult{Expired: 10, Aged: 10}, remaining: 5},
		{name: "max events overall keeps the newest", opts: PruneOptions{Now: now, MaxEvents: 7}, want: PruneResult{OverLimit: 18}, remaining: 7},
		{name: "max events per group", opts: PruneOptions{Now: now, Group: "g1", MaxEvents: 4}, want: PruneResult{OverLimit: 16}, remaining: 9},
		{name: "max events above count", opts: PruneOptions{Now: now, MaxEvents: 100}, want: PruneResult{}, remaining: 25},
		{name: "group retention", opts: func() PruneOptions { o := GroupRetention("g1", 30*time.Minute, 5); o.Now = now; return o }(), want: PruneResult{Expired: 10, Aged: 10}, remaining: 5},
		{name: "group retention keeps expired events for maxAge", opts: func() PruneOptions { o := GroupRetention("g1", 3*time.Hour, 0); o.Now = now; return o }(), want: PruneResult{}, remaining: 25},
		{name: "group limits expiry", opts: PruneOptions{Now: t0.Add(11 * time.Hour), Group: "g2", Expired: true}, want: PruneResult{Expired: 5}, remaining: 20},
		{name: "small batches", opts: PruneOptions{Now: now, Expired: true, MaxEvents: 3, BatchSize: 3, Pause: -1}, want: PruneResult{Expired: 10, OverLimit: 12}, remaining: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := openTest(t)
			fill(t, s, clk)
			dry := tc.opts
			dry.DryRun = true
			plan, err := s.Prune(ctx, dry)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Total() != tc.want.Total() || plan.Expired != tc.want.Expired || plan.Aged != tc.want.Aged || plan.OverLimit != tc.want.OverLimit {
				t.Errorf("dry run %+v, want %+v", plan, tc.want)
			}
			if n, _ := s.CountEvents(ctx, EventFilter{}); n != 25 {
				t.Fatalf("dry run deleted events: %d left", n)
			}
			got, err := s.Prune(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Expired != tc.want.Expired || got.Aged != tc.want.Aged || got.OverLimit != tc.want.OverLimit {
				t.Errorf("prune %+v, want %+v", got, tc.want)
			}
			if n, _ := s.CountEvents(ctx, EventFilter{}); n != tc.remaining {
				t.Errorf("%d events left, want %d", n, tc.remaining)
			}
			var deliveries int
			s.ReadDB().QueryRow(`SELECT COUNT(*) FROM event_deliveries`).Scan(&deliveries)
			_, errX1 := s.GetEvent(ctx, "x1")
			if (errX1 == nil) != (deliveries == 1) {
				t.Errorf("x1 present=%v but %d delivery rows", errX1 == nil, deliveries)
			}
			if tc.opts.BatchSize == 3 && got.Batches < 8 {
				t.Errorf("batches = %d, want the work split into batches of 3", got.Batches)
			}
		})
	}
}

func TestPruneStopsOnCancel(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	batch := make([]event.Event, 50)
	for i := range batch {
		batch[i] = ev(fmt.Sprintf("e%d", i), "g", "t", "s", time.Second)
	}
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	res, err := s.Prune(cctx, PruneOptions{Now: t0.Add(time.Hour), Expired: true, BatchSize: 10})
	if err == nil {
		t.Fatalf("cancelled prune returned %+v without error", res)
	}
	if n, _ := s.CountEvents(ctx, EventFilter{}); n != 50 {
		t.Errorf("%d events left after a cancelled prune", n)
	}
}

func TestPruneHistory(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	day := 24 * time.Hour
	// Old history (t0) and new history (t0 + 10 days).
	for _, at := range []time.Time{t0, t0.Add(10 * day)} {
		clk.Set(at)
		if err := s.AppendAudit(ctx, AuditEntry{Actor: "a", Action: "x"}); err != nil {
			t.Fatal(err)
		}
		for _, state := range []string{"succeeded", "failed", "running"} {
			if _, err := s.DB().Exec(`INSERT INTO subscription_runs (subscription, state, created_at, finished_at) VALUES ('s', ?, ?, ?)`,
				state, at.UnixNano(), at.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
		for i, state := range []string{PlanExecuted, PlanRejected, PlanProposed} {
			if _, err := s.DB().Exec(`INSERT INTO action_plans (id, name, state, document, created_at, updated_at) VALUES (?, 'n', ?, '{}', ?, ?)`,
				fmt.Sprintf("%d-%d", at.Unix(), i), state, at.UnixNano(), at.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(table string) int {
		var n int
		s.ReadDB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n)
		return n
	}
	opts := PruneOptions{Now: t0.Add(11 * day), HistoryMaxAge: 5 * day}
	dry := opts
	dry.DryRun = true
	plan, err := s.Prune(ctx, dry)
	if err != nil || plan.History != 5 || plan.Total() != 0 {
		t.Fatalf("dry run %+v, %v; want 5 history rows", plan, err)
	}
	got, err := s.Prune(ctx, opts)
	if err != nil || got.History != 5 {
		t.Fatalf("prune %+v, %v", got, err)
	}
	// Kept: the new rows, the old running run and the old proposed plan.
	for table, want := range map[string]int{"audit_log": 1, "subscription_runs": 4, "action_plans": 4} {
		if n := count(table); n != want {
			t.Errorf("%s: %d rows left, want %d", table, n, want)
		}
	}
}

func TestPruneAdaptiveBatches(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		target      time.Duration
		wantBatches int
	}{
		// Every batch is "slow": 400, 200, 100, 100, 100, 100, then an empty one.
		{name: "slow batches shrink to the minimum", target: time.Nanosecond, wantBatches: 7},
		// Every batch is "fast": 400, 400, 200 (the last, short one ends the rule).
		{name: "fast batches stay at the maximum", target: time.Hour, wantBatches: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t)
			batch := make([]event.Event, 1000)
			for i := range batch {
				batch[i] = ev(fmt.Sprintf("e%04d", i), "g", "t", "s", time.Second)
			}
			if _, err := s.InsertEvents(ctx, batch); err != nil {
				t.Fatal(err)
			}
			res, err := s.Prune(ctx, PruneOptions{Now: t0.Add(time.Hour), Expired: true, BatchSize: 400, BatchTarget: tc.target, Pause: -1})
			if err != nil {
				t.Fatal(err)
			}
			if res.Expired != 1000 || res.Batches != tc.wantBatches {
				t.Errorf("pruned %d in %d batches, want 1000 in %d", res.Expired, res.Batches, tc.wantBatches)
			}
		})
	}
}
