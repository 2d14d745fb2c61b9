package actionplan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/actionplan"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/providertest"
	"routerd.net/routerd/host/wasmbuild"
	"routerd.net/routerd/schemas"
)

// env is a node with a real store, a real host running the provider-aws Wasm plugin
// (plan and execute) with provider_request served by the signature-checking fake EC2.
type env struct {
	lab   *providertest.Lab
	st    *store.Store
	svc   *actionplan.Service
	now   time.Time
	claim map[string]string // address -> ownerSide
	pol   *schemas.ProviderActionPolicy
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{lab: providertest.NewLab(t), now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), claim: map[string]string{}}
	dir := t.TempDir()
	key, err := store.LoadAuditKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(filepath.Join(dir, "routerd.db"), store.Options{AuditKey: key, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	h, err := host.New(host.Options{CacheDir: t.TempDir(), Functions: []capability.Function{provider.Function(e.lab.Requester)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	g := e.lab.Grants["aws"]
	spec := host.Spec{Name: "provider-aws", Grants: capability.Grants{ProviderRequest: capability.ProviderRequestGrant{
		Hosts: g.Hosts, ProfileRefs: []string{"aws-lab"}, Methods: []string{"POST"}, PathPrefixes: []string{"/"}}}}
	if err := h.LoadFile(context.Background(), wasmbuild.ForTest(t, "plugins/provider-aws"), spec); err != nil {
		t.Fatal(err)
	}
	e.svc = actionplan.New(actionplan.Options{Store: e.st, Plugins: h, Now: func() time.Time { return e.now }})
	e.pol = &schemas.ProviderActionPolicy{Metadata: schemas.ObjectMeta{Name: "default"}, Spec: schemas.ProviderActionPolicySpec{
		Enabled: true, AllowedProviders: []string{"aws"}, AllowedProviderRefs: []string{"aws-lab"},
		AllowedActions: []string{abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP}, AllowedCIDRs: []string{"10.0.0.0/24"}, MaxActionsPerRun: 5}}
	return e
}

func (e *env) cfg(t testing.TB) actionplan.Config {
	t.Helper()
	docs := []string{`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"CloudProviderProfile","metadata":{"name":"aws-lab"},"spec":{"provider":"aws","region":"eu-central-1"}}`}
	addrs := make([]string, 0, len(e.claim))
	for a := range e.claim {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range addrs {
		docs = append(docs, fmt.Sprintf(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":"c-%s","annotations":{"routerd.net/event-id":"ev-%s"}},
			"spec":{"domainRef":"lab","address":%q,"ownerSide":%q,"capture":{"type":"provider-secondary-ip","providerRef":"aws-lab","nicRef":"eni-a"}}}`, a, e.claim[a], a, e.claim[a]))
	}
	c := actionplan.Config{Plugins: []actionplan.Plugin{{Name: "provider-aws", Plan: true, Execute: true, ProfileRefs: []string{"aws-lab"}}},
		Policies: []*schemas.ProviderActionPolicy{e.pol}}
	for _, d := range docs {
		c.Resources = append(c.Resources, json.RawMessage(d))
	}
	return c
}

func (e *env) plan(t *testing.T) []actionplan.Decision {
	t.Helper()
	rep, err := e.svc.Plan(context.Background(), e.cfg(t))
	if err != nil {
		t.Fatal(err)
	}
	return rep.Decisions
}

func (e *env) onNIC(addr string) bool { return slices.Contains(e.lab.EC2.Addresses("eni-a"), addr) }

// TestPlanGateApproveExecuteUndo walks one address through the whole lifecycle the demo
// shows, against the fake EC2.
func TestPlanGateApproveExecuteUndo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.claim["10.0.0.9"] = "onprem"

	ds := e.plan(t)
	if len(ds) != 1 || ds[0].State != store.PlanProposed {
		t.Fatalf("first plan run: %+v, want one proposed plan", ds)
	}
	id := ds[0].ID
	if _, err := e.svc.Execute(ctx, e.cfg(t), id, "alice", false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("executing a plan nobody approved: %v", err)
	}
	if _, err := e.svc.Approve(ctx, id, "alice", "change 42"); err != nil {
		t.Fatal(err)
	}
	rec, err := e.svc.Execute(ctx, e.cfg(t), id, "alice", false)
	if !errors.Is(err, actionplan.ErrRefused) || rec.State != store.PlanRefused || !strings.Contains(rec.Result, actionplan.RuleDryRunOnly) {
		t.Fatalf("dryRunOnly policy: %+v, %v", rec, err)
	}
	if e.onNIC("10.0.0.9") || e.lab.EC2.Requests() != 0 {
		t.Fatal("a dry-run-only plan reached the provider")
	}

	f := false
	e.pol.Spec.DryRunOnly = &f
	if _, err := e.svc.Approve(ctx, id, "alice", "policy now executes"); err != nil {
		t.Fatal(err)
	}
	rec, err = e.svc.Execute(ctx, e.cfg(t), id, "alice", false)
	if err != nil || rec.State != store.PlanExecuted || !e.onNIC("10.0.0.9") {
		t.Fatalf("execute: %+v, %v; on NIC: %v", rec, err, e.onNIC("10.0.0.9"))
	}
	var res abi.ActionResult
	if err := json.Unmarshal([]byte(rec.Result), &res); err != nil || res.Outcome != abi.ActionSucceeded || res.Attributes["requestId"] == "" || res.Attributes["httpStatus"] != "200" {
		t.Fatalf("stored outcome %q (%v)", rec.Result, err)
	}
	sent := e.lab.EC2.Requests()
	if _, err := e.svc.Execute(ctx, e.cfg(t), id, "alice", false); !errors.Is(err, store.ErrConflict) || e.lab.EC2.Requests() != sent {
		t.Fatalf("a second execution of one plan: %v, %d more requests", err, e.lab.EC2.Requests()-sent)
	}
	if ds := e.plan(t); len(ds) != 0 {
		t.Fatalf("an executed claim planned again: %+v", ds)
	}

	// The address moves to the cloud: unassign.
	e.now = e.now.Add(time.Minute)
	e.claim["10.0.0.9"] = "cloud"
	ds = e.plan(t)
	if len(ds) != 1 || ds[0].State != store.PlanProposed || !strings.HasPrefix(ds[0].Name, abi.ActionUnassignSecondaryIP) {
		t.Fatalf("after the move: %+v", ds)
	}
	unassign := ds[0].ID
	if _, err := e.svc.Approve(ctx, unassign, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.svc.Execute(ctx, e.cfg(t), unassign, "bob", false); err != nil || e.onNIC("10.0.0.9") {
		t.Fatalf("unassign: %+v, %v", rec, err)
	}

	// Undo: refused without allowUndo, and for the assign whose address is gone.
	if _, err := e.svc.Execute(ctx, e.cfg(t), unassign, "bob", true); !errors.Is(err, actionplan.ErrRefused) || !strings.Contains(err.Error(), "allow-undo") {
		t.Fatalf("undo without allowUndo: %v", err)
	}
	e.pol.Spec.AllowUndo = true
	if _, err := e.svc.Execute(ctx, e.cfg(t), id, "bob", true); !errors.Is(err, actionplan.ErrRefused) || !strings.Contains(err.Error(), "not as the plan left it") {
		t.Fatalf("undo of the assign after the unassign: %v", err)
	}
	rec, err = e.svc.Execute(ctx, e.cfg(t), unassign, "bob", true)
	if err != nil || rec.State != store.PlanUndone || !e.onNIC("10.0.0.9") {
		t.Fatalf("undo of the unassign: %+v, %v", rec, err)
	}

	v, err := e.st.VerifyAudit(ctx)
	if err != nil || !v.OK() {
		t.Fatalf("audit chain: %v, %v", v, err)
	}
	audit, _ := e.st.ListAudit(ctx, store.AuditFilter{})
	var approvals []string
	for _, a := range audit {
		if a.Action == "actionplan.approved" {
			approvals = append(approvals, a.Actor+":"+a.Detail)
		}
	}
	if len(approvals) < 3 || approvals[0] != "alice:change 42" {
		t.Errorf("approvals audited as %q", approvals)
	}
}

// TestBadPlansAndProviderFailures: plans outside the policy are refused by name at plan
// time; a provider failure marks the plan failed with the reason and whether a retry
// helps, and the service keeps working.
func TestBadPlansAndProviderFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	f := false
	e.pol.Spec.DryRunOnly = &f
	e.claim["10.0.1.5"] = "onprem" // outside allowedCIDRs
	e.claim["10.0.0.7"] = "onprem"
	ds := e.plan(t)
	rules := map[string]string{}
	for _, d := range ds {
		rules[d.Name[:len("assign-secondary-ip-10-0-1-5")]] = d.State + "/" + d.Rule
	}
	if rules["assign-secondary-ip-10-0-1-5"] != "refused/allowed-cidrs" || rules["assign-secondary-ip-10-0-0-7"] != "proposed/" {
		t.Fatalf("decisions: %v", rules)
	}
	var ok string
	for _, d := range ds {
		if d.State == store.PlanProposed {
			ok = d.ID
		}
	}
	if _, err := e.svc.Approve(ctx, ok, "alice", ""); err != nil {
		t.Fatal(err)
	}
	e.lab.EC2.Inject(providertest.Fault{Status: 503, Code: "Unavailable"})
	rec, err := e.svc.Execute(ctx, e.cfg(t), ok, "alice", false)
	if err != nil || rec.State != store.PlanFailed || !strings.Contains(rec.Result, `"retryable":"true"`) {
		t.Fatalf("provider 503: %+v, %v", rec, err)
	}
	if got, err := e.svc.RetryDue(ctx, e.cfg(t)); err != nil || len(got) != 0 {
		t.Fatalf("retried before the policy's wait: %+v, %v", got, err)
	}
	e.now = e.now.Add(actionplan.DefaultRetry.Max)
	got, err := e.svc.RetryDue(ctx, e.cfg(t))
	if err != nil || len(got) != 1 || got[0].State != store.PlanExecuted || !e.onNIC("10.0.0.7") {
		t.Fatalf("automatic retry after the provider recovered: %+v, %v", got, err)
	}
	if a, _ := e.st.ListAudit(ctx, store.AuditFilter{Actor: actionplan.ActorRetry}); len(a) == 0 {
		t.Error("the retry is not audited under its own actor")
	}

	// A final failure (the provider refuses the request) waits for an operator.
	e.claim["10.0.0.8"] = "onprem"
	var final string
	for _, d := range e.plan(t) {
		if strings.Contains(d.Name, "10-0-0-8") {
			final = d.ID
		}
	}
	if _, err := e.svc.Approve(ctx, final, "alice", ""); err != nil {
		t.Fatal(err)
	}
	e.lab.EC2.Inject(providertest.Fault{Status: 400, Code: "InvalidParameterValue"})
	if rec, _ := e.svc.Execute(ctx, e.cfg(t), final, "alice", false); rec.State != store.PlanFailed || strings.Contains(rec.Result, `"retryable"`) {
		t.Fatalf("provider 400: %+v", rec)
	}
	e.now = e.now.Add(time.Hour)
	if got, _ := e.svc.RetryDue(ctx, e.cfg(t)); len(got) != 0 {
		t.Fatalf("a final failure was retried: %+v", got)
	}
	// The claim goes away: the open refused plan is superseded.
	delete(e.claim, "10.0.1.5")
	e.plan(t)
	refused := ""
	for _, d := range ds {
		if d.State == store.PlanRefused {
			refused = d.ID
		}
	}
	if p, _ := e.st.GetActionPlan(ctx, refused); p.State != store.PlanRejected {
		t.Fatalf("a plan the planner no longer proposes is %s", p.State)
	}
}

// BenchmarkExecute measures an approved plan's execution end to end: gate, preconditions,
// the provider-aws execute hook in Wasm, provider_request signed with SigV4, the fake
// EC2 (which verifies the signature), the outcome stored and audited. It prints
// provider_execute_p50_ms over its own bounded loop.
func BenchmarkExecute(b *testing.B) {
	e := newEnv(b)
	f := false
	e.pol.Spec.DryRunOnly, e.pol.Spec.MaxExecutionsPerHour = &f, 1<<20
	ctx := context.Background()
	const plans = 120
	ids := make([]string, 0, plans)
	for i := range plans {
		p := abi.ActionPlan{Name: fmt.Sprintf("assign-%d", i), Provider: "aws", ProviderRef: "aws-lab", Action: abi.ActionAssignSecondaryIP,
			IdempotencyKey: fmt.Sprintf("bench-%d", i), Parameters: map[string]string{abi.ParamNIC: "eni-a", abi.ParamAddress: fmt.Sprintf("10.0.0.%d", i+100)}} // eni-b holds 10.0.0.20
		doc, _ := json.Marshal(p)
		if _, err := e.st.ProposeActionPlan(ctx, store.ActionPlanRecord{ID: p.IdempotencyKey, Name: p.Name, Provider: "aws", Action: p.Action, Document: doc}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.svc.Approve(ctx, p.IdempotencyKey, "bench", ""); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, p.IdempotencyKey)
	}
	cfg := e.cfg(b)
	for range b.N {
		var lat []time.Duration
		deadline := time.Now().Add(30 * time.Second)
		for _, id := range ids {
			if time.Now().After(deadline) {
				break
			}
			start := time.Now()
			if rec, err := e.svc.Execute(ctx, cfg, id, "bench", false); err != nil || rec.State != store.PlanExecuted {
				b.Fatalf("execute %s: %s, %v", id, rec.State, err)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		ms := float64(lat[len(lat)/2].Microseconds()) / 1000
		b.ReportMetric(ms, "p50-ms")
		fmt.Printf("BENCH %s %.2f %s\n", "provider_execute_p50_ms", ms, "ms")
		ids = nil // one pass: each plan executes once
	}
}
