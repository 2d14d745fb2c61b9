package jetstream

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
)

var (
	groupKey  = []byte("group-secret-0123456789abcdef")
	wrongKey  = []byte("not-the-secret-0123456789abcdef")
	testGroup = "lab"
)

// startServer runs an embedded server on 127.0.0.1 (port 0: a free one) over dir.
func startServer(t testing.TB, dir string, port int) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedOptions{Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func openStore(t testing.TB, dir, name string) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(dir, name+".db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// jsConfig is the JetStream part of a group config against url.
func jsConfig(url string) *transport.JetStreamConfig {
	return &transport.JetStreamConfig{
		Servers: []string{url}, Stream: "ROUTERD_LAB", SubjectPrefix: "routerd", MaxAge: time.Hour,
		SignKey: transport.Key{Secret: groupKey}, GroupKeys: []transport.Key{{Secret: groupKey, AnyNode: true}},
	}
}

// router is one router of a test: its store, daemon and broker.
type router struct {
	name string
	st   *store.Store
	d    *transport.Daemon
	b    *Broker
}

// startRouter runs node name's transport over st; mod may change the config.
func startRouter(t testing.TB, name string, st *store.Store, js *transport.JetStreamConfig, mod func(*transport.GroupConfig)) *router {
	t.Helper()
	return startRouterOpts(t, name, st, js, mod, nil)
}

// startRouterOpts is startRouter whose broker options bmod may change too.
func startRouterOpts(t testing.TB, name string, st *store.Store, js *transport.JetStreamConfig, mod func(*transport.GroupConfig), bmod func(*Options)) *router {
	t.Helper()
	cfg := transport.GroupConfig{
		Group: testGroup, LocalNode: name, JetStream: js,
		ReceiveKeys: []transport.Key{{Secret: groupKey}},
		RetryBase:   50 * time.Millisecond, RetryMax: 300 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	bopts := Options{Group: testGroup, LocalNode: name, Config: *cfg.JetStream, ReconnectWait: 50 * time.Millisecond, DefaultStoreDir: t.TempDir()}
	if bmod != nil {
		bmod(&bopts)
	}
	b, err := NewBroker(bopts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := transport.NewDaemon(cfg, st, transport.DaemonOptions{Broker: b, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &router{name: name, st: st, d: d, b: b}
	t.Cleanup(func() { _ = d.Close() })
	return r
}

// jsClient is a plain JetStream client of the server at url (closed when the test ends),
// for what a test does behind the routers' backs: read the stream, publish forgeries.
func jsClient(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

var idSeq atomic.Int64

// newEvents returns n valid events of the test group from src.
func newEvents(src string, n int) []event.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	out := make([]event.Event, n)
	for i := range out {
		k := idSeq.Add(1)
		out[i] = event.Event{
			ID: fmt.Sprintf("%s-%08d", src, k), Group: testGroup, SourceNode: src,
			Type: "routerd.client.ipv4.observed", Subject: fmt.Sprintf("10.0.%d.%d", k/250%250, k%250),
			Payload:    map[string]string{"address": "10.0.0.1"},
			ObservedAt: now, ExpiresAt: now.Add(30 * time.Minute),
		}
	}
	return out
}

func insert(t testing.TB, st *store.Store, evs []event.Event) {
	t.Helper()
	if _, err := st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// has reports whether st holds every event of evs.
func has(t testing.TB, st *store.Store, evs []event.Event) bool {
	t.Helper()
	for _, e := range evs {
		if _, err := st.GetEvent(context.Background(), e.ID); err != nil {
			return false
		}
	}
	return true
}

func count(t testing.TB, st *store.Store, source string) int64 {
	t.Helper()
	n, err := st.CountEvents(context.Background(), store.EventFilter{Group: testGroup, SourceNode: source})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// deliveryStates counts st's delivery rows of peer by state.
func deliveryStates(t testing.TB, st *store.Store, peer string) map[string]int {
	t.Helper()
	rows, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Group: testGroup, Peer: peer, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, r := range rows {
		m[r.State]++
	}
	return m
}
