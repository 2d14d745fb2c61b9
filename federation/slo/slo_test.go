package slo

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

// Three groups on node a, one peer each: east (SLO, faulty), west (SLO, healthy) and
// north (no SLO, as faulty as east).
func config(t *testing.T) *schemas.Config {
	t.Helper()
	var b strings.Builder
	for i, g := range []string{"east", "west", "north"} {
		fmt.Fprintf(&b, `---
apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: %[1]s}
spec: {nodeName: a, auth: {secretFile: /etc/routerd/%[1]s.key}}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: %[1]s-peer}
spec: {groupRef: %[1]s, nodeName: b, endpoint: "http://127.0.0.1:%[2]d"}
`, g, 19000+i)
	}
	b.WriteString(`---
apiVersion: federation.routerd.net/v1alpha1
kind: FederationSLO
metadata: {name: east-slo}
spec:
  groupRef: east
  delivery: {lagWarnSeconds: 30, lagFailSeconds: 120, maxFailedDeliveries: 1}
---
apiVersion: federation.routerd.net/v1alpha1
kind: FederationSLO
metadata: {name: west-slo}
spec: {groupRef: west}
`)
	cfg, err := schemas.Decode("slo.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// storeWithFaults gives east and north three failed rows, one row waiting for 10 minutes
// and one stale copy expired at the peer; west has one delivered event.
func storeWithFaults(t *testing.T) *store.Store {
	t.Helper()
	t0 := now.Add(-10 * time.Minute)
	clock := t0
	s, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for _, g := range []string{"east", "west", "north"} {
		var evs []event.Event
		for i := range 5 {
			evs = append(evs, event.Event{ID: fmt.Sprintf("%s-%d", g, i), Group: g, SourceNode: "a", Type: "t", ExpiresAt: now.Add(time.Hour)})
		}
		if g != "west" {
			evs[3].ExpiresAt = now.Add(-time.Second)
		}
		if _, err := s.InsertEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		peer := g + "-peer"
		if _, err := s.EnqueueDeliveries(ctx, store.EnqueueRequest{Group: g, Peer: peer, SourceNode: "a", Now: t0}); err != nil {
			t.Fatal(err)
		}
		var outcomes []store.DeliveryOutcome
		if g == "west" {
			for _, e := range evs {
				outcomes = append(outcomes, store.DeliveryOutcome{EventID: e.ID, State: store.DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: e.ExpiresAt})
			}
		} else {
			for _, e := range evs[:3] {
				outcomes = append(outcomes, store.DeliveryOutcome{EventID: e.ID, State: store.DeliveryFailed, Attempts: 5, LastError: "refused"})
			}
			// The peer got evs[3] with an expiry that has passed since; ours was extended.
			outcomes = append(outcomes, store.DeliveryOutcome{EventID: evs[3].ID, State: store.DeliveryDelivered, DeliveredAt: t0, DeliveredExpiresAt: evs[3].ExpiresAt})
		}
		if err := s.RecordDeliveries(ctx, g, peer, outcomes); err != nil {
			t.Fatal(err)
		}
		// Extended by a writer that does not requeue the delivered row.
		if _, err := s.DB().ExecContext(ctx, `UPDATE events SET expires_at = ? WHERE id = ?`, now.Add(time.Hour).UnixNano(), evs[3].ID); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestEvaluateIsolatesGroups(t *testing.T) {
	s := storeWithFaults(t)
	st := health.Gather(context.Background(), health.Input{Config: config(t), Store: s, Now: now})
	r, err := Evaluate(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"federation":{"slo":{"groups":[` +
		`{"group":"east","defined":true,"thresholds":{"lagWarnSeconds":30,"lagFailSeconds":120,"expiresSoonSeconds":120,"maxFailedDeliveries":1,"peerFreshnessSeconds":300,"maxPendingRuns":0,"maxFailedRuns":0},"violations":[` +
		`{"check":"delivery-lag","threshold":120,"actual":600,"severity":"fail"},` +
		`{"check":"failed-deliveries","threshold":1,"actual":3,"severity":"fail"},` +
		`{"check":"stale-ttl","threshold":120,"actual":-1,"severity":"fail"},` +
		`{"check":"peer-freshness","threshold":300,"actual":600,"severity":"fail"}]},` +
		`{"group":"north","defined":false,"violations":[]},` +
		`{"group":"west","defined":true,"thresholds":{"lagWarnSeconds":60,"lagFailSeconds":180,"expiresSoonSeconds":120,"maxFailedDeliveries":0,"peerFreshnessSeconds":300,"maxPendingRuns":0,"maxFailedRuns":0},"violations":[]}]}}}`
	if string(got) != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	if v := r.Violated(); v != health.SeverityFail {
		t.Errorf("Violated = %s, want fail", v)
	}
}

func TestViolationThresholds(t *testing.T) {
	thr := health.ThresholdsOf(nil)
	thr.MaxPendingRuns = 2
	tests := []struct {
		name  string
		peer  health.PeerState
		subs  []health.SubscriptionState
		want  string
		thres health.Thresholds
	}{
		{name: "healthy", want: "[]"},
		{name: "lag under warn", want: "[]",
			peer: health.PeerState{Backlog: store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-59 * time.Second), LastSuccess: now}}},
		{name: "lag at warn", want: "[{delivery-lag 60 60 warn}]",
			peer: health.PeerState{Backlog: store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-60 * time.Second), LastSuccess: now}}},
		{name: "lag at fail, never delivered", want: "[{delivery-lag 180 200.5 fail}]",
			peer: health.PeerState{Backlog: store.BacklogHealth{Retrying: 1, OldestCreated: now.Add(-200500 * time.Millisecond)}}},
		{name: "stale copy expiring soon warns", want: "[{stale-ttl 120 30 warn}]",
			peer: health.PeerState{Stale: store.StaleTTLHealth{Stale: 1, ExpiringSoon: 1, SoonestPeerExpiry: now.Add(30 * time.Second)}}},
		{name: "stale copy not yet in window", want: "[]",
			peer: health.PeerState{Stale: store.StaleTTLHealth{Stale: 1, SoonestPeerExpiry: now.Add(time.Hour)}}},
		{name: "quiet peer with a fresh backlog is fresh", want: "[]",
			peer: health.PeerState{Backlog: store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-time.Second), LastSuccess: now.Add(-time.Hour)}}},
		{name: "backlog older than peerFreshnessSeconds", want: "[{delivery-lag 180 400 fail} {peer-freshness 300 400 fail}]",
			peer: health.PeerState{Backlog: store.BacklogHealth{Pending: 1, OldestCreated: now.Add(-400 * time.Second), LastSuccess: now.Add(-time.Hour)}}},
		{name: "failed runs and waiting runs", want: "[{subscription-runs 0 1 fail} {subscription-pending-runs 2 3 warn}]",
			subs: []health.SubscriptionState{{Name: "a", Runs: store.SubscriptionRunHealth{Failing: 1, Waiting: 1}}, {Name: "b", Runs: store.SubscriptionRunHealth{Waiting: 2}}}},
	}
	for _, tt := range tests {
		st := health.State{Now: now, Groups: []health.GroupState{{Name: "g", SLO: "g-slo", Thresholds: thr,
			Peers: []health.PeerState{tt.peer}, Subscriptions: tt.subs}}}
		r, err := Evaluate(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.Federation.SLO.Groups[0].Violations); got != tt.want {
			t.Errorf("%s: violations %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestEvaluateUnreadable(t *testing.T) {
	s := storeWithFaults(t)
	s.Close()
	st := health.Gather(context.Background(), health.Input{Config: config(t), Store: s, Now: now})
	r, err := Evaluate(st)
	if err == nil || !strings.Contains(err.Error(), "group east: delivery-lag not evaluated") || strings.Contains(err.Error(), "group north") {
		t.Errorf("error = %v, want the SLO groups' unread checks named (and not north, which has no SLO)", err)
	}
	if len(r.Federation.SLO.Groups) != 3 {
		t.Errorf("report has %d groups, want all 3 despite the error", len(r.Federation.SLO.Groups))
	}
	st = health.Gather(context.Background(), health.Input{Config: config(t), StoreErr: fmt.Errorf("store file x does not exist"), Now: now})
	if _, err := Evaluate(st); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing store: error %v, want the cause", err)
	}
}
