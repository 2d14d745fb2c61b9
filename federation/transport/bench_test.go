package transport

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
)

// Benchmarks print "BENCH <name> <value> <unit>" lines for make bench. Each does its
// whole, bounded measurement in one call (b.N is not used to scale the work).

func benchEvents(src string, from, n int, at time.Time) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = event.Event{
			ID: fmt.Sprintf("%s-%09d", src, k), Group: "lab", SourceNode: src,
			Type: "routerd.client.ipv4.observed", Subject: fmt.Sprintf("10.%d.%d.%d", k>>16&255, k>>8&255, k&255),
			Payload:    map[string]string{"address": "10.0.0.1", "interface": "eth1"},
			ObservedAt: at, ExpiresAt: at.Add(30 * time.Minute),
		}
	}
	return evs
}

// benchPair starts node a (sender) and node b (receiver) in-process on loopback.
func benchPair(b *testing.B, batch bool) (a, rcv *testNode) {
	addrs := map[string]string{"a": freeAddr(b), "b": freeAddr(b)}
	cfgs := meshConfigs(b, []string{"a", "b"}, addrs)
	start := func(name string, cfg GroupConfig) *testNode {
		st := openStore(b, name)
		d, err := NewDaemon(cfg, st, DaemonOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if !batch {
			d.receiver.opts.MaxBatchEvents = -1 // advertise nothing: plain v1
		}
		if err := d.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
		return &testNode{name: name, st: st, d: d}
	}
	rcv = start("b", cfgs["b"])
	a = start("a", cfgs["a"])
	return a, rcv
}

// cpuTime is the CPU time this process has used so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deliveryRate inserts n local events on a in chunks and returns delivered events per
// second at b (from the first insert to the last acceptance) and the CPU time the whole
// process (sender, receiver, both stores and the inserting driver) spent per event,
// which does not depend on how busy the machine is.
func deliveryRate(b *testing.B, batch bool, n int, limit time.Duration) (rate float64, cpuPerEvent time.Duration) {
	a, rcv := benchPair(b, batch)
	ctx := context.Background()
	cpu0 := cpuTime()
	start := time.Now()
	const chunk = 500
	for i := 0; i < n; i += chunk {
		if _, err := a.st.InsertEvents(ctx, benchEvents("a", i, min(chunk, n-i), time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	deadline := start.Add(limit)
	for rcv.d.Receiver().Status().Counters.Accepted < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d events delivered within %v", rcv.d.Receiver().Status().Counters.Accepted, n, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds(), (cpuTime() - cpu0) / time.Duration(n)
}

func BenchmarkTransportEventsPerSecond(b *testing.B) {
	rate, cpu := deliveryRate(b, true, 60000, 90*time.Second)
	fmt.Printf("BENCH %s %.2f %s\n", "transport_events_per_s", rate, "events/s")
	fmt.Printf("BENCH %s %.2f %s\n", "transport_cpu_us_per_event", float64(cpu)/1e3, "us")
	b.ReportMetric(rate, "events/s")
}

func BenchmarkTransportV1EventsPerSecond(b *testing.B) {
	rate, cpu := deliveryRate(b, false, 10000, 90*time.Second)
	fmt.Printf("BENCH %s %.2f %s\n", "transport_v1_events_per_s", rate, "events/s")
	fmt.Printf("BENCH %s %.2f %s\n", "transport_v1_cpu_us_per_event", float64(cpu)/1e3, "us")
	b.ReportMetric(rate, "events/s")
}

// fillStore writes n foreign events of group lab into st in one transaction.
func fillStore(b *testing.B, st *store.Store, n int) {
	ctx := context.Background()
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO events
		(id, group_name, type, source_node, subject, dedupe_key, payload, observed_at, expires_at, received_at)
		VALUES (?, 'lab', 'routerd.client.ipv4.observed', 'c', ?, ?, '{"address":"10.0.0.1"}', ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	for i := range n {
		id := "fill-" + strconv.Itoa(i)
		if _, err := ins.ExecContext(ctx, id, "10.9."+strconv.Itoa(i>>8&255)+"."+strconv.Itoa(i&255), id, now, now+int64(time.Hour), now); err != nil {
			b.Fatal(err)
		}
	}
	ins.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// A store that grew to 1M events over time has long been checkpointed; do it now so
	// the measurement does not include copying the fill's ~250 MB WAL into the file.
	if _, err := st.DB().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
}

// receiveRate posts n single events (v1) to a receiver over st and returns events/s.
func receiveRate(b *testing.B, st *store.Store, from, n int) float64 {
	_, srv := receiverFor(b, st, "a", []Key{{Secret: secretGroup, Nodes: []string{"b"}}}, nil)
	client := &http.Client{}
	bodies := make([][]byte, n)
	for i, e := range benchEvents("b", from, n, time.Now()) {
		bodies[i] = mustJSON(b, e)
	}
	start := time.Now()
	for _, body := range bodies {
		ts := time.Now().Unix()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+PathEvents, bytes.NewReader(body))
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign(secretGroup, ts, body))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func BenchmarkTransportReceiveFlatness(b *testing.B) {
	const stored, n = 1_000_000, 600
	empty := openStore(b, "empty")
	full := openStore(b, "full")
	fillStore(b, full, stored)
	// Warm both paths, then alternate short rounds on the empty and the full store so
	// that load changes on the machine hit both sides alike; compare total rates.
	receiveRate(b, empty, 0, 200)
	receiveRate(b, full, 0, 200)
	const rounds = 6
	var te, tf float64 // seconds for n events, summed
	for i := range rounds {
		from := 1000 + i*n
		te += float64(n) / receiveRate(b, empty, from, n)
		tf += float64(n) / receiveRate(b, full, from, n)
	}
	base, f := rounds*n/te, rounds*n/tf
	fmt.Printf("BENCH %s %.2f %s\n", "transport_receive_flatness", f/base, "ratio")
	fmt.Printf("BENCH %s %.2f %s\n", "transport_receive_empty_events_per_s", base, "events/s")
	fmt.Printf("BENCH %s %.2f %s\n", "transport_receive_1m_stored_events_per_s", f, "events/s")
	b.ReportMetric(f/base, "ratio")
}

func BenchmarkTransportLagP99(b *testing.B) {
	a, rcv := benchPair(b, true)
	ctx := context.Background()
	const rate, seconds = 1000, 5
	tick := 10 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	n := 0
	start := time.Now()
	for i := 0; i < seconds*int(time.Second/tick); i++ {
		if d := time.Until(start.Add(time.Duration(i) * tick)); d > 0 {
			time.Sleep(d)
		}
		if _, err := a.st.InsertEvents(ctx, benchEvents("a", n, perTick, time.Now())); err != nil {
			b.Fatal(err)
		}
		n += perTick
	}
	deadline := time.Now().Add(30 * time.Second)
	for rcv.d.Receiver().Status().Counters.Accepted < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d delivered", rcv.d.Receiver().Status().Counters.Accepted, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Lag per event: received at b (b's insert time) minus creation at a (observedAt,
	// set when it was inserted on a); both clocks are this process's.
	rows, err := rcv.st.ReadDB().QueryContext(ctx, `SELECT received_at - observed_at FROM events WHERE group_name = 'lab'`)
	if err != nil {
		b.Fatal(err)
	}
	var lags []float64
	for rows.Next() {
		var d sql.NullInt64
		if err := rows.Scan(&d); err != nil {
			b.Fatal(err)
		}
		lags = append(lags, float64(d.Int64)/1e6)
	}
	rows.Close()
	slices.Sort(lags)
	p99 := lags[len(lags)*99/100]
	fmt.Printf("BENCH %s %.2f %s\n", "transport_lag_p99_ms", p99, "ms")
	fmt.Printf("BENCH %s %.2f %s\n", "transport_lag_p50_ms", lags[len(lags)/2], "ms")
	b.ReportMetric(p99, "p99-ms")
}
