package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

// benchEvents builds n events of about 1 KB encoded (envelope ~200 bytes, payload ~820).
func benchEvents(prefix string, n int, now time.Time) []event.Event {
	pad := strings.Repeat("x", 760)
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			ID: fmt.Sprintf("%s-%08d", prefix, i), Group: "bench", SourceNode: "node-a",
			Type: event.TypeClientIPv4Observed, Subject: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			Payload:    map[string]string{"address": "10.88.60.9", "ownerSide": "onprem", "domain": "lab", "pad": pad},
			ObservedAt: now, ExpiresAt: now.Add(30 * time.Minute),
		}
	}
	return evs
}

// ingestOurs stores evs through InsertEvents in batches of 500 on a fresh store and
// returns events per second.
func ingestOurs(b *testing.B, evs []event.Event) float64 {
	s, err := Open(filepath.Join(b.TempDir(), "ours.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < len(evs); i += 500 {
		if _, err := s.InsertEvents(ctx, evs[i:min(i+500, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(evs)) / time.Since(start).Seconds()
}

// ingestBare stores the same rows with a bare INSERT loop in one transaction (same file
// settings and table, payload pre-encoded, no validation or duplicate reporting) and
// returns rows per second.
func ingestBare(b *testing.B, evs []event.Event) float64 {
	s, err := Open(filepath.Join(b.TempDir(), "bare.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	payloads := make([]string, len(evs))
	for i, e := range evs {
		p, _ := json.Marshal(e.Payload)
		payloads[i] = string(p)
	}
	received := time.Now().UnixNano()
	start := time.Now()
	tx, err := s.DB().Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO events (id, group_name, type, source_node, subject, dedupe_key, payload, observed_at, expires_at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	for i, e := range evs {
		if _, err := stmt.Exec(e.ID, e.Group, e.Type, e.SourceNode, e.Subject, e.ID, payloads[i],
			e.ObservedAt.UnixNano(), e.ExpiresAt.UnixNano(), received); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return float64(len(evs)) / time.Since(start).Seconds()
}

// BenchmarkStoreIngest measures batched ingest of 1 KB events against a bare SQLite
// insert loop of the same rows, best of five alternating rounds each (the machine is
// shared; the best round is the one least disturbed).
func BenchmarkStoreIngest(b *testing.B) {
	const n = 50000
	evs := benchEvents("ing", n, time.Now())
	if enc, _ := evs[0].Marshal(); len(enc) < 950 || len(enc) > 1100 {
		b.Fatalf("bench event encodes to %d bytes, want about 1 KB", len(enc))
	}
	var ours, bare float64
	for range 5 {
		ours = max(ours, ingestOurs(b, evs))
		bare = max(bare, ingestBare(b, evs))
	}
	fmt.Printf("BENCH %s %.2f %s\n", "store_ingest_events_per_s", ours, "events/s")
	fmt.Printf("BENCH %s %.2f %s\n", "store_ingest_vs_bare_sqlite", ours/bare, "ratio")
	b.ReportMetric(ours, "events/s")
}

// BenchmarkStorePrune fills 1,000,000 expired events, then prunes them while a writer
// keeps inserting batches of 10 live events, and reports the prune time and the writer's
// p99 batch latency during the prune.
func BenchmarkStorePrune(b *testing.B) {
	const total = 1_000_000
	s, err := Open(filepath.Join(b.TempDir(), "prune.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()

	// Fill fast: one transaction, one prepared statement, small rows.
	fillStart := time.Now()
	tx, err := s.DB().Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO events (id, group_name, type, source_node, subject, dedupe_key, payload, observed_at, expires_at, received_at)
		VALUES (?, 'bench', 'address.observed', 'node-a', ?, ?, '{"address":"10.0.0.1"}', ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	old := now.Add(-2 * time.Hour).UnixNano()
	expired := now.Add(-time.Hour).UnixNano()
	for i := range total {
		id := fmt.Sprintf("old-%07d", i)
		if _, err := stmt.Exec(id, "10.0.0.1", id, old, expired, old); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d events in %v", total, time.Since(fillStart))

	// The writer: batches of 10 live events, a short pause between, bounded in count
	// and time.
	var (
		wg        sync.WaitGroup
		latencies []time.Duration
		writerErr error
	)
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(3 * time.Minute)
		for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := benchEvents(fmt.Sprintf("live-%06d", i), 10, time.Now())
			t := time.Now()
			if _, err := s.InsertEvents(ctx, batch); err != nil {
				writerErr = err
				return
			}
			latencies = append(latencies, time.Since(t))
			time.Sleep(time.Millisecond)
		}
	}()

	pruneStart := time.Now()
	res, err := s.Prune(ctx, PruneOptions{Now: now, Expired: true})
	pruneDur := time.Since(pruneStart)
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	if writerErr != nil {
		b.Fatal(writerErr)
	}
	if res.Expired != total {
		b.Fatalf("pruned %d, want %d", res.Expired, total)
	}
	if len(latencies) == 0 {
		b.Fatal("the writer inserted nothing during the prune")
	}
	slices.Sort(latencies)
	p99 := latencies[(len(latencies)*99)/100]
	b.Logf("prune: %d batches; writer: %d inserts, p50 %v, p99 %v, max %v", res.Batches, len(latencies),
		latencies[len(latencies)/2], p99, latencies[len(latencies)-1])
	fmt.Printf("BENCH %s %.2f %s\n", "store_prune_1m_s", pruneDur.Seconds(), "s")
	fmt.Printf("BENCH %s %.2f %s\n", "store_insert_p99_during_prune_ms", float64(p99.Microseconds())/1000, "ms")
}
