package jetstream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
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
	// Lag is measured on a paced load after the burst, for fanoutLagSeconds; for NATS
	// also at fanoutLag100 events/s (beyond what the push mesh carries).
	fanoutLagSeconds = 5
	fanoutLag100     = 100
	fanoutLimit      = 300 * time.Second
)

// fanoutFleet is one source router and fanoutRouters receiving routers, each with its
// own SQLite store.
type fanoutFleet struct {
	src    *store.Store
	stores []*store.Store
	rx     []*transport.Receiver
	close  func()
	// mesh: every router is a source (src is nil), as in a full mesh.
	mesh bool
	// stored is how many events the receiving routers have stored so far, in total.
	stored int64
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
		name := routerName(i)
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
		name := routerName(i)
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
	d, sb := startNATSDaemon(b, "src", src, js)
	waitReady(b, append(brokers, sb)...)
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

func routerName(i int) string { return fmt.Sprintf("r%03d", i) }

// pipeListener is an in-memory net.Listener: a full mesh of fanoutRouters holds
// fanoutRouters·(fanoutRouters−1) connections with both ends in this process, more
// than the open-file limit allows over TCP. The HTTP client and server run unchanged
// over net.Pipe; only the kernel's loopback work is left out, which favours push.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pushMesh: every router pushes its own events to the other 99 over HTTP, each with its
// own receiver, sender and store: the full mesh of the hmac-push transport (the sender
// and receiver a transport.Daemon runs, its HTTP client dialling the in-memory
// listeners: http://rNNN.mesh/).
func pushMesh(b *testing.B) *fanoutFleet {
	dir := b.TempDir()
	f := &fanoutFleet{stores: openFleetStores(b, dir), mesh: true}
	listeners := map[string]*pipeListener{}
	var servers []*http.Server
	anyNode := []transport.Key{{Secret: groupKey, AnyNode: true}}
	for i, st := range f.stores {
		rx, err := transport.NewReceiver(transport.ReceiverOptions{Group: testGroup, LocalNode: routerName(i), Store: st, Keys: anyNode})
		if err != nil {
			b.Fatal(err)
		}
		l := newPipeListener()
		listeners[routerName(i)+".mesh:80"] = l
		srv := &http.Server{Handler: rx, ReadHeaderTimeout: transport.DefaultReadTimeout}
		go func() { _ = srv.Serve(l) }()
		servers = append(servers, srv)
		f.rx = append(f.rx, rx)
	}
	var senders []*transport.Sender
	for i, st := range f.stores {
		var peers []transport.Peer
		for j := range f.stores {
			if j != i {
				peers = append(peers, transport.Peer{Name: routerName(j), NodeName: routerName(j),
					Endpoint: "http://" + routerName(j) + ".mesh", Key: transport.Key{Secret: groupKey}})
			}
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			l, ok := listeners[addr]
			if !ok {
				return nil, fmt.Errorf("no router at %s", addr)
			}
			return l.dial(ctx)
		}
		s, err := transport.NewSender(transport.SenderOptions{Group: testGroup, LocalNode: routerName(i), Peers: peers,
			Outbox: st, HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		senders = append(senders, s)
	}
	f.close = func() {
		for _, s := range senders {
			_ = s.Close()
		}
		for _, s := range servers {
			_ = s.Close()
		}
		closeAll(f.stores)
	}
	return f
}

// startNATSDaemon runs node's transport daemon over st with a broker on js.
func startNATSDaemon(b *testing.B, node string, st *store.Store, js *transport.JetStreamConfig) (*transport.Daemon, *Broker) {
	br, err := NewBroker(Options{Group: testGroup, LocalNode: node, Config: *js})
	if err != nil {
		b.Fatal(err)
	}
	d, err := transport.NewDaemon(transport.GroupConfig{Group: testGroup, LocalNode: node, JetStream: js,
		ReceiveKeys: []transport.Key{{Secret: groupKey}}}, st, transport.DaemonOptions{Broker: br})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return d, br
}

// waitReady waits until every broker's consumer receives: the benchmark measures
// delivery, not consumer creation.
func waitReady(b *testing.B, brokers ...*Broker) {
	for _, br := range brokers {
		select {
		case <-br.Ready():
		case <-time.After(fanoutLimit):
			b.Fatal("consumers not ready")
		}
	}
}

// natsMesh: every router publishes its own events into the group's stream on an embedded
// server and reads everyone else's through its durable consumer.
func natsMesh(b *testing.B) *fanoutFleet {
	dir := b.TempDir()
	srv := startServer(b, filepath.Join(dir, "nats"), 0)
	js := jsConfig(srv.URL())
	f := &fanoutFleet{stores: openFleetStores(b, dir), mesh: true}
	var daemons []*transport.Daemon
	var brokers []*Broker
	for i, st := range f.stores {
		d, br := startNATSDaemon(b, routerName(i), st, js)
		daemons = append(daemons, d)
		brokers = append(brokers, br)
		f.rx = append(f.rx, d.BrokerReceiver())
	}
	waitReady(b, brokers...)
	f.close = func() {
		for _, d := range daemons {
			_ = d.Close()
		}
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

func fanoutEvents(prefix, source string, from, n int, at time.Time) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = event.Event{
			ID: fmt.Sprintf("%s-%07d", prefix, k), Group: testGroup, SourceNode: source,
			Type: "routerd.client.ipv4.observed", Subject: fmt.Sprintf("10.%d.%d.%d", k>>16&255, k>>8&255, k&255),
			Payload:    map[string]string{"address": "10.0.0.1", "interface": "eth1"},
			ObservedAt: at, ExpiresAt: at.Add(30 * time.Minute),
		}
	}
	return evs
}

// insert creates events from..from+n-1 at their sources: all at the source router in
// one transaction, or, in a mesh, each at router k mod fanoutRouters on its own.
func (f *fanoutFleet) insert(b *testing.B, prefix string, from, n int) {
	ctx := context.Background()
	if !f.mesh {
		if _, err := f.src.InsertEvents(ctx, fanoutEvents(prefix, "src", from, n, time.Now())); err != nil {
			b.Fatal(err)
		}
		return
	}
	for k := from; k < from+n; k++ {
		r := k % fanoutRouters
		if _, err := f.stores[r].InsertEvents(ctx, fanoutEvents(prefix, routerName(r), k, 1, time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}

// receivers is how many routers receive each event (in a mesh, all but its source).
func (f *fanoutFleet) receivers() int64 {
	if f.mesh {
		return fanoutRouters - 1
	}
	return fanoutRouters
}

// measureBurst inserts fanoutBurst events at the sources at once and returns how many
// per second the whole fleet stored (every receiving router all of them), and the CPU
// per delivered event.
func measureBurst(b *testing.B, f *fanoutFleet, what string) (rate float64, cpu time.Duration) {
	cpu0 := cpuTime()
	start := time.Now()
	const chunk = 250
	for i := 0; i < fanoutBurst; i += chunk {
		f.insert(b, "burst", i, min(chunk, fanoutBurst-i))
	}
	f.waitAccepted(b, fanoutBurst*f.receivers(), what+" burst")
	rate = fanoutBurst / time.Since(start).Seconds()
	f.stored = fanoutBurst * f.receivers()
	return rate, (cpuTime() - cpu0) / time.Duration(fanoutBurst*f.receivers())
}

// measureLag inserts events at perSecond for fanoutLagSeconds after the burst and
// returns the lag p99 over every receiving router and event: stored at the router minus
// created at the source, both this process's clock.
func measureLag(b *testing.B, f *fanoutFleet, what, prefix string, perSecond float64) float64 {
	ctx := context.Background()
	n := max(int(perSecond*fanoutLagSeconds), 1)
	every := time.Duration(float64(time.Second) / perSecond)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		f.insert(b, prefix, i, 1)
	}
	f.waitAccepted(b, f.stored+int64(n)*f.receivers(), what+" paced")
	f.stored += int64(n) * f.receivers()
	lags := make([]float64, 0, n*fanoutRouters)
	for i, st := range f.stores {
		rows, err := st.ReadDB().QueryContext(ctx, `SELECT received_at - observed_at FROM events WHERE id LIKE ? AND source_node <> ?`, prefix+"-%", routerName(i))
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
	if os.Getenv("FANOUT_DEBUG") != "" {
		fmt.Println(what, prefix, perSecond, "events/s: lag p50", lags[len(lags)/2], "p90", lags[len(lags)*9/10], "p99", lags[len(lags)*99/100], "max", lags[len(lags)-1])
	}
	return lags[len(lags)*99/100]
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
// every event to 100 routers (each with its own store, in one process), in the same run.
//
// The fanout_100_routers_* rows are the fleet the transport is for: a full mesh where
// every router originates events (each event inserted at its own source, round robin),
// so push makes N·(N−1) deliveries and each router tracks N−1 peers. The
// fanout_100_routers_1src_* rows are one source and 100 receivers.
//
// events_per_s is a burst of fanoutBurst events until every router stored all of them.
// lag_p99_ms is measured after it on a paced load both transports carry: half the push
// burst rate of the scenario, the same load for both (a load past a transport's
// capacity measures only how fast its queue grows).
func BenchmarkFanout100Routers(b *testing.B) {
	type scenario struct {
		name       string
		push, nats func(*testing.B) *fanoutFleet
	}
	scenarios := []scenario{
		{"fanout_100_routers", pushMesh, natsMesh},
		{"fanout_100_routers_1src", pushFleet, natsFleet},
	}
	if only := os.Getenv("FANOUT_ONLY"); only != "" {
		scenarios = slices.DeleteFunc(scenarios, func(s scenario) bool { return s.name != only })
	}
	for _, sc := range scenarios {
		var (
			rate, lag [2]float64
			cpu       [2]time.Duration
			paced     float64
			lag100    float64
		)
		for i, build := range []func(*testing.B) *fanoutFleet{sc.push, sc.nats} {
			what := sc.name + []string{"_push", "_nats"}[i]
			f := build(b)
			rate[i], cpu[i] = measureBurst(b, f, what)
			if i == 0 {
				paced = rate[0] / 2
			}
			lag[i] = measureLag(b, f, what, "lag", paced)
			if i == 1 {
				lag100 = measureLag(b, f, what, "lag100", fanoutLag100)
			}
			f.close()
			runtime.GC()
		}
		for i, t := range []string{"push", "nats"} {
			fmt.Printf("BENCH %s_%s_events_per_s %.2f events/s\n", sc.name, t, rate[i])
		}
		for i, t := range []string{"push", "nats"} {
			fmt.Printf("BENCH %s_%s_lag_p99_ms %.2f ms\n", sc.name, t, lag[i])
		}
		// CPU of the whole process (sources, 100 routers, their stores and, for NATS,
		// the embedded server) per delivered event during the burst.
		for i, t := range []string{"push", "nats"} {
			fmt.Printf("BENCH %s_%s_cpu_us_per_delivery %.2f us\n", sc.name, t, float64(cpu[i])/1e3)
		}
		fmt.Printf("BENCH %s_paced_events_per_s %.2f events/s\n", sc.name, paced)
		fmt.Printf("BENCH %s_nats_lag_p99_at_100_events_per_s_ms %.2f ms\n", sc.name, lag100)
		fmt.Printf("BENCH %s_nats_vs_push_x %.2f x\n", sc.name, rate[1]/rate[0])
	}
}
