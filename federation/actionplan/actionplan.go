// Package actionplan runs provider action plans end to end: the planner plugins' plan
// hook over the live claims, the ProviderActionPolicy gate on every plan, the plans'
// states in the store (refused, proposed, approved, executing, executed, failed, undone)
// with an audit entry per decision, and the gated execution of an approved plan by the
// executor plugin through the host's provider_request — bound to that one plan, so the
// plugin can change nothing the operator did not approve, and never holding a
// credential.
//
// The daemon and `routerctl actionplan` call the same Service: Plan after the claims
// changed, Approve/Reject for an operator, Execute/Undo for an approved (or executed)
// plan. A plan's id is its idempotency key: planning the same claim state again finds
// the same row, and a plan executes at most once (executed is final but for its undo).
package actionplan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/retry"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/gate"
	"routerd.net/routerd/schemas"
)

// Caller runs a plugin hook (the host).
type Caller interface {
	Call(ctx context.Context, name string, hook abi.Hook, input []byte) ([]byte, error)
}

// Plugin is a plugin the daemon runs with the plan or execute hook.
type Plugin struct {
	// Name is the Plugin resource's name.
	Name string
	// Plan and Execute say which hooks are enabled.
	Plan, Execute bool
	// ProfileRefs are the profiles its grant lets it use (grants.providerRequest): an
	// executor runs the plans of these profiles.
	ProfileRefs []string
}

// Config is what a run needs of the configuration and the live state.
type Config struct {
	// Plugins are the provider plugins.
	Plugins []Plugin
	// Policies are the ProviderActionPolicies.
	Policies []*schemas.ProviderActionPolicy
	// Resources are the plan context: the live RemoteAddressClaims (static and
	// dynamic), the CloudProviderProfiles and the AddressMobilityDomains.
	Resources []json.RawMessage
	// ProfileNICs lists, per profile, the NICs plans may target (empty: any).
	ProfileNICs map[string][]string
}

// ConfigFrom builds the policies and the plan context from the merged configuration
// (static resources plus live dynamic claims).
func ConfigFrom(objs []schemas.Object, plugins []Plugin) (Config, error) {
	c := Config{Plugins: plugins}
	for _, o := range objs {
		switch v := o.(type) {
		case *schemas.ProviderActionPolicy:
			c.Policies = append(c.Policies, v)
		case *schemas.RemoteAddressClaim, *schemas.CloudProviderProfile, *schemas.AddressMobilityDomain:
			if p, ok := v.(*schemas.CloudProviderProfile); ok && len(p.Spec.NICs) > 0 {
				if c.ProfileNICs == nil {
					c.ProfileNICs = map[string][]string{}
				}
				c.ProfileNICs[p.Metadata.Name] = p.Spec.NICs
			}
			raw, err := json.Marshal(v)
			if err != nil {
				return Config{}, fmt.Errorf("actionplan: %s/%s: %w", o.GetKind(), o.GetName(), err)
			}
			c.Resources = append(c.Resources, raw)
		}
	}
	return c, nil
}

// Options configure a Service.
type Options struct {
	// Store keeps the plans and the audit log (required).
	Store *store.Store
	// Plugins runs plan and execute hooks (required).
	Plugins Caller
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per decision (default: discard).
	Logger *slog.Logger
	// MeterProvider receives routerd_actionplan_decisions_total (default: no-op).
	MeterProvider metric.MeterProvider
	// Retry is the schedule of automatic retries of a failure the provider or host
	// called retryable (default DefaultRetry); Attempts bounds the executions of a plan.
	Retry retry.Policy
}

// DefaultRetry retries a retryable failure after 30 s, 1 min, 2 min, ..., at most 10 min
// apart, up to 5 executions of one plan.
var DefaultRetry = retry.Policy{Base: 30 * time.Second, Max: 10 * time.Minute, Jitter: 0.2, Attempts: 5}

// Service plans, gates, approves and executes provider action plans.
type Service struct {
	opts      Options
	mu        sync.Mutex // one plan run or execution at a time
	decisions metric.Int64Counter
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = noop.NewMeterProvider()
	}
	if opts.Retry.Base == 0 {
		opts.Retry = DefaultRetry
	}
	s := &Service{opts: opts}
	s.decisions, _ = opts.MeterProvider.Meter("routerd/actionplan").Int64Counter("routerd_actionplan_decisions_total",
		metric.WithDescription("Action plan decisions by outcome (refused, proposed, approved, executed, failed, undone) and the refusing rule"))
	return s
}

// count records one decision: its outcome and, for a refusal, the rule.
func (s *Service) count(ctx context.Context, outcome, rule, provider string) {
	s.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome), attribute.String("rule", rule),
		attribute.String("provider", provider)))
}

// Actors recorded for decisions routerd makes by itself.
const (
	ActorGate    = "gate"
	ActorPlanner = "planner"
	ActorRetry   = "routerd (retry)"
)

// Rules the executor adds to the gate's (see gate.Rule*).
const (
	// RuleDryRunOnly: the allowing policy is dryRunOnly; nothing is executed.
	RuleDryRunOnly = "dry-run-only"
	// RulePreconditions: a precondition of the plan no longer holds.
	RulePreconditions = "preconditions"
)

// Decision is what happened to one plan of a run.
type Decision struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
	// Rule and Reason are set when the gate refused the plan.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Report is the outcome of a plan run.
type Report struct {
	Decisions []Decision `json:"decisions"`
	// Skipped are the planners' lines about documents they could not use.
	Skipped []string `json:"skipped,omitempty"`
}

// Plan runs every planner over cfg and stores each plan by the gate's decision: refused
// (with the rule), proposed (an operator approves it) or approved (the policy
// auto-approves its action; executed right away when the policy is not dryRunOnly).
// Plans a planner no longer proposes are rejected as superseded.
func (s *Service) Plan(ctx context.Context, cfg Config) (Report, error) {
	rep, toExecute, err := s.plan(ctx, cfg)
	if err != nil {
		return rep, err
	}
	for _, id := range toExecute {
		if _, err := s.Execute(ctx, cfg, id, ActorGate, false); err != nil {
			s.opts.Logger.Warn("actionplan: auto-approved plan not executed", "plan", id, "err", err)
		}
	}
	return rep, nil
}

// plan is Plan's planning half, under the lock: it returns the auto-approved plans to
// execute.
func (s *Service) plan(ctx context.Context, cfg Config) (Report, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	observed, err := s.Observations(ctx)
	if err != nil {
		return Report{}, nil, err
	}
	res := slices.Clone(cfg.Resources)
	for _, o := range observed {
		doc, err := json.Marshal(map[string]any{"apiVersion": schemas.HybridAPIVersion, "kind": abi.KindProviderObservation,
			"metadata": map[string]string{"name": o.ProviderRef + "-" + o.NIC}, "spec": o})
		if err != nil {
			return Report{}, nil, err
		}
		res = append(res, doc)
	}
	req := abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerPlan, Topic: "provider"}, Now: now, Context: abi.RequestContext{Resources: res}}}
	in, err := json.Marshal(req)
	if err != nil {
		return Report{}, nil, err
	}
	var rep Report
	var toExecute []string
	executions := map[string]int{} // per provider, in the hour before now: read once per run
	for _, pl := range cfg.Plugins {
		if !pl.Plan {
			continue
		}
		out, err := s.opts.Plugins.Call(ctx, pl.Name, abi.HookPlan, in)
		if err != nil {
			return rep, nil, fmt.Errorf("actionplan: planner %s: %w", pl.Name, err)
		}
		var result abi.Result
		if err := json.Unmarshal(out, &result); err != nil {
			return rep, nil, fmt.Errorf("actionplan: planner %s: result: %w", pl.Name, err)
		}
		for _, e := range result.Status.Events {
			rep.Skipped = append(rep.Skipped, pl.Name+": "+e.Message)
		}
		source := "Plugin/" + pl.Name
		seen := map[string]bool{}
		for _, p := range result.Status.ActionPlans {
			recent, ok := executions[p.Provider]
			if !ok {
				if recent, err = s.opts.Store.ProviderExecutionsSince(ctx, p.Provider, now.Add(-time.Hour)); err != nil {
					return rep, nil, err
				}
				executions[p.Provider] = recent
			}
			d, execute, err := s.propose(ctx, cfg, source, p, len(toExecute), recent, now)
			if err != nil {
				return rep, nil, err
			}
			seen[d.ID] = true
			rep.Decisions = append(rep.Decisions, d)
			if execute {
				toExecute = append(toExecute, d.ID)
			}
		}
		if err := s.supersede(ctx, source, seen); err != nil {
			return rep, nil, err
		}
	}
	return rep, toExecute, nil
}

// propose gates one plan (recent: the provider's executions in the last hour) and stores
// it; execute is true for an auto-approved plan whose policy allows execution.
func (s *Service) propose(ctx context.Context, cfg Config, source string, p abi.ActionPlan, runIndex, recent int, now time.Time) (Decision, bool, error) {
	id := p.IdempotencyKey
	if id == "" {
		id = p.Name
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return Decision{}, false, err
	}
	rec := store.ActionPlanRecord{ID: id, Name: p.Name, Provider: p.Provider, Action: p.Action, Target: p.Parameters[abi.ParamNIC],
		RiskLevel: p.RiskLevel, IdempotencyKey: p.IdempotencyKey, Source: source, Document: doc}
	dec := gate.Check(cfg.Policies, gate.Request{Plan: p, Now: now, RunIndex: runIndex, ExecutionsLastHour: recent,
		ProfileNICs: cfg.ProfileNICs[p.ProviderRef]})
	d := Decision{ID: id, Name: p.Name, Rule: dec.Rule, Reason: dec.Reason}
	if !dec.Allowed {
		rec.State, rec.Result = store.PlanRefused, dec.Rule+": "+dec.Reason
	}
	created, err := s.opts.Store.ProposeActionPlan(ctx, rec)
	if err != nil {
		return d, false, err
	}
	cur, err := s.opts.Store.GetActionPlan(ctx, id)
	if err != nil {
		return d, false, err
	}
	prevState := cur.State
	switch {
	case !dec.Allowed && cur.State == store.PlanProposed:
		cur, err = s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: store.PlanRefused, Actor: ActorGate,
			Result: rec.Result, Detail: rec.Result})
	case dec.Allowed && cur.State == store.PlanRefused:
		cur, err = s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: store.PlanProposed, Actor: ActorGate,
			Detail: "allowed by ProviderActionPolicy " + dec.Policy})
	}
	if err != nil {
		return d, false, err
	}
	execute := false
	if dec.Allowed && !dec.NeedsApproval && cur.State == store.PlanProposed {
		cur, err = s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: store.PlanApproved, Actor: "policy/" + dec.Policy,
			Detail: "autoApproveActions lists " + p.Action})
		if err != nil {
			return d, false, err
		}
		execute = !dec.DryRunOnly
	}
	d.State = cur.State
	if created || cur.State != prevState {
		s.count(ctx, cur.State, d.Rule, p.Provider)
	}
	if created || d.Rule != "" {
		s.opts.Logger.Info("actionplan: planned", "plan", p.Name, "id", id, "state", d.State, "rule", d.Rule)
	}
	return d, execute, nil
}

// supersede rejects the open plans of source that the planner no longer proposes.
func (s *Service) supersede(ctx context.Context, source string, seen map[string]bool) error {
	open, err := s.opts.Store.ListActionPlans(ctx, store.ActionPlanFilter{Source: source,
		States: []string{store.PlanProposed, store.PlanApproved, store.PlanRefused, store.PlanFailed}})
	if err != nil {
		return err
	}
	for _, p := range open {
		if seen[p.ID] {
			continue
		}
		if _, err := s.opts.Store.TransitionActionPlan(ctx, p.ID, store.PlanTransition{To: store.PlanRejected, Actor: ActorPlanner,
			Detail: "superseded: the planner no longer proposes this plan for the current claims"}); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// Approve records an operator's approval of a proposed, refused or failed plan.
func (s *Service) Approve(ctx context.Context, id, actor, reason string) (store.ActionPlanRecord, error) {
	return s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: store.PlanApproved, Actor: actor, Detail: reason})
}

// Reject records an operator's rejection.
func (s *Service) Reject(ctx context.Context, id, actor, reason string) (store.ActionPlanRecord, error) {
	return s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: store.PlanRejected, Actor: actor, Detail: reason})
}

// ErrRefused is returned (wrapped, naming the rule) when the gate or a precondition
// refuses an execution; the plan is then stored as refused.
var ErrRefused = errors.New("refused")

// Execute runs an approved plan (undo false) or the undo of an executed plan (undo
// true): the gate is asked again (the policy or the budget may have changed; a
// dryRunOnly policy refuses), the plan's preconditions are checked against the current
// claims and what the host knows of the NIC, then the executor plugin granted the plan's
// profile runs it with provider_request bound to the plan. The outcome is stored with the
// plan (executed, failed with retryable or not, undone) and audited.
//
// # Errors
//
// ErrRefused (the plan is refused and stored so), store.ErrConflict (the plan is not in
// a state that allows it), or a missing executor.
func (s *Service) Execute(ctx context.Context, cfg Config, id, actor string, undo bool) (store.ActionPlanRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.opts.Store.GetActionPlan(ctx, id)
	if err != nil {
		return rec, err
	}
	var p abi.ActionPlan
	if err := json.Unmarshal(rec.Document, &p); err != nil {
		return rec, fmt.Errorf("actionplan %s: document: %w", id, err)
	}
	want, running, done := store.PlanApproved, store.PlanExecuting, store.PlanExecuted
	if undo {
		want, running, done = store.PlanExecuted, store.PlanUndoing, store.PlanUndone
	}
	if rec.State != want {
		return rec, fmt.Errorf("actionplan %s is %s; %s needs %s: %w", id, rec.State, map[bool]string{false: "execute", true: "undo"}[undo], want, store.ErrConflict)
	}
	now := s.opts.Now()
	recent, err := s.opts.Store.ProviderExecutionsSince(ctx, p.Provider, now.Add(-time.Hour))
	if err != nil {
		return rec, err
	}
	dec := gate.Check(cfg.Policies, gate.Request{Plan: p, Undo: undo, Now: now, ExecutionsLastHour: recent,
		ProfileNICs: cfg.ProfileNICs[p.ProviderRef]})
	rule, reason := dec.Rule, dec.Reason
	if dec.Allowed && dec.DryRunOnly {
		rule, reason = RuleDryRunOnly, "ProviderActionPolicy "+dec.Policy+" has dryRunOnly (the default): the plan is shown, not executed; set spec.dryRunOnly: false to execute"
	}
	run := p
	if undo {
		run, _ = p.UndoPlan() // the gate refused a plan without undo
	}
	if rule == "" {
		observed, err := s.Observations(ctx)
		if err != nil {
			return rec, err
		}
		if why := unmet(p, undo, cfg.Resources, observed); why != "" {
			rule, reason = RulePreconditions, why
		}
	}
	if rule != "" {
		return s.refuse(ctx, rec, undo, rule, reason)
	}
	executor := executorFor(cfg.Plugins, p.ProviderRef)
	if executor == "" {
		return rec, fmt.Errorf("actionplan %s: no plugin with the execute hook is granted profile %s (grants.providerRequest.profileRefs)", id, p.ProviderRef)
	}
	if rec, err = s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: running, Actor: actor,
		Detail: "executor " + executor + ", policy " + dec.Policy}); err != nil {
		return rec, err
	}
	result := s.call(ctx, executor, run, now)
	to, detail := done, result.Outcome+": "+result.Message
	if result.Outcome == abi.ActionFailed {
		to = store.PlanFailed
		if undo {
			to = store.PlanExecuted
		}
	}
	out, _ := json.Marshal(result)
	s.opts.Logger.Info("actionplan: executed", "plan", p.Name, "id", id, "undo", undo, "outcome", result.Outcome)
	if to == done || to == store.PlanFailed {
		s.count(ctx, to, "", p.Provider)
	}
	return s.opts.Store.TransitionActionPlan(ctx, id, store.PlanTransition{To: to, Actor: actor, Result: string(out), Detail: detail})
}

// refuse stores an execution the gate or a precondition refused.
func (s *Service) refuse(ctx context.Context, rec store.ActionPlanRecord, undo bool, rule, reason string) (store.ActionPlanRecord, error) {
	err := fmt.Errorf("actionplan %s: %w by rule %s: %s", rec.ID, ErrRefused, rule, reason)
	if undo { // an executed plan stays executed; the refusal is audited
		if aerr := s.opts.Store.AppendAudit(ctx, store.AuditEntry{Actor: ActorGate, Action: "actionplan.undo-refused", Target: rec.ID,
			Outcome: rule, Detail: reason}); aerr != nil {
			return rec, aerr
		}
		return rec, err
	}
	s.count(ctx, store.PlanRefused, rule, rec.Provider)
	r, terr := s.opts.Store.TransitionActionPlan(ctx, rec.ID, store.PlanTransition{To: store.PlanRefused, Actor: ActorGate,
		Result: rule + ": " + reason, Detail: rule + ": " + reason})
	if terr != nil {
		return rec, terr
	}
	return r, err
}

// call runs the execute hook; a failure of the call itself (trap, timeout, bad output)
// is a retryable failed outcome.
func (s *Service) call(ctx context.Context, executor string, p abi.ActionPlan, now time.Time) abi.ActionResult {
	fail := func(msg string) abi.ActionResult {
		return abi.ActionResult{Name: p.Name, IdempotencyKey: p.IdempotencyKey, Outcome: abi.ActionFailed, Message: msg,
			Attributes: map[string]string{"errorCode": "plugin_error", "retryable": "true"}}
	}
	req := abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerExecute, Topic: p.Name}, Now: now, ActionPlan: &p}}
	in, err := json.Marshal(req)
	if err != nil {
		return fail(err.Error())
	}
	out, err := s.opts.Plugins.Call(provider.WithPlan(ctx, p), executor, abi.HookExecute, in)
	if err != nil {
		return fail("execute hook of " + executor + ": " + err.Error())
	}
	var res abi.Result
	if err := json.Unmarshal(out, &res); err != nil || len(res.Status.ActionResults) != 1 {
		return fail("execute hook of " + executor + ": want one actionResult")
	}
	r := res.Status.ActionResults[0]
	switch r.Outcome {
	case abi.ActionSucceeded, abi.ActionSkipped, abi.ActionFailed:
		return r
	}
	return fail("execute hook of " + executor + ": unknown outcome " + r.Outcome)
}

// executorFor returns the first plugin (by name) with the execute hook granted profile.
func executorFor(plugins []Plugin, profile string) string {
	names := []string{}
	for _, p := range plugins {
		if p.Execute && slices.Contains(p.ProfileRefs, profile) {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// Observations are what the host knows of the providers' NICs: the addresses its
// executed (and not undone) plans added, in execution order. Routerd does not read the
// NICs from the providers yet, so an address changed outside routerd is not seen.
func (s *Service) Observations(ctx context.Context) ([]abi.ProviderObservationSpec, error) {
	plans, err := s.opts.Store.ListActionPlans(ctx, store.ActionPlanFilter{States: []string{store.PlanExecuted, store.PlanUndoing, store.PlanUndone}})
	if err != nil {
		return nil, err
	}
	type key struct{ ref, nic string }
	type change struct {
		at   time.Time
		key  key
		addr string
		add  bool
	}
	var changes []change
	providers := map[key]string{}
	for _, r := range plans {
		var p abi.ActionPlan
		if json.Unmarshal(r.Document, &p) != nil || r.ExecutedAt.IsZero() || !succeeded(r.Result) {
			continue
		}
		k := key{p.ProviderRef, p.Parameters[abi.ParamNIC]}
		providers[k] = p.Provider
		c := change{at: r.ExecutedAt, key: k, addr: p.Parameters[abi.ParamAddress], add: adds(p.Action)}
		changes = append(changes, c)
		if r.State == store.PlanUndone {
			c.at, c.add = r.UpdatedAt, !c.add
			changes = append(changes, c)
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].at.Before(changes[j].at) })
	state := map[key][]string{}
	last := map[key]time.Time{}
	for _, c := range changes {
		k := c.key
		addrs := slices.DeleteFunc(state[k], func(a string) bool { return a == c.addr })
		if c.add {
			addrs = append(addrs, c.addr)
		}
		state[k], last[k] = addrs, c.at
	}
	out := make([]abi.ProviderObservationSpec, 0, len(state))
	for k, addrs := range state {
		slices.Sort(addrs)
		out = append(out, abi.ProviderObservationSpec{Provider: providers[k], ProviderRef: k.ref, NIC: k.nic, PrivateIPs: addrs,
			ObservedAt: last[k].UTC().Format(time.RFC3339Nano)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProviderRef+out[i].NIC < out[j].ProviderRef+out[j].NIC })
	return out, nil
}

// succeeded reports whether a stored result is a succeeded or skipped outcome.
func succeeded(result string) bool {
	var r abi.ActionResult
	return json.Unmarshal([]byte(result), &r) == nil && (r.Outcome == abi.ActionSucceeded || r.Outcome == abi.ActionSkipped)
}

// adds reports whether an action adds an address to a NIC.
func adds(action string) bool {
	return action == abi.ActionAssignSecondaryIP || action == abi.ActionCreatePrivateIP
}

// unmet returns why a precondition of p no longer holds ("" when all hold). An undo
// checks only that the address is where the plan put it.
func unmet(p abi.ActionPlan, undo bool, resources []json.RawMessage, observed []abi.ProviderObservationSpec) string {
	nic, addr := p.Parameters[abi.ParamNIC], p.Parameters[abi.ParamAddress]
	present := false
	for _, o := range observed {
		if o.ProviderRef == p.ProviderRef && o.NIC == nic && slices.Contains(o.PrivateIPs, addr) {
			present = true
		}
	}
	if undo {
		if present != adds(p.Action) {
			return fmt.Sprintf("undo of %s: %s is not as the plan left it on %s", p.Name, addr, nic)
		}
		return ""
	}
	for _, pc := range p.Preconditions {
		switch pc.Name {
		case abi.PreconditionAddressAbsent:
			if present {
				return fmt.Sprintf("%s: %s is already on %s", pc.Name, addr, nic)
			}
		case abi.PreconditionAddressPresent:
			if !present {
				return fmt.Sprintf("%s: %s is not on %s", pc.Name, addr, nic)
			}
		case abi.PreconditionClaim:
			if got := claimOwner(resources, pc.Target); got != pc.Expect {
				return fmt.Sprintf("%s: the live claim for %s has ownerSide %s, the plan was made for %s", pc.Name, pc.Target, got, pc.Expect)
			}
		}
	}
	return ""
}

// claimOwner returns the ownerSide of the live claim for address, "absent" without one.
func claimOwner(resources []json.RawMessage, address string) string {
	for _, raw := range resources {
		var doc struct {
			Kind string `json:"kind"`
			Spec struct {
				Address, OwnerSide string
			} `json:"spec"`
		}
		if json.Unmarshal(raw, &doc) != nil || doc.Kind != "RemoteAddressClaim" || bare(doc.Spec.Address) != address {
			continue
		}
		if doc.Spec.OwnerSide == "" {
			return "onprem"
		}
		return doc.Spec.OwnerSide
	}
	return "absent"
}

func bare(address string) string {
	a := strings.TrimSpace(address)
	if p, err := netip.ParsePrefix(a); err == nil {
		return p.Addr().String()
	}
	return a
}

// RetryDue executes again, as actor "routerd (retry)", every failed plan whose last
// failure was retryable (a timeout, 5xx, throttling, a failed plugin call) once the retry
// policy's wait since that failure has passed, up to the policy's Attempts executions of
// one plan. A final failure waits for an operator. It returns the plans it retried.
func (s *Service) RetryDue(ctx context.Context, cfg Config) ([]store.ActionPlanRecord, error) {
	failed, err := s.opts.Store.ListActionPlans(ctx, store.ActionPlanFilter{States: []string{store.PlanFailed}})
	if err != nil {
		return nil, err
	}
	var out []store.ActionPlanRecord
	now := s.opts.Now()
	var attemptsOf map[string]int // executions per plan, from the audit log, read once
	for _, p := range failed {
		var r abi.ActionResult
		if json.Unmarshal([]byte(p.Result), &r) != nil || r.Attributes["retryable"] != "true" {
			continue
		}
		if attemptsOf == nil {
			runs, err := s.opts.Store.ListAudit(ctx, store.AuditFilter{Action: "actionplan." + store.PlanExecuting})
			if err != nil {
				return out, err
			}
			attemptsOf = map[string]int{}
			for _, a := range runs {
				attemptsOf[a.Target]++
			}
		}
		attempts := attemptsOf[p.ID]
		if s.opts.Retry.Attempts > 0 && attempts >= s.opts.Retry.Attempts {
			continue
		}
		if now.Before(p.UpdatedAt.Add(s.opts.Retry.Delay(attempts - 1))) {
			continue
		}
		if _, err := s.opts.Store.TransitionActionPlan(ctx, p.ID, store.PlanTransition{To: store.PlanApproved, Actor: ActorRetry,
			Detail: fmt.Sprintf("retry %d of %d after a retryable failure: %s", attempts, s.opts.Retry.Attempts, r.Message)}); err != nil {
			return out, err
		}
		rec, err := s.Execute(ctx, cfg, p.ID, ActorRetry, false)
		if err != nil && !errors.Is(err, ErrRefused) {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}
