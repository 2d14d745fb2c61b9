package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/health/healthtest"
	"routerd.net/routerd/federation/store"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func planJSON(t *testing.T, p Plan) []byte {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestPlanGolden(t *testing.T) {
	s := healthtest.FaultyStore(t)
	cfg := healthtest.LoadConfig(t, healthtest.Config)
	findings := health.Run(context.Background(), health.Input{Config: cfg, Store: s, Now: healthtest.T})
	got := planJSON(t, PlanFor(findings))
	golden := filepath.Join("testdata", "plan.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plan differs from %s:\n%s", golden, got)
	}

	// The same state read later (the faults aged, severities unchanged) and the findings
	// in another order, twice over, give the same bytes.
	later := health.Run(context.Background(), health.Input{Config: cfg, Store: s, Now: healthtest.T.Add(30 * time.Second)})
	shuffled := append(slices.Clone(later), later...)
	slices.Reverse(shuffled)
	if again := planJSON(t, PlanFor(shuffled)); !bytes.Equal(again, got) {
		t.Errorf("plan from reordered, duplicated findings read 30s later differs:\n%s\nwant:\n%s", again, got)
	}
}

func TestPlanFor(t *testing.T) {
	f := func(check, sev, peer, summary string) health.Finding {
		return health.Finding{Check: check, Severity: sev, Group: "g", Peer: peer, Resource: "EventPeer/" + peer, Summary: summary}
	}
	tests := []struct {
		name     string
		findings []health.Finding
		want     string // action/peer/safe/approval reason, one per line
	}{
		{name: "ok findings give no action", findings: []health.Finding{f(health.CheckFailedDeliveries, health.SeverityOK, "", "fine")}},
		{name: "store finding has no action", findings: []health.Finding{{Check: health.CheckStore, Severity: health.SeverityFail}}},
		{name: "each check maps to its action", findings: []health.Finding{
			f(health.CheckSubscriptionRuns, health.SeverityWarn, "", "s"),
			f(health.CheckExpectedDelivery, health.SeverityWarn, "p", "e"),
			f(health.CheckExpectedDeliveryNoEndpoint, health.SeverityFail, "p", "n"),
			f(health.CheckDeliveryLag, health.SeverityFail, "p", "l"),
			f(health.CheckStaleTTL, health.SeverityWarn, "p", "t"),
			f(health.CheckPendingDeliveries, health.SeverityWarn, "p", "o"),
			f(health.CheckFailedDeliveries, health.SeverityFail, "p", "x"),
		}, want: `inspect-failed-subscription-runs  false false subscription-runs warn: s
retry-failed-deliveries p true false failed-deliveries fail: x
investigate-pending-deliveries p false false pending-deliveries warn: o
force-repush-stale-ttl p true false stale-ttl warn: t
check-peer-connectivity p false false delivery-lag fail: l
configure-peer-endpoint p false true expected-delivery-no-endpoint fail: n
investigate-missing-delivery-rows p false false expected-delivery warn: e
`},
		{name: "duplicates keep the worse reason", findings: []health.Finding{
			f(health.CheckDeliveryLag, health.SeverityWarn, "p", "mild"),
			f(health.CheckDeliveryLag, health.SeverityFail, "p", "bad"),
			f(health.CheckDeliveryLag, health.SeverityWarn, "p", "mild again"),
		}, want: "check-peer-connectivity p false false delivery-lag fail: bad\n"},
		{name: "sorted by peer first", findings: []health.Finding{
			f(health.CheckFailedDeliveries, health.SeverityFail, "z", "z"),
			f(health.CheckDeliveryLag, health.SeverityFail, "a", "a"),
		}, want: "check-peer-connectivity a false false delivery-lag fail: a\nretry-failed-deliveries z true false failed-deliveries fail: z\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		for _, a := range PlanFor(tt.findings).Actions {
			b.WriteString(strings.Join([]string{a.Action, a.TargetPeer, boolStr(a.Safe), boolStr(a.RequiresOperatorApproval), a.Reason}, " ") + "\n")
		}
		if b.String() != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, b.String(), tt.want)
		}
	}
	if p := PlanFor(nil); p.Actions == nil {
		t.Error("empty plan has nil actions (encodes as null, want [])")
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestExecute(t *testing.T) {
	s := healthtest.FaultyStore(t)
	cfg := healthtest.LoadConfig(t, healthtest.Config)
	ctx := context.Background()
	in := health.Input{Config: cfg, Store: s, Now: healthtest.T}
	plan := PlanFor(health.Run(ctx, in))

	if _, err := Execute(ctx, s, plan, RunOptions{Approve: []string{"reboot-everything"}, Now: healthtest.T}); err == nil ||
		!strings.Contains(err.Error(), "not an action") {
		t.Errorf("unknown --approve: %v, want an error listing the actions", err)
	}
	results, err := Execute(ctx, s, plan, RunOptions{Approve: []string{ConfigurePeerEndpoint}, Now: healthtest.T, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, r := range results {
		got.WriteString(r.Action.Action + " " + r.Outcome + " " + strings.Repeat("+", int(r.Changed)) + "\n")
	}
	want := `inspect-failed-subscription-runs skipped 
retry-failed-deliveries done +
investigate-pending-deliveries skipped 
force-repush-stale-ttl done +
check-peer-connectivity skipped 
investigate-missing-delivery-rows skipped 
configure-peer-endpoint approved 
`
	if got.String() != want {
		t.Errorf("results:\n%s\nwant:\n%s", got.String(), want)
	}
	audit, err := s.ListAudit(ctx, store.AuditFilter{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != len(plan.Actions) {
		t.Errorf("audit has %d entries, want one per action (%d)", len(audit), len(plan.Actions))
	}
	for _, a := range audit {
		if !strings.HasPrefix(a.Action, "remediation.") || a.Outcome == "" || !strings.Contains(a.Detail, "reason: ") {
			t.Errorf("audit entry %+v: want remediation.<action> with outcome and reason", a)
		}
	}

	// The safe actions fixed what they target: no failed or stale-TTL finding remains.
	after := health.Run(ctx, in)
	for _, f := range after {
		if (f.Check == health.CheckFailedDeliveries || f.Check == health.CheckStaleTTL) && f.Severity != health.SeverityOK {
			t.Errorf("after run: %s %s: %s", f.Check, f.Severity, f.Summary)
		}
	}
	rows, err := s.ListDeliveries(ctx, store.DeliveryFilter{Group: "lab", Peer: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.State != store.DeliveryPending && r.State != store.DeliveryRetrying {
			t.Errorf("row %s of b is %s after the run, want pending (re-queued) or retrying", r.EventID, r.State)
		}
	}

	s.Close()
	results, err = Execute(ctx, s, plan, RunOptions{Now: healthtest.T})
	if err == nil || !strings.Contains(err.Error(), "retry-failed-deliveries on lab/b") {
		t.Errorf("closed store: %v, want the failed action named", err)
	}
	if len(results) != len(plan.Actions) || results[1].Action.Action != RetryFailedDeliveries || results[1].Outcome != OutcomeFailed {
		t.Errorf("closed store: results %+v, want every action reported and retry-failed-deliveries failed", results)
	}
}
