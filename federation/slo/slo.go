// Package slo evaluates each event group's FederationSLO against the node's store into
// the SLO report of routerd v1alpha1:
//
//	federation.slo.groups[{group, defined, thresholds, violations[{check, threshold, actual, severity}]}]
//
// A group is judged only by its own objectives and its own figures: a fault in one group
// never shows up as a violation of another. Groups without a FederationSLO are listed
// with defined: false and no violations (routerctl doctor still checks them against the
// defaults).
package slo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"routerd.net/routerd/federation/health"
)

// Checks of a violation besides the health check names: peer freshness and waiting
// subscription runs are objectives with no doctor check of their own.
const (
	CheckPeerFreshness          = "peer-freshness"
	CheckSubscriptionPendingRun = "subscription-pending-runs"
)

// Report is the SLO report.
type Report struct {
	Federation Federation `json:"federation"`
}

// Federation holds the federation part of the report.
type Federation struct {
	SLO Groups `json:"slo"`
}

// Groups lists every configured event group.
type Groups struct {
	// Groups are sorted by name.
	Groups []Group `json:"groups"`
}

// Group is one event group's evaluation.
type Group struct {
	// Group is the EventGroup name.
	Group string `json:"group"`
	// Defined is set when a FederationSLO names the group.
	Defined bool `json:"defined"`
	// Thresholds are the SLO's objectives with defaults applied (absent when not
	// defined).
	Thresholds *health.Thresholds `json:"thresholds,omitempty"`
	// Violations are the objectives not met, in a fixed check order.
	Violations []Violation `json:"violations"`
}

// Violation is one objective not met.
type Violation struct {
	// Check names the objective: a health check name, peer-freshness or
	// subscription-pending-runs.
	Check string `json:"check"`
	// Threshold is the objective's limit and Actual the measured value, in the unit of
	// the objective (seconds or a count).
	Threshold float64 `json:"threshold"`
	Actual    float64 `json:"actual"`
	// Severity is warn or fail.
	Severity string `json:"severity"`
}

// Evaluate judges each group of st against its FederationSLO. The error (the report is
// complete otherwise) names the groups and checks whose figures could not be read, so a
// missing violation is never mistaken for a met objective.
func Evaluate(st health.State) (Report, error) {
	r := Report{Federation: Federation{SLO: Groups{Groups: []Group{}}}}
	var errs []error
	for i := range st.Groups {
		g := &st.Groups[i]
		out := Group{Group: g.Name, Defined: g.SLO != "", Violations: []Violation{}}
		if out.Defined {
			t := g.Thresholds
			out.Thresholds = &t
			out.Violations = violations(g, st.Now)
			switch {
			case st.StoreErr != "":
				errs = append(errs, fmt.Errorf("group %s: store not readable: %s", g.Name, st.StoreErr))
			case len(g.Errors) > 0:
				checks := make([]string, 0, len(g.Errors))
				for c := range g.Errors {
					checks = append(checks, c)
				}
				slices.Sort(checks)
				for _, c := range checks {
					errs = append(errs, fmt.Errorf("group %s: %s not evaluated: %s", g.Name, c, g.Errors[c]))
				}
			}
		}
		r.Federation.SLO.Groups = append(r.Federation.SLO.Groups, out)
	}
	slices.SortFunc(r.Federation.SLO.Groups, func(a, b Group) int {
		switch {
		case a.Group < b.Group:
			return -1
		case a.Group > b.Group:
			return 1
		}
		return 0
	})
	return r, errors.Join(errs...)
}

// Violated reports whether any group has a violation of severity fail (fail) or warn
// (warn only); "ok" otherwise.
func (r Report) Violated() string {
	w := health.SeverityOK
	for _, g := range r.Federation.SLO.Groups {
		for _, v := range g.Violations {
			if v.Severity == health.SeverityFail {
				return health.SeverityFail
			}
			w = health.SeverityWarn
		}
	}
	return w
}

// round keeps three decimals, so that the report of the same state is the same bytes.
func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func secs(d time.Duration) float64 { return round(d.Seconds()) }

// violations evaluates one group's objectives.
func violations(g *health.GroupState, now time.Time) []Violation {
	t := g.Thresholds
	out := []Violation{}
	add := func(check string, threshold, actual float64, sev string) {
		out = append(out, Violation{Check: check, Threshold: threshold, Actual: actual, Severity: sev})
	}

	// Per peer: the oldest undelivered row (delivery-lag), failed rows, the soonest
	// stale copy, and the time since the last success while events wait.
	var lag time.Duration
	var failed int64
	var stale *time.Time
	var unfresh time.Duration
	for _, p := range g.Peers {
		b := p.Backlog
		failed += p.Failed.Failed
		if p.Stale.ExpiringSoon > 0 && (stale == nil || p.Stale.SoonestPeerExpiry.Before(*stale)) {
			s := p.Stale.SoonestPeerExpiry
			stale = &s
		}
		if b.Pending+b.Retrying == 0 {
			continue
		}
		lag = max(lag, now.Sub(b.OldestCreated))
		// peer-freshness: how long a peer has gone without a success while events
		// wait for it (a peer with nothing to deliver cannot have successes, so the
		// clock starts at its oldest waiting row when that is later).
		since := b.LastSuccess
		if since.Before(b.OldestCreated) {
			since = b.OldestCreated
		}
		unfresh = max(unfresh, now.Sub(since))
	}
	switch {
	case lag >= time.Duration(t.LagFailSeconds)*time.Second:
		add(health.CheckDeliveryLag, float64(t.LagFailSeconds), secs(lag), health.SeverityFail)
	case lag > 0 && lag >= time.Duration(t.LagWarnSeconds)*time.Second:
		add(health.CheckDeliveryLag, float64(t.LagWarnSeconds), secs(lag), health.SeverityWarn)
	}
	if failed > int64(t.MaxFailedDeliveries) {
		add(health.CheckFailedDeliveries, float64(t.MaxFailedDeliveries), float64(failed), health.SeverityFail)
	}
	if stale != nil {
		left := stale.Sub(now)
		sev := health.SeverityWarn
		if left <= 0 {
			sev = health.SeverityFail
		}
		add(health.CheckStaleTTL, float64(t.ExpiresSoonSeconds), secs(left), sev)
	}
	if unfresh > time.Duration(t.PeerFreshnessSeconds)*time.Second {
		add(CheckPeerFreshness, float64(t.PeerFreshnessSeconds), secs(unfresh), health.SeverityFail)
	}

	var failing, waiting int64
	for _, s := range g.Subscriptions {
		failing += s.Runs.Failing
		waiting += s.Runs.Waiting
	}
	if failing > int64(t.MaxFailedRuns) {
		add(health.CheckSubscriptionRuns, float64(t.MaxFailedRuns), float64(failing), health.SeverityFail)
	}
	if t.MaxPendingRuns > 0 && waiting > int64(t.MaxPendingRuns) {
		add(CheckSubscriptionPendingRun, float64(t.MaxPendingRuns), float64(waiting), health.SeverityWarn)
	}
	return out
}
