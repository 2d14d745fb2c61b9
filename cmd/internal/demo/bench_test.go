package demo

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/host/wasmbuild"
)

// eventdForBench returns bin/routerd-eventd (make bench builds it first), else builds it.
func eventdForBench(b *testing.B) string { return eventdBinary(b) }

// eventdBinary returns bin/routerd-eventd when it exists, else builds it.
func eventdBinary(b testing.TB) string {
	root, err := wasmbuild.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	if p := filepath.Join(root, "bin", "routerd-eventd"); fileExists(p) {
		return p
	}
	out := filepath.Join(b.TempDir(), "routerd-eventd")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/routerd-eventd")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build routerd-eventd: %v\n%s", err, msg)
	}
	return out
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// BenchmarkE2EEventToClaim measures the whole pipeline on the demo's three routers:
// 1,000 routerd.client.ipv4.observed events emitted on router-a at 250/s, each pushed by
// router-a's routerd-eventd, stored by router-b's, picked up by router-b's subscription
// (batchWindow 0), turned into a RemoteAddressClaim by the Wasm plugin and stored as a
// DynamicConfigPart. The latency of an event is the part's createdAt on router-b minus
// the emit time on router-a (one process, one clock).
func BenchmarkE2EEventToClaim(b *testing.B) {
	const (
		events   = 1000
		interval = 4 * time.Millisecond
	)
	wasm := wasmbuild.ForTest(b, "plugins/event-to-remote-claim")
	pluginDir := b.TempDir()
	data, err := os.ReadFile(wasm)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, "event-to-remote-claim.wasm"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	o := Options{PluginDir: pluginDir, ConfigDir: filepath.Join("..", "..", "..", "testdata", "demo"),
		EventdBinary: eventdForBench(b), Out: io.Discard}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for range b.N {
		c := &demoCluster{root: b.TempDir(), start: time.Now(), out: io.Discard}
		if err := startCluster(ctx, o, c); err != nil {
			b.Fatal(err)
		}
		if err := waitEventd(ctx, c); err != nil {
			b.Fatal(err)
		}
		a, rb := c.router("router-a"), c.router("router-b")
		emitted := make(map[string]time.Time, events)
		b.ResetTimer()
		next := time.Now()
		for i := range events {
			addr := fmt.Sprintf("10.88.%d.%d", 100+i/250, i%250+1)
			ev := event.New("lab", "routerd.client.ipv4.observed", "router-a", addr,
				map[string]string{"address": addr, "domain": "lab"}, 30*time.Minute, time.Now())
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
			emitted[ev.ID] = time.Now()
			if _, err := a.d.Emit(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
		db := rb.d.Store().ReadDB()
		if err := waitFor(ctx, "1000 claims on router-b", func() (bool, error) {
			var n int
			err := db.QueryRowContext(ctx, `SELECT count(*) FROM dynamic_parts WHERE kind = 'RemoteAddressClaim'`).Scan(&n)
			return n >= events, err
		}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var recMax, recSum float64
		recs := rb.d.Reconciles()
		for _, r := range recs {
			recSum += r.DurationMS
			recMax = max(recMax, r.DurationMS)
		}
		b.Logf("router-b: last %d reconciles: mean %.2f ms, max %.2f ms, seq %d", len(recs), recSum/float64(len(recs)), recMax, recs[len(recs)-1].Seq)
		var runs, evs int
		var maxRun, sumRun float64
		rows, err := db.QueryContext(ctx, `SELECT event_count, finished_at - started_at FROM subscription_runs`)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var n int
			var d int64
			_ = rows.Scan(&n, &d)
			runs++
			evs += n
			ms := float64(d) / 1e6
			sumRun += ms
			maxRun = max(maxRun, ms)
		}
		rows.Close()
		b.Logf("router-b: %d runs, %.1f events/run, run mean %.2f ms, max %.2f ms", runs, float64(evs)/float64(runs), sumRun/float64(runs), maxRun)
		lat, err := claimLatencies(ctx, db, emitted)
		if err != nil {
			b.Fatal(err)
		}
		recv, err := receiveLatencies(ctx, db, emitted)
		if err != nil {
			b.Fatal(err)
		}
		sort.Float64s(recv)
		b.Logf("transport only (emit on router-a to stored on router-b): p50 %.2f ms, p99 %.2f ms",
			recv[len(recv)/2], recv[int(0.99*float64(len(recv)-1))])
		pipe, err := pipelineLatencies(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		sort.Float64s(pipe)
		if len(pipe) > 0 {
			b.Logf("pipeline only (stored on router-b to claim stored on router-b): p50 %.2f ms, p99 %.2f ms",
				pipe[len(pipe)/2], pipe[int(0.99*float64(len(pipe)-1))])
		}
		if err := stopCluster(c); err != nil {
			b.Fatal(err)
		}
		if len(lat) != events {
			b.Fatalf("measured %d claims, want %d", len(lat), events)
		}
		sort.Float64s(lat)
		p := func(q float64) float64 { return lat[int(q*float64(len(lat)-1))] }
		fmt.Printf("BENCH %s %.2f %s\n", "e2e_event_to_claim_ms_p50", p(0.50), "ms")
		fmt.Printf("BENCH %s %.2f %s\n", "e2e_event_to_claim_ms_p99", p(0.99), "ms")
	}
}

// claimLatencies returns, per claim on router-b, its createdAt minus its event's emit time.
func claimLatencies(ctx context.Context, db *sql.DB, emitted map[string]time.Time) ([]float64, error) {
	rows, err := db.QueryContext(ctx, `SELECT event_ids, created_at FROM dynamic_parts WHERE kind = 'RemoteAddressClaim'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []float64
	for rows.Next() {
		var ids string
		var created int64
		if err := rows.Scan(&ids, &created); err != nil {
			return nil, err
		}
		var list []string
		if err := json.Unmarshal([]byte(ids), &list); err != nil || len(list) == 0 {
			return nil, fmt.Errorf("claim without event ids %q: %v", ids, err)
		}
		at, ok := emitted[list[0]]
		if !ok {
			return nil, fmt.Errorf("claim for unknown event %s", list[0])
		}
		out = append(out, float64(time.Unix(0, created).Sub(at).Microseconds())/1000)
	}
	return out, rows.Err()
}

// receiveLatencies returns, per event stored on router-b, its received_at minus its emit
// time: the transport's share of the end-to-end latency.
func receiveLatencies(ctx context.Context, db *sql.DB, emitted map[string]time.Time) ([]float64, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, received_at FROM events`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []float64
	for rows.Next() {
		var id string
		var recv int64
		if err := rows.Scan(&id, &recv); err != nil {
			return nil, err
		}
		if at, ok := emitted[id]; ok {
			out = append(out, float64(time.Unix(0, recv).Sub(at).Microseconds())/1000)
		}
	}
	return out, rows.Err()
}

// pipelineLatencies returns, per claim on router-b, its createdAt minus the received_at of
// its event on router-b: subscription, plugin and dynamic-part handling.
func pipelineLatencies(ctx context.Context, db *sql.DB) ([]float64, error) {
	rows, err := db.QueryContext(ctx, `SELECT p.created_at, e.received_at FROM dynamic_parts p
		JOIN events e ON e.id = json_extract(p.event_ids, '$[0]') WHERE p.kind = 'RemoteAddressClaim'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []float64
	for rows.Next() {
		var created, recv int64
		if err := rows.Scan(&created, &recv); err != nil {
			return nil, err
		}
		out = append(out, float64(time.Unix(0, created).Sub(time.Unix(0, recv)).Microseconds())/1000)
	}
	return out, rows.Err()
}
