package dynamic

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

func claimJSON(name, address string, extra string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim",`+
		`"metadata":{"name":%q},"spec":{"domainRef":"lab","address":%q,"ownerSide":"onprem",`+
		`"delivery":{"peerRef":"onprem-main","mode":"route","tunnelInterface":"wg-hybrid"}%s}}`, name, address, extra))
}

type fixture struct {
	t       *testing.T
	st      *store.Store
	mgr     *Manager
	clk     *clock.Fake
	changes atomic.Int32
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, st: st, clk: clock.NewFake(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))}
	f.mgr, err = NewManager(Options{Repo: NewSQLRepo(st), Clock: f.clk, OnChange: func() { f.changes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	f.mgr.SetConfig(cfg)
	return f
}

func batch(events ...subscribe.Record) subscribe.Batch {
	return subscribe.Batch{ID: "claims/1-2", Subscription: "claims", Group: "lab", Plugin: "event-to-remote-claim", Events: events}
}

func ev(id, subject string) subscribe.Record {
	return subscribe.Record{ID: id, Group: "lab", Type: "routerd.client.ipv4.observed", SourceNode: "router-a", Subject: subject,
		Payload: map[string]string{"address": subject}}
}

func (f *fixture) audit(outcome string) []store.AuditEntry {
	f.t.Helper()
	all, err := f.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.AuditEntry
	for _, a := range all {
		if a.Outcome == outcome {
			out = append(out, a)
		}
	}
	return out
}

var allowClaims = policy("claims", schemas.OverrideAllow{Source: "EventSubscription/*",
	Operations: []string{OpCreate, OpUpdate, OpDelete}, Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim"}}})

func TestHandleResultStoresStampedParts(t *testing.T) {
	f := newFixture(t, Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims},
		Subscriptions: map[string]Subscription{"claims": {Group: "lab", AllowedKinds: []string{"RemoteAddressClaim"}}}})
	ctx := context.Background()
	b := batch(ev("ev1", "10.88.60.9"), ev("ev2", "10.88.60.10"))
	res := subscribe.Result{TTL: 10 * time.Minute, Resources: []json.RawMessage{
		claimJSON("onprem-10-88-60-10", "10.88.60.10", ""), claimJSON("onprem-10-88-60-9", "10.88.60.9", "")}}
	if err := f.mgr.HandleResult(ctx, b, res); err != nil {
		t.Fatal(err)
	}
	parts, err := f.mgr.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || f.changes.Load() != 1 {
		t.Fatalf("%d parts, %d change notifications; want 2, 1", len(parts), f.changes.Load())
	}
	p := parts[1] // sorted by name: onprem-10-88-60-9 after onprem-10-88-60-10
	if p.Name != "onprem-10-88-60-9" || p.Source != "EventSubscription/claims" || p.Generation != 1 ||
		!p.ExpiresAt.Equal(f.clk.Now().Add(10*time.Minute)) || strings.Join(p.EventIDs, ",") != "ev1" {
		t.Fatalf("part %+v", p)
	}
	want := map[string]string{AnnotationSource: "EventSubscription/claims", AnnotationEventGroup: "lab",
		AnnotationEventID: "ev1", AnnotationEventSubject: "10.88.60.9"}
	for k, v := range want {
		if got := p.Resource().GetMeta().Annotations[k]; got != v {
			t.Fatalf("resource annotation %s = %q, want %q", k, got, v)
		}
		if got := p.Document.Metadata.Annotations[k]; got != v {
			t.Fatalf("part annotation %s = %q, want %q", k, got, v)
		}
	}
	if p.Document.Spec.Source != p.Source || p.Document.Metadata.Name != "claims.remoteaddressclaim.onprem-10-88-60-9" ||
		p.Document.Spec.TTL.Duration != 10*time.Minute {
		t.Fatalf("document %+v", p.Document)
	}
	if got := len(f.audit("applied")); got != 2 {
		t.Fatalf("%d applied audit entries, want 2", got)
	}

	// The same claims again: generations move, expiry is extended, nothing changed for
	// the dataplane.
	f.clk.Advance(time.Minute)
	if err := f.mgr.HandleResult(ctx, b, res); err != nil {
		t.Fatal(err)
	}
	parts, _ = f.mgr.List(ctx)
	if parts[1].Generation != 2 || !parts[1].ExpiresAt.Equal(f.clk.Now().Add(10*time.Minute)) || !parts[1].CreatedAt.Before(parts[1].UpdatedAt) {
		t.Fatalf("replaced part %+v", parts[1])
	}
	if f.changes.Load() != 1 {
		t.Fatalf("an unchanged claim notified a change")
	}
	// A changed spec is a change.
	res.Resources = []json.RawMessage{claimJSON("onprem-10-88-60-9", "10.88.60.9", `,"capture":{"type":"proxy-arp","interface":"eth0"}`)}
	if err := f.mgr.HandleResult(ctx, b, res); err != nil {
		t.Fatal(err)
	}
	if f.changes.Load() != 2 {
		t.Fatalf("a changed claim did not notify")
	}
	// The manager's in-memory parts match what is in the database.
	fromDB, err := NewSQLRepo(f.st).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := f.mgr.List(ctx)
	if len(fromDB) != len(cached) {
		t.Fatalf("database %d parts, manager %d", len(fromDB), len(cached))
	}
	for i := range fromDB {
		if fromDB[i].Key() != cached[i].Key() || fromDB[i].Generation != cached[i].Generation || !fromDB[i].ExpiresAt.Equal(cached[i].ExpiresAt) {
			t.Fatalf("part %d: database %+v, manager %+v", i, fromDB[i], cached[i])
		}
	}
}

func TestHandleResultRejects(t *testing.T) {
	static := map[string]bool{"RemoteAddressClaim/static-claim": true}
	tests := []struct {
		name     string
		cfg      Config
		resource json.RawMessage
		reason   string
	}{
		{name: "no policy", cfg: Config{}, resource: claimJSON("a", "10.0.0.1", ""), reason: ReasonPolicyDenied},
		{name: "kind not allowed", cfg: Config{Policies: []*schemas.DynamicOverridePolicy{policy("any",
			schemas.OverrideAllow{Source: "*", Targets: []schemas.ResourceRef{{Kind: "*"}}})}},
			resource: json.RawMessage(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"MSSClamp","metadata":{"name":"m"},"spec":{"interfaces":["wg0"]}}`),
			reason:   ReasonKindNotAllowed},
		{name: "unknown field", cfg: Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims}},
			resource: claimJSON("a", "10.0.0.1", `,"bogus":1`), reason: ReasonInvalid},
		{name: "not a kind", cfg: Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims}},
			resource: json.RawMessage(`{"apiVersion":"x/v1","kind":"Nope","metadata":{"name":"a"}}`), reason: ReasonInvalid},
		{name: "field outside the mask", cfg: Config{Policies: []*schemas.DynamicOverridePolicy{policy("narrow",
			schemas.OverrideAllow{Source: "*", Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim"}}, Fields: []string{"spec.address", "spec.domainRef", "spec.ownerSide"}})}},
			resource: claimJSON("a", "10.0.0.1", ""), reason: ReasonPolicyDenied},
		{name: "static resource wins", cfg: Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims}, Static: static},
			resource: claimJSON("static-claim", "10.0.0.1", ""), reason: ReasonStaticConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			ctx := context.Background()
			err := f.mgr.HandleResult(ctx, batch(ev("ev1", "10.0.0.1")), subscribe.Result{Resources: []json.RawMessage{tt.resource}})
			if err != nil {
				t.Fatalf("a rejection is not an error: %v", err)
			}
			parts, _ := f.mgr.List(ctx)
			if len(parts) != 0 || f.changes.Load() != 0 {
				t.Fatalf("rejected resource stored: %+v", parts)
			}
			rej := f.audit("rejected")
			if len(rej) != 1 || !strings.HasPrefix(rej[0].Detail, tt.reason+":") || rej[0].Actor != "EventSubscription/claims" {
				t.Fatalf("audit %+v, want one rejection with reason %s", rej, tt.reason)
			}
		})
	}
}

func TestDynamicWinsAndDirectives(t *testing.T) {
	dyn := policy("claims", allowClaims.Spec.Allow...)
	dyn.Spec.ConflictResolution = DynamicWins
	f := newFixture(t, Config{Policies: []*schemas.DynamicOverridePolicy{dyn}, Static: map[string]bool{"RemoteAddressClaim/a": true}})
	ctx := context.Background()
	if err := f.mgr.HandleResult(ctx, batch(ev("ev1", "10.0.0.1")), subscribe.Result{Resources: []json.RawMessage{claimJSON("a", "10.0.0.1", "")}}); err != nil {
		t.Fatal(err)
	}
	if parts, _ := f.mgr.List(ctx); len(parts) != 1 {
		t.Fatalf("dynamic-wins: %d parts, want 1", len(parts))
	}
	del := subscribe.Result{Doc: &abi.Result{Status: abi.ResultStatus{Directives: []abi.Directive{
		{Op: "delete", Target: abi.ObjectRef{Kind: "RemoteAddressClaim", Name: "a"}, Reason: "address left"}}}}}
	if err := f.mgr.HandleResult(ctx, batch(ev("ev2", "10.0.0.1")), del); err != nil {
		t.Fatal(err)
	}
	if parts, _ := f.mgr.List(ctx); len(parts) != 0 {
		t.Fatalf("delete directive left %d parts", len(parts))
	}
	if w := f.audit("withdrawn"); len(w) != 1 || !strings.Contains(w[0].Detail, "directive: address left") {
		t.Fatalf("withdraw audit %+v", w)
	}
}

func TestExpiryAndWithdraw(t *testing.T) {
	f := newFixture(t, Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	put := func(name string, ttl time.Duration) {
		r := subscribe.Result{TTL: ttl, Resources: []json.RawMessage{claimJSON(name, "10.0.0.1", "")}}
		if err := f.mgr.HandleResult(ctx, batch(ev("ev-"+name, "10.0.0.1")), r); err != nil {
			t.Fatal(err)
		}
	}
	put("short", time.Minute)
	put("long", time.Hour)
	done := make(chan struct{})
	go func() { defer close(done); f.mgr.Run(ctx, 10*time.Minute) }()
	defer func() { cancel(); <-done }()
	start := f.clk.Now()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if !f.clk.WaitFor(wctx, func(p []time.Time) bool { return len(p) == 1 && p[0].Equal(start.Add(time.Minute)) }) {
		t.Fatalf("expiry timer armed at %v, want +1m", f.clk.Pending())
	}
	if live, _ := f.mgr.Live(ctx); len(live) != 2 {
		t.Fatalf("%d live parts before expiry", len(live))
	}
	f.clk.Advance(time.Minute)
	if !f.clk.WaitFor(wctx, func(p []time.Time) bool { return len(p) == 1 && p[0].Equal(start.Add(11*time.Minute)) }) {
		t.Fatalf("after expiry, timer at %v, want +11m (maxWait)", f.clk.Pending())
	}
	parts, _ := f.mgr.List(ctx)
	if len(parts) != 1 || parts[0].Name != "long" {
		t.Fatalf("parts after expiry %+v", parts)
	}
	if w := f.audit("withdrawn"); len(w) != 1 || w[0].Target != "RemoteAddressClaim/short" {
		t.Fatalf("expiry audit %+v", w)
	}
	removed, err := f.mgr.Withdraw(ctx, "", "RemoteAddressClaim", "long", "routerctl")
	if err != nil || len(removed) != 1 {
		t.Fatalf("Withdraw = %v, %v", removed, err)
	}
	if removed, _ := f.mgr.Withdraw(ctx, "", "RemoteAddressClaim", "long", "routerctl"); len(removed) != 0 {
		t.Fatal("withdrew a part twice")
	}
}

func TestMerge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	obj := func(name, addr string) schemas.Object {
		o, err := schemas.DecodeObject(claimJSON(name, addr, ""))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	part := func(source, name, addr string, updated time.Time, expires time.Time) Part {
		d := &schemas.DynamicConfigPart{}
		d.Spec.Resources = []schemas.Resource{{Object: obj(name, addr)}}
		return Part{Source: source, Kind: "RemoteAddressClaim", Name: name, UpdatedAt: updated, ExpiresAt: expires, Document: d}
	}
	static := []schemas.Object{obj("s", "10.0.0.1")}
	tests := []struct {
		name       string
		parts      []Part
		resolution string
		want       []string // name=address
		conflicts  int
	}{
		{name: "static only", want: []string{"s=10.0.0.1"}},
		{name: "live part added", parts: []Part{part("EventSubscription/a", "d", "10.0.0.2", now, now.Add(time.Hour))},
			want: []string{"d=10.0.0.2", "s=10.0.0.1"}},
		{name: "expired part left out", parts: []Part{part("EventSubscription/a", "d", "10.0.0.2", now, now)},
			want: []string{"s=10.0.0.1"}},
		{name: "static wins", parts: []Part{part("EventSubscription/a", "s", "10.0.0.9", now, now.Add(time.Hour))},
			want: []string{"s=10.0.0.1"}, conflicts: 1},
		{name: "dynamic wins", resolution: DynamicWins, parts: []Part{part("EventSubscription/a", "s", "10.0.0.9", now, now.Add(time.Hour))},
			want: []string{"s=10.0.0.9"}},
		{name: "newest source wins", parts: []Part{
			part("EventSubscription/b", "d", "10.0.0.3", now.Add(time.Second), now.Add(time.Hour)),
			part("EventSubscription/a", "d", "10.0.0.2", now, now.Add(time.Hour))},
			want: []string{"d=10.0.0.3", "s=10.0.0.1"}, conflicts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, conflicts := Merge(static, tt.parts, now, tt.resolution)
			var names []string
			for _, o := range got {
				c := o.(*schemas.RemoteAddressClaim)
				names = append(names, c.Metadata.Name+"="+c.Spec.Address)
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") || len(conflicts) != tt.conflicts {
				t.Fatalf("Merge = %v (%d conflicts %+v), want %v (%d)", names, len(conflicts), conflicts, tt.want, tt.conflicts)
			}
		})
	}
}

// TestHandleResultAtomic: when the store fails, nothing of the result is kept (not in the
// database, not in memory), so the engine's retry starts from a clean state.
func TestHandleResultAtomic(t *testing.T) {
	f := newFixture(t, Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims}})
	ctx := context.Background()
	if _, err := f.mgr.List(ctx); err != nil { // load the cache while the store is open
		t.Fatal(err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	res := subscribe.Result{Resources: []json.RawMessage{claimJSON("a", "10.0.0.1", ""), claimJSON("b", "10.0.0.2", "")}}
	if err := f.mgr.HandleResult(ctx, batch(ev("ev1", "10.0.0.1")), res); err == nil {
		t.Fatal("HandleResult on a closed store succeeded")
	}
	if parts, _ := f.mgr.List(ctx); len(parts) != 0 || f.changes.Load() != 0 {
		t.Fatalf("after a failed commit: %d parts in memory, %d change notifications", len(parts), f.changes.Load())
	}
}
