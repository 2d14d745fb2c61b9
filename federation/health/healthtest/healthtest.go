// Package healthtest builds the federation fixtures the health, slo and remediation
// tests share: a config with two groups and a real store file with one fault of every
// kind in one group.
package healthtest

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

// Config is router a in two groups: "lab" with pushing peers b (everything) and c
// (t.one only), a receive-only peer r, an OverlayPeer dc1 declared through peersFrom
// with no EventPeer, and a subscription; "quiet" with one healthy peer and an SLO.
const Config = `
apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: lab}
spec:
  nodeName: a
  auth: {secretFile: /etc/routerd/lab.key}
  peersFrom:
    - resource: OverlayPeer/dc1
    - resource: EventPeer/gone
      optional: true
    - resource: EventPeer/b
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: b}
spec: {groupRef: lab, nodeName: b, endpoint: "http://127.0.0.1:1"}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: c}
spec: {groupRef: lab, nodeName: c, endpoint: "http://127.0.0.1:2", types: [t.one]}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: r}
spec: {groupRef: lab, nodeName: r, types: [t.none]}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: OverlayPeer
metadata: {name: dc1}
spec:
  role: onprem
  underlay: {type: wireguard, interface: wg0}
  remote: {nodeID: dc1-node, address: 10.255.0.2}
---
apiVersion: plugin.routerd.net/v1alpha1
kind: Plugin
metadata: {name: p}
spec: {module: p.wasm, hooks: [on_events]}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventSubscription
metadata: {name: claims}
spec:
  groupRef: lab
  match: {types: [t.one]}
  trigger: {pluginRef: p}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: quiet}
spec:
  nodeName: a
  auth: {secretFile: /etc/routerd/quiet.key}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: q}
spec: {groupRef: quiet, nodeName: q, endpoint: "http://127.0.0.1:3"}
---
apiVersion: federation.routerd.net/v1alpha1
kind: FederationSLO
metadata: {name: quiet-slo}
spec:
  groupRef: quiet
  delivery: {lagWarnSeconds: 30, lagFailSeconds: 90}
`

// LoadConfig decodes doc (YAML resources) as a config.
func LoadConfig(t testing.TB, doc string) *schemas.Config {
	t.Helper()
	cfg, err := schemas.Decode("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// T is "now" of the checks; the faulty state is built ten minutes before it.
var T = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// FaultyStore builds the store behind Config: in "lab", peer b has one failed, one
// stale delivered (expiring within 2m at T), one retrying and one overdue pending row,
// all queued ten minutes before T; peer c has no rows at all; subscription claims failed
// twice. "quiet" has one delivered event.
func FaultyStore(t testing.TB) *store.Store {
	t.Helper()
	clk := &clock{t: T.Add(-10 * time.Minute)}
	s, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	t0 := clk.now()
	var evs []event.Event
	for _, spec := range []string{"e1 t.one", "e2 t.one", "e3 t.one", "e4 t.two"} {
		id, typ, _ := strings.Cut(spec, " ")
		evs = append(evs, event.Event{ID: id, Group: "lab", SourceNode: "a", Type: typ, ExpiresAt: T.Add(time.Minute)})
	}
	evs = append(evs, event.Event{ID: "q1", Group: "quiet", SourceNode: "a", Type: "t.one", ExpiresAt: T.Add(time.Hour)})
	if _, err := s.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueDeliveries(ctx, store.EnqueueRequest{Group: "lab", Peer: "b", SourceNode: "a", Now: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, "lab", "b", []store.DeliveryOutcome{
		{EventID: "e1", State: store.DeliveryFailed, Attempts: 9, LastError: "connection refused"},
		{EventID: "e2", State: store.DeliveryDelivered, Attempts: 1, DeliveredAt: t0, DeliveredExpiresAt: T.Add(time.Minute)},
		{EventID: "e3", State: store.DeliveryRetrying, Attempts: 3, LastError: "connection refused", NextAttemptAt: T.Add(5 * time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	// e2 is extended by a writer that does not requeue (the peer keeps the old expiry).
	if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = ? WHERE id = 'e2'`, T.Add(time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueDeliveries(ctx, store.EnqueueRequest{Group: "quiet", Peer: "q", SourceNode: "a", Now: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, "quiet", "q", []store.DeliveryOutcome{
		{EventID: "q1", State: store.DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: T.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	for i, state := range []string{"succeeded", "failed", "failed"} {
		n := t0.Add(time.Duration(i) * time.Second).UnixNano()
		if _, err := s.DB().ExecContext(ctx, `INSERT INTO subscription_runs (subscription, state, error, created_at, finished_at)
			VALUES ('claims', ?, ?, ?, ?)`, state, map[bool]string{true: "plugin p trapped"}[state == "failed"], n, n); err != nil {
			t.Fatal(err)
		}
	}
	clk.set(T)
	return s
}
