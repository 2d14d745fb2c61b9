// Package health runs the federation checks of `routerctl doctor federation` over a
// node's config and its event store, and reports each as a Finding with the check names
// of routerd v1alpha1 (failed-deliveries, pending-deliveries, stale-ttl, delivery-lag,
// expected-delivery-no-endpoint, expected-delivery, subscription-runs).
//
// It works in two steps: Gather reads what the checks need from the store (read-only
// queries, each under its own timeout) into a State, and Check turns a State into
// findings without I/O. federation/slo evaluates the same State against the groups'
// FederationSLOs, and federation/remediation maps the findings to actions.
//
// Nothing here panics or hangs on bad input: a missing or unreadable store, or a query
// that fails or times out, becomes a finding that names the cause.
package health

import (
	"time"

	"routerd.net/routerd/schemas"
)

// Check names (as in routerd v1alpha1), in the order findings are reported.
const (
	CheckFailedDeliveries           = "failed-deliveries"
	CheckPendingDeliveries          = "pending-deliveries"
	CheckStaleTTL                   = "stale-ttl"
	CheckDeliveryLag                = "delivery-lag"
	CheckExpectedDeliveryNoEndpoint = "expected-delivery-no-endpoint"
	CheckExpectedDelivery           = "expected-delivery"
	CheckSubscriptionRuns           = "subscription-runs"
	// CheckStore reports an event store that could not be opened at all.
	CheckStore = "store"
)

// Checks lists the check names in report order.
var Checks = []string{
	CheckStore, CheckFailedDeliveries, CheckPendingDeliveries, CheckStaleTTL, CheckDeliveryLag,
	CheckExpectedDeliveryNoEndpoint, CheckExpectedDelivery, CheckSubscriptionRuns,
}

// Severities of a Finding, from best to worst.
const (
	SeverityOK   = "ok"
	SeverityWarn = "warn"
	SeverityFail = "fail"
)

// Finding is the result of one check for one group, and peer or resource when the
// check is about one.
type Finding struct {
	// Check is one of the Check* names.
	Check string `json:"check"`
	// Severity is ok, warn or fail.
	Severity string `json:"severity"`
	// Group is the EventGroup the finding is about ("" for the store itself).
	Group string `json:"group,omitempty"`
	// Peer is the EventPeer (or the peersFrom name) the finding is about, if any.
	Peer string `json:"peer,omitempty"`
	// Resource is the config resource concerned, as Kind/name.
	Resource string `json:"resource,omitempty"`
	// Summary is one line saying what was found. It holds no ages or times (those are in
	// Detail and Counts), so that the same store state reads the same later.
	Summary string `json:"summary"`
	// Detail explains the cause and the next step.
	Detail string `json:"detail,omitempty"`
	// Counts are the figures the severity was decided on.
	Counts map[string]int64 `json:"counts,omitempty"`
}

// Thresholds are the objectives a group is checked against: its FederationSLO's, with
// the defaults of routerd v1alpha1 for unset fields and for groups without one.
type Thresholds struct {
	// LagWarnSeconds and LagFailSeconds bound the age of the oldest undelivered row.
	LagWarnSeconds int `json:"lagWarnSeconds"`
	LagFailSeconds int `json:"lagFailSeconds"`
	// ExpiresSoonSeconds is the window in which a stale copy at a peer is flagged.
	ExpiresSoonSeconds int `json:"expiresSoonSeconds"`
	// MaxFailedDeliveries is the most failed delivery rows tolerated.
	MaxFailedDeliveries int `json:"maxFailedDeliveries"`
	// PeerFreshnessSeconds is how long a peer may go without a successful delivery while
	// events wait for it.
	PeerFreshnessSeconds int `json:"peerFreshnessSeconds"`
	// MaxPendingRuns is the most waiting subscription runs (0: no limit).
	MaxPendingRuns int `json:"maxPendingRuns"`
	// MaxFailedRuns is the most failing subscription runs tolerated.
	MaxFailedRuns int `json:"maxFailedRuns"`
}

// ThresholdsOf returns the thresholds of slo with defaults applied (slo may be nil: the
// defaults). slo itself is not changed.
func ThresholdsOf(slo *schemas.FederationSLO) Thresholds {
	var o schemas.FederationSLO
	if slo != nil {
		o = *slo
	}
	o.SetDefaults()
	d, s := o.Spec.Delivery, o.Spec.Subscription
	return Thresholds{
		LagWarnSeconds: d.LagWarnSeconds, LagFailSeconds: d.LagFailSeconds,
		ExpiresSoonSeconds: d.ExpiresSoonSeconds, MaxFailedDeliveries: d.MaxFailedDeliveries,
		PeerFreshnessSeconds: d.PeerFreshnessSeconds,
		MaxPendingRuns:       s.MaxPendingRuns, MaxFailedRuns: s.MaxFailedRuns,
	}
}

// SLOOf returns the FederationSLO of group (the first by name when several name it),
// or nil.
func SLOOf(cfg *schemas.Config, group string) *schemas.FederationSLO {
	if cfg == nil {
		return nil
	}
	for _, s := range cfg.FederationSLOs() {
		if s.Spec.GroupRef == group {
			return s
		}
	}
	return nil
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
