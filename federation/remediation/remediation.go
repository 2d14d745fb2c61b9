// Package remediation turns federation health findings into the remediation plan of
// routerd v1alpha1 and executes it.
//
// Each warn or fail finding maps to one of seven actions (failed-deliveries →
// retry-failed-deliveries, pending-deliveries → investigate-pending-deliveries, stale-ttl
// → force-repush-stale-ttl, delivery-lag → check-peer-connectivity,
// expected-delivery-no-endpoint → configure-peer-endpoint, expected-delivery →
// investigate-missing-delivery-rows, subscription-runs → inspect-failed-subscription-runs).
// The plan is de-duplicated and sorted, so the same store state always gives the same
// bytes.
//
// Two actions are safe and run by themselves (they only re-queue delivery rows):
// retry-failed-deliveries and force-repush-stale-ttl. The others need an operator: they
// have no automatic executor, and Execute only records the operator's approval (with
// the instructions) when the action is approved. Every executed, approved or skipped
// action is appended to the store's audit log.
package remediation

import (
	"slices"
	"strings"

	"routerd.net/routerd/federation/health"
)

// Action names, in the order of the checks they remedy.
const (
	RetryFailedDeliveries          = "retry-failed-deliveries"
	InvestigatePendingDeliveries   = "investigate-pending-deliveries"
	ForceRepushStaleTTL            = "force-repush-stale-ttl"
	CheckPeerConnectivity          = "check-peer-connectivity"
	ConfigurePeerEndpoint          = "configure-peer-endpoint"
	InvestigateMissingDeliveryRows = "investigate-missing-delivery-rows"
	InspectFailedSubscriptionRuns  = "inspect-failed-subscription-runs"
)

// rule is how one check maps to its action.
type rule struct {
	check, action  string
	safe, approval bool
}

// rules lists the seven mappings in plan order.
var rules = []rule{
	{check: health.CheckFailedDeliveries, action: RetryFailedDeliveries, safe: true},
	{check: health.CheckPendingDeliveries, action: InvestigatePendingDeliveries},
	{check: health.CheckStaleTTL, action: ForceRepushStaleTTL, safe: true},
	{check: health.CheckDeliveryLag, action: CheckPeerConnectivity},
	{check: health.CheckExpectedDeliveryNoEndpoint, action: ConfigurePeerEndpoint, approval: true},
	{check: health.CheckExpectedDelivery, action: InvestigateMissingDeliveryRows},
	{check: health.CheckSubscriptionRuns, action: InspectFailedSubscriptionRuns},
}

// Actions lists the seven action names in plan order.
func Actions() []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.action
	}
	return out
}

// ActionFor returns the action that remedies a warn or fail finding of check, or ""
// when the check has none (the store check).
func ActionFor(check string) string {
	if k := slices.IndexFunc(rules, func(r rule) bool { return r.check == check }); k >= 0 {
		return rules[k].action
	}
	return ""
}

// IsAction reports whether name is one of the seven actions.
func IsAction(name string) bool { return slices.Contains(Actions(), name) }

// Action is one step of the plan.
type Action struct {
	// Action is one of the seven action names.
	Action string `json:"action"`
	// Reason is the finding that calls for it: "<check> <severity>: <summary>".
	Reason string `json:"reason"`
	// TargetPeer, TargetGroup and TargetResource say what it applies to.
	TargetPeer     string `json:"targetPeer"`
	TargetGroup    string `json:"targetGroup"`
	TargetResource string `json:"targetResource"`
	// Safe actions only re-queue delivery rows; `remediation run` executes them.
	Safe bool `json:"safe"`
	// RequiresOperatorApproval is set for actions that change the config.
	RequiresOperatorApproval bool `json:"requiresOperatorApproval"`
}

// Plan is the remediation plan.
type Plan struct {
	// Actions are de-duplicated and sorted by group, peer, action (in Actions order) and
	// resource.
	Actions []Action `json:"actions"`
}

// PlanFor maps the warn and fail findings to actions. A finding of a check without an
// action (the store check) contributes nothing. Two findings asking for the same action
// on the same target give one action, with the worse finding's reason.
func PlanFor(findings []health.Finding) Plan {
	type key struct{ action, group, peer, resource string }
	best := map[key]int{} // index into acts
	var acts []Action
	sev := map[string]int{health.SeverityWarn: 1, health.SeverityFail: 2}
	var worst []int
	for _, f := range findings {
		if sev[f.Severity] == 0 {
			continue
		}
		k := slices.IndexFunc(rules, func(r rule) bool { return r.check == f.Check })
		if k < 0 {
			continue
		}
		r := rules[k]
		a := Action{Action: r.action, Reason: f.Check + " " + f.Severity + ": " + f.Summary,
			TargetPeer: f.Peer, TargetGroup: f.Group, TargetResource: f.Resource,
			Safe: r.safe, RequiresOperatorApproval: r.approval}
		id := key{a.Action, a.TargetGroup, a.TargetPeer, a.TargetResource}
		if i, ok := best[id]; ok {
			// Keep the worse finding's reason; between equals, the smaller reason, so
			// that the input order does not matter.
			if s := sev[f.Severity]; s > worst[i] || (s == worst[i] && a.Reason < acts[i].Reason) {
				acts[i], worst[i] = a, s
			}
			continue
		}
		best[id] = len(acts)
		acts = append(acts, a)
		worst = append(worst, sev[f.Severity])
	}
	order := Actions()
	slices.SortFunc(acts, func(a, b Action) int {
		if c := strings.Compare(a.TargetGroup, b.TargetGroup); c != 0 {
			return c
		}
		if c := strings.Compare(a.TargetPeer, b.TargetPeer); c != 0 {
			return c
		}
		if c := slices.Index(order, a.Action) - slices.Index(order, b.Action); c != 0 {
			return c
		}
		return strings.Compare(a.TargetResource, b.TargetResource)
	})
	if acts == nil {
		acts = []Action{}
	}
	return Plan{Actions: acts}
}
