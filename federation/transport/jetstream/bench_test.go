package jetstream

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
)

// Benchmarks print "BENCH <name> <value> <unit>" lines for make bench. Each does its
// whole, bounded measurement in one call (b.N is not used to scale the work).

const (
	fanoutRouters = 100
	// fanoutBurst events are inserted at once at the source: events/s is how fast the
	// whole fleet has stored all of them.
	fanoutBurst = 1000
	// Lag is measured on a paced load after the burst: fanoutLagRate events/s for
	// fanoutLagSeconds.
	fanoutLagRate    = 100
	fanoutLagSeconds = 3
	fanoutLimit      = 120 * time.Second
)

// fanoutFleet is one source router and fanoutRouters receiving routers, each with its
// own SQLite store.
type fanoutFleet struct {
	src    *store.Store
	stores []*store.Store
	rx     []*transport.Receiver
	close  func()
}

func openFleetStores(b *testing.B, dir string) []*store.Store {
	out := make([]*store.Store, fanoutRouters)
	for i := range out {
		s, err := store.Open(filepath.Join(dir, fmt.Sprintf("r%03d.db", i)), store.Options{ReadConns: 1})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func closeAll(stores []*store.Store) {
	for _, s := range stores {
		_ = s.Close()
	}
}

// pushFleet: the source pushes to every router over HTTP (batches), as in a full mesh.
func pushFleet(b *testing.B) *fanoutFleet {
	dir := b.TempDir()
	f := &fanoutFleet{stores: openFleetStores(b, dir)}
	var servers []*httptest.Server
	var peers []transport.Peer
	for i, st := range f.stores {
		name := fmt.Sprintf("r%03d", i)
		rx, err := transport.NewReceiver(transport.ReceiverOptions{Group: testGroup, LocalNode: name, Store: st,
			Keys: []transport.Key{{Secret: groupKey, Nodes: []string{"src"}}}})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(rx)
		servers = append(servers, srv)
		f.rx = append(f.rx, rx)
		peers = append(peers, transport.Peer{Name: name, NodeName: name, Endpoint: srv.URL, Key: transport.Key{Secret: groupKey}})
	}
	src, err := store.Open(filepath.Join(dir, "src.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	f.src = src
	d, err := transport.NewDaemon(transport.GroupConfig{Group: testGroup, LocalNode: "src", Peers: peers,
		ReceiveKeys: []transport.Key{{Secret: groupKey}}}, src, transport.DaemonOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	f.close = func() {
		_ = d.Close()
		for _, s := range servers {
			s.Close()
		}
		_ = src.Close()
		closeAll(f.stores)
	}
	return f
}

// natsFleet: the source publishes into the stream of an embedded server; every router
// reads it through its durable consumer.
func natsFleet(b *testing.B) *fanoutFleet {
	dir := b.TempDir()
	srv := startServer(b, filepath.Join(dir, "nats"), 0)
	js := jsConfig(srv.URL())
	f := &fanoutFleet{stores: openFleetStores(b, dir)}
	var brokers []*Broker
	ctx := context.Background()
	for i, st := range f.stores {
		name := fmt.Sprintf("r%03d", i)
		rx, err := transport.NewReceiver(transport.ReceiverOptions{Group: testGroup, LocalNode: name, Store: st,
			Keys: js.GroupKeys, MaxMessageAge: js.MaxAge, MaxBatchEvents: -1})
		if err != nil {
			b.Fatal(err)
		}
		br, err := NewBroker(Options{Group: testGroup, LocalNode: name, Config: *js})
		if err != nil {
			b.Fatal(err)
		}
		if err := br.Start(ctx, rx); err != nil {
			b.Fatal(err)
		}
		brokers = append(brokers, br)
		f.rx = append(f.rx, rx)
	}
	src, err := store.Open(filepath.Join(dir, "src.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	f.src = src
	sb, err := NewBroker(Options{Group: testGroup, LocalNode: "src", Config: *js})
	if err != nil {
		b.Fatal(err)
	}
	d, err := transport.NewDaemon(transport.GroupConfig{Group: testGroup, LocalNode: "src", JetStream: js,
		ReceiveKeys: []transport.Key{{Secret: groupKey}}}, src, transport.DaemonOptions{Broker: sb})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	// Measure delivery, not consumer creation: wait until every router receives.
	for _, br := range append(brokers, sb) {
		select {
		case <-br.Ready():
		case <-time.After(fanoutLimit):
			b.Fatal("consumers not ready")
		}
	}
	f.close = func() {
		_ = d.Close()
		for _, br := range brokers {
			_ = br.Shutdown(context.Background())
		}
		_ = src.Close()
		closeAll(f.stores)
	}
	return f
}

// accepted is how many events the fleet's routers have stored in total.
func (f *fanoutFleet) accepted() int64 {
	var n int64
	for _, rx := range f.rx {
		n += rx.Status().Counters.Accepted
	}
	return n
}

// waitAccepted waits (bounded by fanoutLimit) until the fleet stored want events.
func (f *fanoutFleet) waitAccepted(b *testing.B, want int64, what string) {
	deadline := time.Now().Add(fanoutLimit)
	for f.accepted() < want {
		if time.Now().After(deadline) {
			b.Fatalf("%s: only %d of %d events stored within %v", what, f.accepted(), want, fanoutLimit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func fanoutEvents(prefix string, from, n int, at time.Time) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = event.Event{
			ID: fmt.Sprintf("%s-%07d", prefix, k), Group: testGroup, SourceNode: "src",
			Type: "routerd.client.ipv4.observed", Subject: fmt.Sprintf("10.%d.%d.%d", k>>16&255, k>>8&255, k&255),
			Payload:    map[string]string{"address": "10.0.0.1", "interface": "eth1"},
			ObservedAt: at, ExpiresAt: at.Add(30 * time.Minute),
		}
	}
	return evs
}

// measureFanout runs the burst (events/s until every router stored every event) and the
// paced load (lag p99 over every router and event: stored at the router minus created
// at the source, both this process's clock) on f.
func measureFanout(b *testing.B, f *fanoutFleet, what string) (rate, p99 float64, cpu time.Duration) {
	ctx := context.Background()
	cpu0 := cpuTime()
	start := time.Now()
	const chunk = 250
	for i := 0; i < fanoutBurst; i += chunk {
		if _, err := f.src.InsertEvents(ctx, fanoutEvents("burst", i, min(chunk, fanoutBurst-i), time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	f.waitAccepted(b, fanoutBurst*fanoutRouters, what+" burst")
	rate = fanoutBurst / time.Since(start).Seconds()
	cpu = (cpuTime() - cpu0) / (fanoutBurst * fanoutRouters)

	tick := 10 * time.Millisecond
	perTick := fanoutLagRate * int(tick) / int(time.Second)
	n := 0
	start = time.Now()
	for i := 0; i < fanoutLagSeconds*int(time.Second/tick); i++ {
		if d := time.Until(start.Add(time.Duration(i) * tick)); d > 0 {
			time.Sleep(d)
		}
		if _, err := f.src.InsertEvents(ctx, fanoutEvents("lag", n, perTick, time.Now())); err != nil {
			b.Fatal(err)
		}
		n += perTick
	}
	f.waitAccepted(b, int64(fanoutBurst+n)*fanoutRouters, what+" paced")
	lags := make([]float64, 0, n*fanoutRouters)
	for _, st := range f.stores {
		rows, err := st.ReadDB().QueryContext(ctx, `SELECT received_at - observed_at FROM events WHERE id LIKE 'lag-%'`)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var d int64
			if err := rows.Scan(&d); err != nil {
				b.Fatal(err)
			}
			lags = append(lags, float64(d)/1e6)
		}
		rows.Close()
	}
	slices.Sort(lags)
	return rate, lags[len(lags)*99/100], cpu
}

// cpuTime is the CPU time this process has used so far (user + system): the CPU per
// delivered event does not depend on how busy the machine is.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFanout100Routers compares the HMAC push mesh and NATS JetStream delivering
// every event of one source to 100 routers (each with its own store), in the same run.
func BenchmarkFanout100Routers(b *testing.B) {
	push := pushFleet(b)
	pushRate, pushLag, pushCPU := measureFanout(b, push, "push")
	push.close()
	nf := natsFleet(b)
	natsRate, natsLag, natsCPU := measureFanout(b, nf, "nats")
	nf.close()
	fmt.Printf("BENCH %s %.2f %s\n", "fanout_100_routers_push_events_per_s", pushRate, "events/s")
	fmt.Printf("BENCH %s %.2f %s\n", "fanout_100_routers_nats_events_per_s", natsRate, "events/s")
	fmt.Printf("BENCH %s %.2f %s\n", "fanout_100_routers_push_lag_p99_ms", pushLag, "ms")
	fmt.Printf("BENCH %s %.2f %s\n", "fanout_100_routers_nats_lag_p99_ms", natsLag, "ms")
	// CPU of the whole process (source, 100 routers, their stores and, for NATS, the
	// embedded server) per delivered event during the burst.
	fmt.Printf("BENCH %s %.2f %s\n", "fanout_100_routers_push_cpu_us_per_delivery", float64(pushCPU)/1e3, "us")
	fmt.Printf("BENCH %s %.2f %s\n", "fanout_100_routers_nats_cpu_us_per_delivery", float64(natsCPU)/1e3, "us")
	b.ReportMetric(natsRate/pushRate, "nats/push")
}
