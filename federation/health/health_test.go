package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/health/healthtest"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

// lines renders findings one per line: check severity group peer resource.
func lines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s %s %s %s %s\n", f.Check, f.Severity, f.Group, f.Peer, f.Resource)
	}
	return b.String()
}

func TestRunFaultyGroup(t *testing.T) {
	s := healthtest.FaultyStore(t)
	fs := Run(context.Background(), Input{Config: healthtest.LoadConfig(t, healthtest.Config), Store: s, Now: healthtest.T})
	want := `failed-deliveries fail lab b EventPeer/b
pending-deliveries fail lab b EventPeer/b
stale-ttl warn lab b EventPeer/b
delivery-lag fail lab b EventPeer/b
expected-delivery-no-endpoint fail lab dc1 OverlayPeer/dc1
expected-delivery fail lab c EventPeer/c
subscription-runs fail lab  EventSubscription/claims
failed-deliveries ok quiet  EventGroup/quiet
pending-deliveries ok quiet  EventGroup/quiet
stale-ttl ok quiet  EventGroup/quiet
delivery-lag ok quiet  EventGroup/quiet
expected-delivery-no-endpoint ok quiet  EventGroup/quiet
expected-delivery ok quiet  EventGroup/quiet
subscription-runs ok quiet  EventGroup/quiet
`
	if got := lines(fs); got != want {
		t.Errorf("findings:\n%s\nwant:\n%s", got, want)
	}
	byCheck := map[string]Finding{}
	for _, f := range fs {
		if f.Group == "lab" {
			byCheck[f.Check] = f
		}
	}
	tests := []struct {
		name, check string
		counts      map[string]int64
		mentions    string
	}{
		{name: "failed names the last error", check: CheckFailedDeliveries, counts: map[string]int64{"failed": 1}, mentions: "connection refused"},
		{name: "pending counts the overdue row", check: CheckPendingDeliveries, counts: map[string]int64{"overdue": 1, "retrying": 1, "pending": 1, "overdueSeconds": 600}, mentions: "routerd-eventd"},
		{name: "stale copy expires within the window", check: CheckStaleTTL, counts: map[string]int64{"expiringSoon": 1, "expiredAtPeer": 0, "soonestExpirySeconds": 60}, mentions: "force-repush-stale-ttl"},
		{name: "lag is ten minutes", check: CheckDeliveryLag, counts: map[string]int64{"lagSeconds": 600, "backlog": 2, "lagFailSeconds": 180}, mentions: "http://127.0.0.1:1"},
		{name: "c misses e1..e3 but not e4 (t.two)", check: CheckExpectedDelivery, counts: map[string]int64{"missing": 3, "oldestSeconds": 600}, mentions: "e1, e2, e3"},
		{name: "dc1 teaches the EventPeer to add", check: CheckExpectedDeliveryNoEndpoint, mentions: "nodeName dc1-node"},
		{name: "subscription failed twice", check: CheckSubscriptionRuns, counts: map[string]int64{"failing": 2, "runs": 3}, mentions: "plugin p trapped"},
	}
	for _, tt := range tests {
		f := byCheck[tt.check]
		for k, v := range tt.counts {
			if f.Counts[k] != v {
				t.Errorf("%s: counts[%s] = %d, want %d (%v)", tt.name, k, f.Counts[k], v, f.Counts)
			}
		}
		if !strings.Contains(f.Summary+" "+f.Detail, tt.mentions) {
			t.Errorf("%s: %q / %q does not mention %q", tt.name, f.Summary, f.Detail, tt.mentions)
		}
	}
	if w := Worst(fs); w != SeverityFail {
		t.Errorf("Worst = %s, want fail", w)
	}
}

// TestCheckThresholds drives Check with hand-made states around each threshold.
func TestCheckThresholds(t *testing.T) {
	now := healthtest.T
	def := ThresholdsOf(nil)
	peer := func(mod func(p *PeerState)) PeerState {
		p := PeerState{Name: "b", Resource: "EventPeer/b", Endpoint: "http://127.0.0.1:1", Configured: true}
		mod(&p)
		return p
	}
	tests := []struct {
		name  string
		thr   Thresholds
		peer  PeerState
		subs  []SubscriptionState
		check string
		want  string
	}{
		{name: "lag under warn", thr: def, check: CheckDeliveryLag, want: SeverityOK,
			peer: peer(func(p *PeerState) {
				p.Backlog = store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-59 * time.Second)}
			})},
		{name: "lag at warn", thr: def, check: CheckDeliveryLag, want: SeverityWarn,
			peer: peer(func(p *PeerState) {
				p.Backlog = store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-60 * time.Second)}
			})},
		{name: "lag at fail", thr: def, check: CheckDeliveryLag, want: SeverityFail,
			peer: peer(func(p *PeerState) {
				p.Backlog = store.BacklogHealth{Retrying: 1, OldestCreated: now.Add(-180 * time.Second)}
			})},
		{name: "lag with SLO thresholds", thr: Thresholds{LagWarnSeconds: 5, LagFailSeconds: 10}, check: CheckDeliveryLag, want: SeverityWarn,
			peer: peer(func(p *PeerState) {
				p.Backlog = store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-7 * time.Second)}
			})},
		{name: "failed within maxFailedDeliveries warns", thr: Thresholds{MaxFailedDeliveries: 3}, check: CheckFailedDeliveries, want: SeverityWarn,
			peer: peer(func(p *PeerState) { p.Failed.Failed = 3 })},
		{name: "failed over maxFailedDeliveries fails", thr: def, check: CheckFailedDeliveries, want: SeverityFail,
			peer: peer(func(p *PeerState) { p.Failed.Failed = 1 })},
		{name: "stale far from expiry is ok", thr: def, check: CheckStaleTTL, want: SeverityOK,
			peer: peer(func(p *PeerState) { p.Stale = store.StaleTTLHealth{Stale: 4} })},
		{name: "stale expired at peer fails", thr: def, check: CheckStaleTTL, want: SeverityFail,
			peer: peer(func(p *PeerState) { p.Stale = store.StaleTTLHealth{Stale: 4, ExpiringSoon: 2, ExpiredAtPeer: 1} })},
		{name: "backlog not overdue is ok", thr: def, check: CheckPendingDeliveries, want: SeverityOK,
			peer: peer(func(p *PeerState) { p.Backlog = store.BacklogHealth{Pending: 5, OldestDue: now} })},
		{name: "overdue under fail warns", thr: def, check: CheckPendingDeliveries, want: SeverityWarn,
			peer: peer(func(p *PeerState) {
				p.Backlog = store.BacklogHealth{Pending: 5, Overdue: 1, OldestDue: now.Add(-90 * time.Second)}
			})},
		{name: "receive-only peer with nothing to push", thr: def, check: CheckExpectedDeliveryNoEndpoint, want: SeverityOK,
			peer: peer(func(p *PeerState) { p.Endpoint, p.Missing = "", &store.MissingDeliveries{} })},
		{name: "receive-only peer matching local events warns", thr: def, check: CheckExpectedDeliveryNoEndpoint, want: SeverityWarn,
			peer: peer(func(p *PeerState) { p.Endpoint, p.Missing = "", &store.MissingDeliveries{Missing: 2} })},
		{name: "declared peer without endpoint fails", thr: def, check: CheckExpectedDeliveryNoEndpoint, want: SeverityFail,
			peer: peer(func(p *PeerState) { p.Endpoint, p.PeersFrom = "", "EventPeer/b" })},
		{name: "optional declared peer missing from config is ok", thr: def, check: CheckExpectedDeliveryNoEndpoint, want: SeverityOK,
			peer: peer(func(p *PeerState) {
				p.Endpoint, p.Configured, p.PeersFrom, p.Optional, p.ResourceMissing = "", false, "EventPeer/b", true, true
			})},
		{name: "young missing rows warn", thr: def, check: CheckExpectedDelivery, want: SeverityWarn,
			peer: peer(func(p *PeerState) {
				p.Missing = &store.MissingDeliveries{Missing: 1, OldestStoredAt: now.Add(-time.Minute)}
			})},
		{name: "failing run within maxFailedRuns warns", thr: Thresholds{MaxFailedRuns: 2}, check: CheckSubscriptionRuns, want: SeverityWarn,
			subs: []SubscriptionState{{Name: "s", Runs: store.SubscriptionRunHealth{Failing: 2}}}},
		{name: "waiting runs over maxPendingRuns warn", thr: Thresholds{MaxPendingRuns: 1}, check: CheckSubscriptionRuns, want: SeverityWarn,
			subs: []SubscriptionState{{Name: "s", Runs: store.SubscriptionRunHealth{Waiting: 2}}}},
		{name: "waiting runs without maxPendingRuns are ok", thr: def, check: CheckSubscriptionRuns, want: SeverityOK,
			subs: []SubscriptionState{{Name: "s", Runs: store.SubscriptionRunHealth{Waiting: 50}}}},
	}
	for _, tt := range tests {
		st := State{Now: now, Groups: []GroupState{{Name: "g", Thresholds: tt.thr, Peers: []PeerState{tt.peer}, Subscriptions: tt.subs}}}
		var got []string
		for _, f := range Check(st) {
			if f.Check == tt.check {
				got = append(got, f.Severity)
			}
		}
		if fmt.Sprint(got) != "["+tt.want+"]" {
			t.Errorf("%s: %s severities %v, want [%s]", tt.name, tt.check, got, tt.want)
		}
	}
}

func TestBadStore(t *testing.T) {
	cfg := healthtest.LoadConfig(t, healthtest.Config)
	closed := healthtest.FaultyStore(t)
	closed.Close()
	garbage := filepath.Join(t.TempDir(), "routerd.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, garbageErr := OpenStore(garbage)
	missingDir := filepath.Join(t.TempDir(), "nope")
	_, missingErr := OpenStore(filepath.Join(missingDir, "routerd.db"))
	if _, err := os.Stat(missingDir); !os.IsNotExist(err) {
		t.Errorf("OpenStore created %s (stat: %v); doctor must not create a store", missingDir, err)
	}
	tests := []struct {
		name     string
		in       Input
		wantFail []string // checks with a fail finding naming the cause
		cause    string
	}{
		{name: "missing store", in: Input{Config: cfg, StoreErr: missingErr}, cause: "does not exist",
			wantFail: []string{CheckStore, CheckExpectedDeliveryNoEndpoint}},
		{name: "not a database", in: Input{Config: cfg, StoreErr: garbageErr}, cause: "not a database",
			wantFail: []string{CheckStore, CheckExpectedDeliveryNoEndpoint}},
		{name: "closed store", in: Input{Config: cfg, Store: closed}, cause: "store: closed",
			wantFail: []string{CheckFailedDeliveries, CheckPendingDeliveries, CheckStaleTTL, CheckDeliveryLag, CheckExpectedDeliveryNoEndpoint, CheckExpectedDelivery, CheckSubscriptionRuns}},
	}
	for _, tt := range tests {
		tt.in.Now = healthtest.T
		fs := Run(context.Background(), tt.in)
		failed := map[string]bool{}
		for _, f := range fs {
			if f.Severity == SeverityFail && f.Group != "quiet" {
				failed[f.Check] = true
			}
			if f.Check == CheckStore && !strings.Contains(f.Detail, tt.cause) {
				t.Errorf("%s: store finding %q does not name the cause %q", tt.name, f.Detail, tt.cause)
			}
		}
		for _, c := range tt.wantFail {
			if !failed[c] {
				t.Errorf("%s: no fail finding for %s in\n%s", tt.name, c, lines(fs))
			}
		}
		if len(failed) != len(tt.wantFail) {
			t.Errorf("%s: fail findings for %v, want exactly %v", tt.name, failed, tt.wantFail)
		}
	}
	if garbageErr == nil || missingErr == nil {
		t.Fatalf("OpenStore accepted a bad file: garbage %v, missing %v", garbageErr, missingErr)
	}
}

func TestQueryTimeout(t *testing.T) {
	s := healthtest.FaultyStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fs := Run(ctx, Input{Config: healthtest.LoadConfig(t, healthtest.Config), Store: s, Now: healthtest.T})
	var n int
	for _, f := range fs {
		if strings.Contains(f.Detail, context.Canceled.Error()) {
			n++
		}
	}
	if n == 0 {
		t.Errorf("a cancelled context produced no finding naming it:\n%s", lines(fs))
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("context not cancelled")
	}
}

// TestOpenStoreLocked: a daemon holding the write lock makes OpenStore fail after
// OpenBusyTimeout with the cause, instead of waiting for the lock indefinitely.
func TestOpenStoreLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routerd.db")
	daemon, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer daemon.Close()
	tx, err := daemon.DB().BeginTx(context.Background(), nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	s, err := OpenStore(path)
	if err == nil {
		s.Close()
		t.Fatal("OpenStore succeeded while another process held the write lock")
	}
	if !store.IsBusy(err) || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenStore: %v, want a busy error naming %s", err, path)
	}
}

// TestPeersFromOtherGroup: doctor reads spec.peersFrom as the transport does
// (transport.GroupPeers): an EventPeer of another group named there is a configured peer
// of this group, with its endpoint, so its deliveries are expected and checked.
func TestPeersFromOtherGroup(t *testing.T) {
	cfg := healthtest.LoadConfig(t, `
apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: lab}
spec:
  nodeName: a
  auth: {secretFile: /etc/routerd/lab.key}
  peersFrom:
    - resource: EventPeer/x
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: corp}
spec: {nodeName: a, auth: {secretFile: /etc/routerd/corp.key}}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: x}
spec: {groupRef: corp, nodeName: x, endpoint: "http://127.0.0.1:3"}
`)
	g := configGroup(cfg, cfg.Get("EventGroup", "lab").(*schemas.EventGroup))
	if len(g.Peers) != 1 {
		t.Fatalf("peers %+v, want x", g.Peers)
	}
	p := g.Peers[0]
	if p.Name != "x" || !p.Configured || p.Endpoint != "http://127.0.0.1:3" || p.NodeName != "x" || p.PeersFrom != "EventPeer/x" {
		t.Fatalf("peer %+v, want x configured with its endpoint, declared by peersFrom", p)
	}
}
