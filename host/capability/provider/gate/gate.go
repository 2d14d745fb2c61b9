// Package gate is the ProviderActionPolicy gate: the one function that decides, before
// anything leaves the machine, whether a provider ActionPlan may run, and if not, which
// rule of which policy refused it. The daemon's planner, `routerctl actionplan` and the
// executor all call Check; a refusal names a stable rule (for counting and audit) and a
// sentence an operator can act on.
//
// Deny by default: without an enabled policy nothing runs. A policy allows a plan only if
// every rule passes: the provider, profile, action (and for an undo, allowUndo and the
// undo action), every address the plan touches inside allowedCIDRs, the NIC among the
// profile's NICs (when the profile lists any), the plan's place in its run within
// maxActionsPerRun, the time inside executionWindow and the provider's executions in
// the last hour within the budget. dryRunOnly (default true) and requireApproval
// (default true) do not refuse: they say how an allowed plan may run.
package gate

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/schemas"
)

// Rules that refuse a plan: Decision.Rule is one of these.
const (
	RuleNoPolicy        = "no-policy"
	RuleDisabled        = "enabled"
	RuleInvalidPlan     = "invalid-plan"
	RuleUnknownProvider = "unknown-provider"
	RuleProvider        = "allowed-providers"
	RuleProviderRef     = "allowed-provider-refs"
	RuleAction          = "allowed-actions"
	RuleUndo            = "allow-undo"
	RuleCIDR            = "allowed-cidrs"
	RuleNIC             = "profile-nics"
	RuleMaxActions      = "max-actions-per-run"
	RuleWindow          = "execution-window"
	RuleBudget          = "budget"
)

// Providers are the providers routerd can execute plans for.
var Providers = []string{abi.ProviderAWS, abi.ProviderAzure, abi.ProviderOCI}

// Request is one plan to check and the facts around it.
type Request struct {
	// Plan is the plan; Undo asks about running its undo instead.
	Plan abi.ActionPlan
	Undo bool
	// Now is the time of the decision.
	Now time.Time
	// RunIndex is the plan's 0-based position among the plans executed in this run.
	RunIndex int
	// ExecutionsLastHour counts this provider's executions in the hour before Now.
	ExecutionsLastHour int
	// ProfileNICs are the NICs the plan's profile lists; empty: the profile lists none
	// and any NIC of the profile is allowed.
	ProfileNICs []string
}

// Decision is the gate's answer.
type Decision struct {
	// Allowed is true when a policy allows the plan.
	Allowed bool `json:"allowed"`
	// Policy names the policy that allowed it, or whose rule refused it.
	Policy string `json:"policy,omitempty"`
	// Rule is the refusing rule (one of the Rule constants); empty when allowed.
	Rule string `json:"rule,omitempty"`
	// Reason says why, naming the policy field and the value.
	Reason string `json:"reason,omitempty"`
	// DryRunOnly: the plan may only be dry-run (policy dryRunOnly, default true).
	DryRunOnly bool `json:"dryRunOnly,omitempty"`
	// NeedsApproval: an operator must approve it first (requireApproval, default true,
	// unless the action is in autoApproveActions).
	NeedsApproval bool `json:"needsApproval,omitempty"`
}

// DefaultMaxExecutionsPerHour is the budget of a policy that sets none.
const DefaultMaxExecutionsPerHour = 60

// Check decides about r under policies. Policies are tried in name order; the first that
// allows the plan decides. When none does, the refusal of the first policy is returned
// (with one policy: its refusal).
func Check(policies []*schemas.ProviderActionPolicy, r Request) Decision {
	if d, bad := checkPlan(r); bad {
		return d
	}
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, func(a, b *schemas.ProviderActionPolicy) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	var first *Decision
	for _, p := range sorted {
		d := checkPolicy(p, r)
		if d.Allowed {
			return d
		}
		if first == nil {
			first = &d
		}
	}
	if first == nil {
		return Decision{Rule: RuleNoPolicy, Reason: "no ProviderActionPolicy exists: provider actions are display-only until one enables them"}
	}
	return *first
}

// checkPlan refuses a plan no policy could allow.
func checkPlan(r Request) (Decision, bool) {
	p := r.Plan
	switch {
	case !slices.Contains(Providers, p.Provider):
		return Decision{Rule: RuleUnknownProvider, Reason: "plan " + p.Name + ": provider " + strconv.Quote(p.Provider) + " is not one of " + strings.Join(Providers, ", ")}, true
	case p.Action == "" || p.ProviderRef == "" || p.Parameters[abi.ParamAddress] == "":
		return Decision{Rule: RuleInvalidPlan, Reason: "plan " + p.Name + ": needs action, providerRef and parameters." + abi.ParamAddress}, true
	case r.Undo && (p.Undo == nil || p.Undo.Action == ""):
		return Decision{Rule: RuleInvalidPlan, Reason: "plan " + p.Name + " has no undo"}, true
	}
	return Decision{}, false
}

func checkPolicy(pol *schemas.ProviderActionPolicy, r Request) Decision {
	s, p := pol.Spec, r.Plan
	refuse := func(rule, reason string) Decision {
		return Decision{Policy: pol.Metadata.Name, Rule: rule, Reason: "ProviderActionPolicy " + pol.Metadata.Name + ": " + reason}
	}
	action := p.Action
	if r.Undo {
		action = p.Undo.Action
	}
	switch {
	case !s.Enabled:
		return refuse(RuleDisabled, "spec.enabled is false")
	case !slices.Contains(s.AllowedProviders, p.Provider):
		return refuse(RuleProvider, "provider "+p.Provider+" is not in spec.allowedProviders "+list(s.AllowedProviders))
	case len(s.AllowedProviderRefs) > 0 && !slices.Contains(s.AllowedProviderRefs, p.ProviderRef):
		return refuse(RuleProviderRef, "profile "+p.ProviderRef+" is not in spec.allowedProviderRefs "+list(s.AllowedProviderRefs))
	case r.Undo && !s.AllowUndo:
		return refuse(RuleUndo, "spec.allowUndo is false: plan "+p.Name+"'s undo may not run")
	case !slices.Contains(s.AllowedActions, action):
		return refuse(RuleAction, "action "+action+" is not in spec.allowedActions "+list(s.AllowedActions))
	}
	for _, a := range addresses(p, r.Undo) {
		if !inCIDRs(s.AllowedCIDRs, a) {
			return refuse(RuleCIDR, "address "+a+" is outside spec.allowedCIDRs "+list(s.AllowedCIDRs))
		}
	}
	if nic := p.Parameters[abi.ParamNIC]; len(r.ProfileNICs) > 0 && !slices.Contains(r.ProfileNICs, nic) {
		return refuse(RuleNIC, "NIC "+nic+" is not among the NICs of CloudProviderProfile "+p.ProviderRef)
	}
	if max := maxActions(s); r.RunIndex >= max {
		return refuse(RuleMaxActions, "the run already has "+strconv.Itoa(r.RunIndex)+" actions; spec.maxActionsPerRun is "+strconv.Itoa(max))
	}
	if w := s.ExecutionWindow; w != nil {
		if ok, why := inWindow(w, r.Now); !ok {
			return refuse(RuleWindow, why)
		}
	}
	maxPerHour := s.MaxExecutionsPerHour
	if maxPerHour <= 0 {
		maxPerHour = DefaultMaxExecutionsPerHour
	}
	if r.ExecutionsLastHour >= maxPerHour {
		return refuse(RuleBudget, strconv.Itoa(r.ExecutionsLastHour)+" "+p.Provider+" executions in the last hour reach spec.maxExecutionsPerHour "+strconv.Itoa(maxPerHour))
	}
	return Decision{
		Allowed:       true,
		Policy:        pol.Metadata.Name,
		DryRunOnly:    s.DryRunOnly == nil || *s.DryRunOnly,
		NeedsApproval: (s.RequireApproval == nil || *s.RequireApproval) && !slices.Contains(s.AutoApproveActions, action),
	}
}

// addresses are the addresses a plan (or its undo) touches.
func addresses(p abi.ActionPlan, undo bool) []string {
	params := p.Parameters
	if u, ok := p.UndoPlan(); undo && ok {
		params = u.Parameters
	}
	out := []string{}
	for k, v := range params {
		if k == abi.ParamAddress || strings.HasSuffix(k, "IpAddress") || strings.HasSuffix(k, "IPAddress") {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func inCIDRs(cidrs []string, address string) bool {
	a, err := netip.ParseAddr(strings.TrimSpace(address))
	if err != nil {
		return false
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

func maxActions(s schemas.ProviderActionPolicySpec) int {
	if s.MaxActionsPerRun > 0 {
		return s.MaxActionsPerRun
	}
	return 1
}

// inWindow reports whether now falls in w. A window whose end is before its start
// crosses midnight and belongs to the day it starts on.
func inWindow(w *schemas.ExecutionWindow, now time.Time) (bool, string) {
	loc := time.UTC
	if w.TimeZone != "" {
		l, err := time.LoadLocation(w.TimeZone)
		if err != nil {
			return false, "spec.executionWindow.timeZone " + strconv.Quote(w.TimeZone) + ": " + err.Error()
		}
		loc = l
	}
	start, err1 := minuteOfDay(w.Start)
	end, err2 := minuteOfDay(w.End)
	if err1 != nil || err2 != nil {
		return false, "spec.executionWindow start/end must be HH:MM, got " + strconv.Quote(w.Start) + "-" + strconv.Quote(w.End)
	}
	t := now.In(loc)
	m := t.Hour()*60 + t.Minute()
	day := t
	inside := start <= m && m < end
	if end <= start { // crosses midnight
		inside = m >= start || m < end
		if m < end {
			day = t.AddDate(0, 0, -1)
		}
	}
	desc := "spec.executionWindow " + w.Start + "-" + w.End + " " + loc.String()
	if len(w.Days) > 0 {
		desc += " on " + strings.Join(w.Days, ",")
	}
	if !inside || len(w.Days) > 0 && !slices.Contains(w.Days, strings.ToLower(day.Weekday().String()[:3])) {
		return false, "now (" + t.Format("Mon 15:04 MST") + ") is outside " + desc
	}
	return true, ""
}

func minuteOfDay(hhmm string) (int, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

func list(ss []string) string {
	if len(ss) == 0 {
		return "(empty: none allowed)"
	}
	return "[" + strings.Join(ss, ", ") + "]"
}
