package health

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Run gathers the State and checks it: Check(Gather(ctx, in)).
func Run(ctx context.Context, in Input) []Finding {
	return Check(Gather(ctx, in))
}

// Check turns a State into findings: for each group and check, one finding per peer,
// subscription or declared peer with a problem, or one ok finding for the group when
// there is none. A check whose figures could not be read is one fail finding naming the
// cause. Findings are sorted by group, check (in Checks order), peer and resource.
func Check(st State) []Finding {
	var out []Finding
	if st.StoreErr != "" {
		out = append(out, Finding{
			Check: CheckStore, Severity: SeverityFail,
			Summary: "the event store could not be read; only config checks ran",
			Detail: st.StoreErr + ". routerctl reads the store at <state-dir>/routerd.db: pass --state-dir (or ROUTERD_STATE_DIR) " +
				"of the node, and check that routerd-eventd has run there and the file is readable by this user.",
		})
	}
	for i := range st.Groups {
		g := &st.Groups[i]
		checks := []struct {
			name   string
			store  bool
			run    func(*GroupState, time.Time) []Finding
			okLine func(*GroupState) string
		}{
			{CheckFailedDeliveries, true, failedDeliveries, func(g *GroupState) string { return "no failed deliveries" + peersNote(g) }},
			{CheckPendingDeliveries, true, pendingDeliveries, func(g *GroupState) string { return "no overdue deliveries" + peersNote(g) }},
			{CheckStaleTTL, true, staleTTL, func(g *GroupState) string { return "no peer holds a stale TTL near its expiry" + peersNote(g) }},
			{CheckDeliveryLag, true, deliveryLag, func(g *GroupState) string {
				return fmt.Sprintf("no delivery waits longer than %ds", g.Thresholds.LagWarnSeconds) + peersNote(g)
			}},
			{CheckExpectedDeliveryNoEndpoint, false, noEndpoint, func(g *GroupState) string { return "every expected peer has an endpoint" + peersNote(g) }},
			{CheckExpectedDelivery, true, expectedDelivery, func(g *GroupState) string { return "every local event has its delivery rows" + peersNote(g) }},
			{CheckSubscriptionRuns, true, subscriptionRuns, func(g *GroupState) string {
				return fmt.Sprintf("no failing subscription runs (%d subscriptions)", len(g.Subscriptions))
			}},
		}
		for _, c := range checks {
			if c.store && st.StoreErr != "" {
				continue
			}
			if msg, ok := g.Errors[c.name]; ok {
				out = append(out, Finding{Check: c.name, Severity: SeverityFail, Group: g.Name, Resource: "EventGroup/" + g.Name,
					Summary: "could not run the check: the store query failed",
					Detail:  msg + ". Retry; if it persists, look at `routerctl federation stats` and the routerd-eventd log (a busy or damaged store file)."})
				continue
			}
			fs := c.run(g, st.Now)
			if !slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity != SeverityOK }) {
				fs = []Finding{{Check: c.name, Severity: SeverityOK, Group: g.Name, Resource: "EventGroup/" + g.Name, Summary: c.okLine(g)}}
			}
			out = append(out, fs...)
		}
	}
	SortFindings(out)
	return out
}

// SortFindings sorts findings by group, check (in Checks order), peer and resource.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		if c := slices.Index(Checks, a.Check) - slices.Index(Checks, b.Check); c != 0 {
			return c
		}
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return strings.Compare(a.Resource, b.Resource)
	})
}

// Worst returns the worst severity of fs (ok for none).
func Worst(fs []Finding) string {
	w := SeverityOK
	for _, f := range fs {
		switch {
		case f.Severity == SeverityFail:
			return SeverityFail
		case f.Severity == SeverityWarn:
			w = SeverityWarn
		}
	}
	return w
}

func peersNote(g *GroupState) string {
	if len(g.Peers) == 1 {
		return " (1 peer)"
	}
	return fmt.Sprintf(" (%d peers)", len(g.Peers))
}

func peerFinding(check, severity string, g *GroupState, p *PeerState) Finding {
	return Finding{Check: check, Severity: severity, Group: g.Name, Peer: p.Name, Resource: p.Resource}
}

// plural formats n with the singular or plural noun.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// eachPeer runs check on every peer of g and collects the findings it reports (ok).
func eachPeer(g *GroupState, check func(p *PeerState) (f Finding, ok bool)) []Finding {
	var out []Finding
	for i := range g.Peers {
		if f, ok := check(&g.Peers[i]); ok {
			out = append(out, f)
		}
	}
	return out
}

func notConfigured(p *PeerState) string {
	if p.Configured || p.PeersFrom != "" {
		return ""
	}
	return " The peer is no longer an EventPeer of the group: these rows are left from before it was removed."
}

// failedDeliveries: rows the sender gave up on. Over the group's maxFailedDeliveries
// they fail the check, under it they warn.
func failedDeliveries(g *GroupState, _ time.Time) []Finding {
	var total int64
	for _, p := range g.Peers {
		total += p.Failed.Failed
	}
	sev := SeverityWarn
	if total > int64(g.Thresholds.MaxFailedDeliveries) {
		sev = SeverityFail
	}
	return eachPeer(g, func(p *PeerState) (Finding, bool) {
		if p.Failed.Failed == 0 {
			return Finding{}, false
		}
		f := peerFinding(CheckFailedDeliveries, sev, g, p)
		f.Summary = fmt.Sprintf("%s to %s failed (the sender gave up)", plural(p.Failed.Failed, "delivery", "deliveries"), p.Name)
		f.Detail = "Fix the cause, then re-queue them: `routerctl remediation run` (retry-failed-deliveries). " +
			"List them with `routerctl federation deliveries --group " + g.Name + " --peer " + p.Name + " --state failed`."
		if p.Failed.LastError != "" {
			f.Detail = "Last error: " + p.Failed.LastError + ". " + f.Detail
		}
		f.Detail += notConfigured(p)
		f.Counts = map[string]int64{"failed": p.Failed.Failed, "groupFailed": total, "maxFailedDeliveries": int64(g.Thresholds.MaxFailedDeliveries)}
		return f, true
	})
}

// pendingDeliveries: undelivered rows whose next attempt is overdue by more than
// lagWarnSeconds (fail beyond lagFailSeconds): the sender is not working the outbox.
func pendingDeliveries(g *GroupState, now time.Time) []Finding {
	return eachPeer(g, func(p *PeerState) (Finding, bool) {
		b := p.Backlog
		if b.Overdue == 0 {
			return Finding{}, false
		}
		late := now.Sub(b.OldestDue)
		sev := SeverityWarn
		if late >= seconds(g.Thresholds.LagFailSeconds) {
			sev = SeverityFail
		}
		f := peerFinding(CheckPendingDeliveries, sev, g, p)
		f.Summary = fmt.Sprintf("%s to %s overdue by more than %ds", plural(b.Overdue, "delivery", "deliveries"), p.Name, g.Thresholds.LagWarnSeconds)
		f.Detail = fmt.Sprintf("The oldest is overdue by %s. ", late.Round(time.Second)) +
			"The sender has not attempted them: is routerd-eventd running for group " + g.Name + "? " +
			"Check its log and `routerctl federation peers --group " + g.Name + "`." + notConfigured(p)
		f.Counts = map[string]int64{"pending": b.Pending, "retrying": b.Retrying, "overdue": b.Overdue, "overdueSeconds": secs(late)}
		return f, true
	})
}

// staleTTL: peers holding a copy of an event that has since been extended locally, whose
// copy expires within expiresSoonSeconds (warn) or has expired (fail).
func staleTTL(g *GroupState, now time.Time) []Finding {
	return eachPeer(g, func(p *PeerState) (Finding, bool) {
		s := p.Stale
		if s.ExpiringSoon == 0 {
			return Finding{}, false
		}
		sev, what := SeverityWarn, fmt.Sprintf("expiring within %ds", g.Thresholds.ExpiresSoonSeconds)
		if s.ExpiredAtPeer > 0 {
			sev, what = SeverityFail, "already expired"
		}
		f := peerFinding(CheckStaleTTL, sev, g, p)
		f.Summary = fmt.Sprintf("%s at %s of events extended here, %s without a refresh", plural(s.ExpiringSoon, "copy", "copies"), p.Name, what)
		f.Detail = "The peer will drop facts this node still holds. Push the new expiry now: `routerctl remediation run` (force-repush-stale-ttl)." + notConfigured(p)
		f.Counts = map[string]int64{"stale": s.Stale, "expiringSoon": s.ExpiringSoon, "expiredAtPeer": s.ExpiredAtPeer,
			"soonestExpirySeconds": secs(s.SoonestPeerExpiry.Sub(now))}
		return f, true
	})
}

// deliveryLag: the age of a peer's oldest undelivered row against lagWarnSeconds and
// lagFailSeconds.
func deliveryLag(g *GroupState, now time.Time) []Finding {
	return eachPeer(g, func(p *PeerState) (Finding, bool) {
		b := p.Backlog
		if b.Pending+b.Retrying == 0 {
			return Finding{}, false
		}
		lag := now.Sub(b.OldestCreated)
		sev := ""
		switch {
		case lag >= seconds(g.Thresholds.LagFailSeconds):
			sev = SeverityFail
		case lag >= seconds(g.Thresholds.LagWarnSeconds):
			sev = SeverityWarn
		default:
			return Finding{}, false
		}
		f := peerFinding(CheckDeliveryLag, sev, g, p)
		limit := g.Thresholds.LagWarnSeconds
		if sev == SeverityFail {
			limit = g.Thresholds.LagFailSeconds
		}
		f.Summary = fmt.Sprintf("%s for %s, the oldest waiting more than %ds", plural(b.Pending+b.Retrying, "undelivered event", "undelivered events"), p.Name, limit)
		d := []string{fmt.Sprintf("The oldest has waited %s.", lag.Round(time.Second))}
		if b.LastError != "" {
			d = append(d, "Last error: "+b.LastError+".")
		}
		if b.LastSuccess.IsZero() {
			d = append(d, "No delivery to it has ever succeeded.")
		} else {
			d = append(d, fmt.Sprintf("Last success %s ago.", now.Sub(b.LastSuccess).Round(time.Second)))
		}
		target := "it"
		if p.Endpoint != "" {
			target = p.Endpoint
		}
		d = append(d, "Check that the peer's routerd-eventd is up and "+target+" is reachable from this node (`routerctl doctor federation`, `routerctl federation peers`).")
		f.Detail = strings.Join(d, " ") + notConfigured(p)
		f.Counts = map[string]int64{"backlog": b.Pending + b.Retrying, "lagSeconds": secs(lag),
			"lagWarnSeconds": int64(g.Thresholds.LagWarnSeconds), "lagFailSeconds": int64(g.Thresholds.LagFailSeconds)}
		return f, true
	})
}

// noEndpoint: a peer the group expects (spec.peersFrom) with no EventPeer endpoint to
// push to (fail), or an EventPeer without an endpoint while local events match its
// filters (warn: they are never pushed to it).
func noEndpoint(g *GroupState, _ time.Time) []Finding {
	return eachPeer(g, func(p *PeerState) (Finding, bool) {
		if p.Endpoint != "" {
			return Finding{}, false
		}
		switch {
		case p.PeersFrom != "":
			if p.ResourceMissing && p.Optional {
				return Finding{}, false
			}
			f := peerFinding(CheckExpectedDeliveryNoEndpoint, SeverityFail, g, p)
			f.Resource = p.PeersFrom
			f.Summary = fmt.Sprintf("EventGroup %s expects peer %s (spec.peersFrom %s) but nothing can be pushed to it: it has no endpoint", g.Name, p.Name, p.PeersFrom)
			switch {
			case p.Configured:
				f.Detail = fmt.Sprintf("Set spec.endpoint of EventPeer %s to the peer receiver's base URL, e.g. http://<peer>:9470.", p.Name)
			case p.ResourceMissing:
				f.Detail = fmt.Sprintf("The config has no %s. Add it, mark the peersFrom entry optional, or remove it; and give the peer an EventPeer with groupRef %s and spec.endpoint.", p.PeersFrom, g.Name)
			default:
				node := "the peer's node name"
				if p.NodeName != "" {
					node = p.NodeName
				}
				f.Detail = fmt.Sprintf("No EventPeer of group %s stands for it. Add an EventPeer named %s with groupRef %s, nodeName %s and spec.endpoint (the peer receiver's base URL).", g.Name, p.Name, g.Name, node)
			}
			f.Counts = map[string]int64{}
			if p.Missing != nil {
				f.Counts["undeliveredEvents"] = p.Missing.Missing
			}
			return f, true
		case p.Configured && p.Missing != nil && p.Missing.Missing > 0:
			f := peerFinding(CheckExpectedDeliveryNoEndpoint, SeverityWarn, g, p)
			f.Summary = fmt.Sprintf("%s matching the filters of EventPeer %s, which has no endpoint: never pushed to it", plural(p.Missing.Missing, "local event", "local events"), p.Name)
			f.Detail = fmt.Sprintf("If %s should receive them, set its spec.endpoint; if it only pushes to this node, narrow its spec.types/subjectPrefixes or ignore this warning. Examples: %s.",
				p.Name, strings.Join(p.Missing.SampleIDs, ", "))
			f.Counts = map[string]int64{"undeliveredEvents": p.Missing.Missing}
			return f, true
		}
		return Finding{}, false
	})
}

// expectedDelivery: local events a pushing peer's filters accept that have no delivery
// row for it after the sender's grace; fail once the oldest is lagFailSeconds old.
func expectedDelivery(g *GroupState, now time.Time) []Finding {
	return eachPeer(g, func(p *PeerState) (Finding, bool) {
		if p.Endpoint == "" || p.Missing == nil || p.Missing.Missing == 0 {
			return Finding{}, false
		}
		age := now.Sub(p.Missing.OldestStoredAt)
		sev := SeverityWarn
		if age >= seconds(g.Thresholds.LagFailSeconds) {
			sev = SeverityFail
		}
		f := peerFinding(CheckExpectedDelivery, sev, g, p)
		f.Summary = fmt.Sprintf("%s matching the filters of %s without a delivery row for it", plural(p.Missing.Missing, "local event", "local events"), p.Name)
		f.Detail = fmt.Sprintf("The oldest was stored %s ago. ", age.Round(time.Second)) + fmt.Sprintf("The sender has not queued them: check that routerd-eventd runs group %s with this config (EventPeer %s loaded) and its log for outbox errors. Examples: %s.",
			g.Name, p.Name, strings.Join(p.Missing.SampleIDs, ", "))
		f.Counts = map[string]int64{"missing": p.Missing.Missing, "scanned": p.Missing.Scanned, "oldestSeconds": secs(age)}
		return f, true
	})
}

// subscriptionRuns: subscriptions whose latest runs failed (fail beyond maxFailedRuns)
// or with more waiting runs than maxPendingRuns (warn).
func subscriptionRuns(g *GroupState, _ time.Time) []Finding {
	var out []Finding
	t := g.Thresholds
	for _, s := range g.Subscriptions {
		r := s.Runs
		failing := r.Failing > 0
		waiting := t.MaxPendingRuns > 0 && r.Waiting > int64(t.MaxPendingRuns)
		if !failing && !waiting {
			continue
		}
		sev := SeverityWarn
		if r.Failing > int64(t.MaxFailedRuns) {
			sev = SeverityFail
		}
		f := Finding{Check: CheckSubscriptionRuns, Severity: sev, Group: g.Name, Resource: "EventSubscription/" + s.Name}
		switch {
		case failing:
			f.Summary = fmt.Sprintf("subscription %s: its last %s failed", s.Name, plural(r.Failing, "run", "runs"))
			f.Detail = "Last error: " + r.LastError + ". Inspect them with `routerctl subscription runs " + s.Name + "` and the plugin's log."
		default:
			f.Summary = fmt.Sprintf("subscription %s: %d runs waiting (objective: at most %d)", s.Name, r.Waiting, t.MaxPendingRuns)
			f.Detail = "The plugin is not keeping up; inspect `routerctl subscription runs " + s.Name + "`."
		}
		f.Counts = map[string]int64{"failing": r.Failing, "waiting": r.Waiting, "runs": r.Runs,
			"maxFailedRuns": int64(t.MaxFailedRuns), "maxPendingRuns": int64(t.MaxPendingRuns)}
		out = append(out, f)
	}
	return out
}
