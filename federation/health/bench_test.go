package health

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/health/healthtest"
	"routerd.net/routerd/federation/store"
)

// benchStore builds a store with 10,000 local events of group "bench" and a delivery row
// for each of them and each of 10 peers (100,000 rows): per peer 95% delivered (one in
// fifty of those a stale copy), 3% pending, 2% failed. It returns the store and the
// config naming the group and its peers.
func benchStore(b *testing.B, now time.Time) (*store.Store, string) {
	b.Helper()
	const events, peers = 10000, 10
	t0 := now.Add(-10 * time.Minute)
	s, err := store.Open(filepath.Join(b.TempDir(), "routerd.db"), store.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	evs := make([]event.Event, events)
	for i := range evs {
		evs[i] = event.Event{ID: fmt.Sprintf("ev-%06d", i), Group: "bench", SourceNode: "a", Type: event.TypeClientIPv4Observed,
			Subject: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), ExpiresAt: now.Add(time.Minute),
			Payload: map[string]string{"address": fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}}
	}
	for i := 0; i < len(evs); i += 500 {
		if _, err := s.InsertEvents(ctx, evs[i:min(i+500, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	var cfg strings.Builder
	cfg.WriteString("apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: bench}\nspec: {nodeName: a, auth: {secretFile: /etc/routerd/bench.key}}\n")
	for p := range peers {
		peer := fmt.Sprintf("peer-%02d", p)
		fmt.Fprintf(&cfg, "---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: %s}\nspec: {groupRef: bench, nodeName: node-%02d, endpoint: \"http://127.0.0.1:%d\"}\n", peer, p, 19000+p)
		fresh, err := s.NextEvents(ctx, store.EnqueueRequest{Group: "bench", Peer: peer, SourceNode: "a", Limit: events})
		if err != nil || len(fresh.Events) != events {
			b.Fatalf("next events: %d, %v", len(fresh.Events), err)
		}
		outcomes := make([]store.DeliveryOutcome, events)
		for i, se := range fresh.Events {
			o := store.DeliveryOutcome{EventID: se.Event.ID, State: store.DeliveryDelivered, Attempts: 1, DeliveredAt: t0, DeliveredExpiresAt: se.Event.ExpiresAt}
			switch {
			case i%100 < 3:
				o = store.DeliveryOutcome{EventID: se.Event.ID, State: store.DeliveryPending, NextAttemptAt: t0}
			case i%100 < 5:
				o = store.DeliveryOutcome{EventID: se.Event.ID, State: store.DeliveryFailed, Attempts: 9, LastError: "connection refused"}
			}
			outcomes[i] = o
		}
		if _, err := s.CommitFresh(ctx, "bench", peer, fresh, outcomes, t0); err != nil {
			b.Fatal(err)
		}
	}
	// One in fifty events extended since it was delivered (stale copies at every peer).
	if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = expires_at + ? WHERE seq % 50 = 7`, time.Hour.Nanoseconds()); err != nil {
		b.Fatal(err)
	}
	return s, cfg.String()
}

// BenchmarkDoctorFederation runs every federation check over 100,000 stored deliveries
// (10 peers); target ≤ 500 ms.
func BenchmarkDoctorFederation(b *testing.B) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s, doc := benchStore(b, now)
	cfg := healthtest.LoadConfig(b, doc)
	ctx := context.Background()
	var (
		best time.Duration = -1
		fs   []Finding
	)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		fs = Run(ctx, Input{Config: cfg, Store: s, Now: now})
		if d := time.Since(start); best < 0 || d < best {
			best = d
		}
	}
	b.StopTimer()
	var bad []string
	for _, f := range fs {
		if f.Severity != SeverityOK {
			bad = append(bad, f.Check)
		}
	}
	// Sanity: the faults built in are found (failed, pending, stale, lag on every peer).
	if len(bad) != 40 {
		b.Fatalf("%d non-ok findings, want 40 (4 checks x 10 peers): %v", len(bad), bad)
	}
	ms := float64(best.Microseconds()) / 1000
	fmt.Printf("BENCH %s %.2f %s\n", "doctor_federation_ms", ms, "ms")
	b.ReportMetric(ms, "ms/doctor")
}
