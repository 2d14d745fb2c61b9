package remediation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"routerd.net/routerd/federation/store"
)

// Outcomes of an executed action.
const (
	// OutcomeDone: a safe action ran; Changed says how many rows it re-queued.
	OutcomeDone = "done"
	// OutcomeApproved: a manual action the operator approved; it was recorded with its
	// instructions (there is no automatic executor for it).
	OutcomeApproved = "approved"
	// OutcomeSkipped: a manual action that was not approved.
	OutcomeSkipped = "skipped"
	// OutcomeFailed: the executor or its audit entry failed; Detail says why.
	OutcomeFailed = "failed"
)

// RunOptions configure Execute.
type RunOptions struct {
	// Approve lists the manual actions the operator approved (action names).
	Approve []string
	// Actor is recorded in the audit log (default "routerctl").
	Actor string
	// Now is the time the rows are re-queued at and the audit time (default time.Now()).
	Now time.Time
}

// Result is what happened to one action of the plan.
type Result struct {
	Action
	// Outcome is done, approved, skipped or failed.
	Outcome string `json:"outcome"`
	// Changed counts the delivery rows a safe action re-queued.
	Changed int64 `json:"changed"`
	// Detail explains the outcome: the error, or what the operator has to do.
	Detail string `json:"detail,omitempty"`
}

// instructions says what an operator does for each manual action.
var instructions = map[string]string{
	InvestigatePendingDeliveries:   "check that routerd-eventd runs for the group and look for outbox errors in its log",
	CheckPeerConnectivity:          "check that the peer's routerd-eventd is up and its endpoint is reachable from this node",
	ConfigurePeerEndpoint:          "add or fix the peer's EventPeer spec.endpoint in the config dir and reload",
	InvestigateMissingDeliveryRows: "check that routerd-eventd runs the group with the current config and look for outbox errors in its log",
	InspectFailedSubscriptionRuns:  "inspect `routerctl subscription runs` and the plugin's log, fix the plugin or its input",
}

// Execute runs the plan against st: the safe actions always, the others only when
// approved (recorded, not executed: see the package comment). Every action, whatever its
// outcome, is appended to the audit log as actor, action "remediation.<action>", target
// "<group>/<peer or resource>", outcome and detail. One action failing does not stop the
// others; the error joins every failure.
func Execute(ctx context.Context, st *store.Store, plan Plan, opts RunOptions) ([]Result, error) {
	if opts.Actor == "" {
		opts.Actor = "routerctl"
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	for _, a := range opts.Approve {
		if !IsAction(a) {
			return nil, fmt.Errorf("remediation: --approve %q: not an action; want one of %v", a, Actions())
		}
	}
	results := make([]Result, 0, len(plan.Actions))
	var errs []error
	for _, a := range plan.Actions {
		r := Result{Action: a}
		var err error
		switch {
		case a.Action == RetryFailedDeliveries:
			r.Changed, err = st.RetryFailedDeliveries(ctx, a.TargetGroup, a.TargetPeer, opts.Now)
			r.Detail = fmt.Sprintf("re-queued %d failed deliveries", r.Changed)
		case a.Action == ForceRepushStaleTTL:
			var rr store.RequeueResult
			rr, err = st.ForceRepushStaleTTL(ctx, a.TargetGroup, a.TargetPeer, opts.Now)
			r.Changed = int64(rr.Requeued)
			r.Detail = fmt.Sprintf("re-queued %d stale copies (%d already expired at the peer)", rr.Requeued, rr.Stale)
		case a.Safe:
			err = fmt.Errorf("safe action %s has no executor", a.Action)
		case slices.Contains(opts.Approve, a.Action):
			r.Outcome, r.Detail = OutcomeApproved, "approved by "+opts.Actor+"; to do: "+instructions[a.Action]
		default:
			r.Outcome, r.Detail = OutcomeSkipped, "needs an operator: run again with --approve "+a.Action+" once done ("+instructions[a.Action]+")"
		}
		if err != nil {
			r.Outcome, r.Detail = OutcomeFailed, err.Error()
			errs = append(errs, fmt.Errorf("remediation: %s on %s: %w", a.Action, target(a), err))
		} else if r.Outcome == "" {
			r.Outcome = OutcomeDone
		}
		if aerr := st.AppendAudit(ctx, store.AuditEntry{Time: opts.Now, Actor: opts.Actor, Action: "remediation." + a.Action,
			Target: target(a), Outcome: r.Outcome, Detail: r.Detail + "; reason: " + a.Reason}); aerr != nil {
			errs = append(errs, fmt.Errorf("remediation: audit %s on %s: %w", a.Action, target(a), aerr))
			if r.Outcome != OutcomeFailed {
				r.Detail += " (not audited: " + aerr.Error() + ")"
			}
		}
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

// target names an action's target in the audit log.
func target(a Action) string {
	if a.TargetPeer != "" {
		return a.TargetGroup + "/" + a.TargetPeer
	}
	return a.TargetGroup + "/" + a.TargetResource
}
