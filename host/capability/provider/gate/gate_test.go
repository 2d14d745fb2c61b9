package gate

import (
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/schemas"
)

func policy(name string, edit func(s *schemas.ProviderActionPolicySpec)) *schemas.ProviderActionPolicy {
	p := &schemas.ProviderActionPolicy{Metadata: schemas.ObjectMeta{Name: name}, Spec: schemas.ProviderActionPolicySpec{
		Enabled:          true,
		AllowedProviders: []string{"aws"},
		AllowedActions:   []string{abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP},
		AllowedCIDRs:     []string{"10.88.60.0/24"},
		MaxActionsPerRun: 2,
	}}
	if edit != nil {
		edit(&p.Spec)
	}
	return p
}

func assign(address, nic string) abi.ActionPlan {
	params := map[string]string{abi.ParamAddress: address, abi.ParamNIC: nic}
	return abi.ActionPlan{Name: "assign-" + address, Provider: "aws", ProviderRef: "aws-main", Action: abi.ActionAssignSecondaryIP,
		Parameters: params, Undo: &abi.ActionUndo{Action: abi.ActionUnassignSecondaryIP, Parameters: params}}
}

var monday10 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) // a Monday

func TestCheck(t *testing.T) {
	f := false
	tests := []struct {
		name     string
		policies []*schemas.ProviderActionPolicy
		req      Request
		rule     string // "" = allowed
		reason   string // substring of the reason
		dryRun   bool
		approval bool
	}{
		{name: "allowed, dry-run only and approval by default", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), Now: monday10}, dryRun: true, approval: true},
		{name: "allowed for real, auto-approved action",
			policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) {
				s.DryRunOnly, s.AutoApproveActions = &f, []string{abi.ActionAssignSecondaryIP}
			})},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), Now: monday10}},
		{name: "no policy", req: Request{Plan: assign("10.88.60.9", "eni-1")}, rule: RuleNoPolicy, reason: "display-only"},
		{name: "disabled", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.Enabled = false })},
			req: Request{Plan: assign("10.88.60.9", "eni-1")}, rule: RuleDisabled, reason: "ProviderActionPolicy p: spec.enabled is false"},
		{name: "unknown provider", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: func() abi.ActionPlan { p := assign("10.88.60.9", "eni-1"); p.Provider = "gcp"; return p }()}, rule: RuleUnknownProvider, reason: `"gcp"`},
		{name: "provider not allowed", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.AllowedProviders = []string{"oci"} })},
			req: Request{Plan: assign("10.88.60.9", "eni-1")}, rule: RuleProvider, reason: "spec.allowedProviders [oci]"},
		{name: "profile not allowed", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.AllowedProviderRefs = []string{"aws-prod"} })},
			req: Request{Plan: assign("10.88.60.9", "eni-1")}, rule: RuleProviderRef, reason: "aws-main"},
		{name: "action not allowed", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.AllowedActions = nil })},
			req: Request{Plan: assign("10.88.60.9", "eni-1")}, rule: RuleAction, reason: "(empty: none allowed)"},
		{name: "address outside allowed CIDRs", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: assign("192.0.2.9", "eni-1")}, rule: RuleCIDR, reason: "192.0.2.9 is outside spec.allowedCIDRs [10.88.60.0/24]"},
		{name: "NIC not in the profile", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: assign("10.88.60.9", "eni-9"), ProfileNICs: []string{"eni-1"}}, rule: RuleNIC, reason: "eni-9"},
		{name: "too many actions in the run", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), RunIndex: 2}, rule: RuleMaxActions, reason: "maxActionsPerRun is 2"},
		{name: "maxActionsPerRun defaults to 1", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.MaxActionsPerRun = 0 })},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), RunIndex: 1}, rule: RuleMaxActions},
		{name: "budget spent", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.MaxExecutionsPerHour = 5 })},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), ExecutionsLastHour: 5}, rule: RuleBudget, reason: "maxExecutionsPerHour 5"},
		{name: "budget defaults to 60", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), ExecutionsLastHour: 60}, rule: RuleBudget, reason: "maxExecutionsPerHour 60"},
		{name: "undo not allowed", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), Undo: true}, rule: RuleUndo},
		{name: "undo allowed", policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.AllowUndo = true })},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), Undo: true}, dryRun: true, approval: true},
		{name: "undo action must be allowed too",
			policies: []*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) {
				s.AllowUndo, s.AllowedActions = true, []string{abi.ActionAssignSecondaryIP}
			})},
			req: Request{Plan: assign("10.88.60.9", "eni-1"), Undo: true}, rule: RuleAction, reason: "unassign-secondary-ip"},
		{name: "plan without address", policies: []*schemas.ProviderActionPolicy{policy("p", nil)},
			req: Request{Plan: abi.ActionPlan{Name: "x", Provider: "aws", ProviderRef: "r", Action: abi.ActionAssignSecondaryIP}}, rule: RuleInvalidPlan},
		{name: "second policy allows what the first refuses",
			policies: []*schemas.ProviderActionPolicy{policy("b-allows", nil), policy("a-refuses", func(s *schemas.ProviderActionPolicySpec) { s.Enabled = false })},
			req:      Request{Plan: assign("10.88.60.9", "eni-1")}, dryRun: true, approval: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Check(tt.policies, tt.req)
			if d.Rule != tt.rule || d.Allowed != (tt.rule == "") {
				t.Fatalf("decision = %+v, want rule %q", d, tt.rule)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			if d.Allowed && (d.DryRunOnly != tt.dryRun || d.NeedsApproval != tt.approval) {
				t.Errorf("dryRunOnly, needsApproval = %v, %v; want %v, %v", d.DryRunOnly, d.NeedsApproval, tt.dryRun, tt.approval)
			}
		})
	}
}

func TestExecutionWindow(t *testing.T) {
	tests := []struct {
		name string
		w    schemas.ExecutionWindow
		now  time.Time
		in   bool
	}{
		{"inside", schemas.ExecutionWindow{Start: "09:00", End: "17:00"}, monday10, true},
		{"before", schemas.ExecutionWindow{Start: "11:00", End: "17:00"}, monday10, false},
		{"end is exclusive", schemas.ExecutionWindow{Start: "09:00", End: "10:00"}, monday10, false},
		{"weekday listed", schemas.ExecutionWindow{Days: []string{"mon"}, Start: "09:00", End: "17:00"}, monday10, true},
		{"weekday not listed", schemas.ExecutionWindow{Days: []string{"sat", "sun"}, Start: "09:00", End: "17:00"}, monday10, false},
		{"across midnight, after start", schemas.ExecutionWindow{Days: []string{"mon"}, Start: "22:00", End: "02:00"}, monday10.Add(13 * time.Hour), true},
		{"across midnight, early morning belongs to the day before", schemas.ExecutionWindow{Days: []string{"sun"}, Start: "22:00", End: "02:00"}, monday10.Add(-9 * time.Hour), true},
		{"across midnight, early morning of an unlisted day", schemas.ExecutionWindow{Days: []string{"mon"}, Start: "22:00", End: "02:00"}, monday10.Add(-9 * time.Hour), false},
		{"time zone", schemas.ExecutionWindow{Start: "09:00", End: "10:00", TimeZone: "Asia/Tokyo"}, time.Date(2026, 12, 7, 0, 30, 0, 0, time.UTC), true},
		{"bad time zone refuses", schemas.ExecutionWindow{Start: "09:00", End: "17:00", TimeZone: "Mars/Olympus"}, monday10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			d := Check([]*schemas.ProviderActionPolicy{policy("p", func(s *schemas.ProviderActionPolicySpec) { s.ExecutionWindow = &w })},
				Request{Plan: assign("10.88.60.9", "eni-1"), Now: tt.now})
			if d.Allowed != tt.in {
				t.Fatalf("allowed = %v, want %v (%s)", d.Allowed, tt.in, d.Reason)
			}
			if !tt.in && d.Rule != RuleWindow {
				t.Errorf("rule = %q, want %q", d.Rule, RuleWindow)
			}
		})
	}
}
