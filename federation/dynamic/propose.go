package dynamic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

// ReasonCheckFailed is the rejection reason of a resource refused by Config.Check (unless
// the check's error names its own reason, see RejectReasoner).
const ReasonCheckFailed = "check_failed"

// CheckFunc is a semantic check of one proposed resource (already decoded, allowed by
// Kind and policy, annotations stamped) before it becomes a part: for example against the
// static configuration and the other live parts. A non-nil error rejects the resource.
type CheckFunc func(obj schemas.Object) error

// RejectReasoner is implemented by a CheckFunc error that names its rejection reason
// (otherwise the reason is ReasonCheckFailed).
type RejectReasoner interface {
	RejectReason() string
}

// Rejection is a proposed resource (or directive) that does not become a part.
type Rejection struct {
	// Target is "Kind/name" of the resource ("(undecodable resource)" when it has none).
	Target string `json:"resource"`
	// Reason is one of the Reason* constants (the metric's reason attribute).
	Reason string `json:"reason"`
	// Detail explains the refusal in words.
	Detail string `json:"detail"`
}

// String is "reason: detail".
func (r Rejection) String() string { return r.Reason + ": " + r.Detail }

// ProposedPart is one part Propose produces, with how it came about.
type ProposedPart struct {
	// Part is the part to store; CreatedAt is set only for an update (the create time of
	// the part it replaces), UpdatedAt is left for the writer to stamp.
	Part Part
	// Operation is OpCreate or OpUpdate.
	Operation string
	// Policy names the policy rule that allowed it ("" when policies were not evaluated).
	Policy string
	// Changed is true when the live resource changes (a new part, or another spec).
	Changed bool
}

// Withdrawal is a part a delete directive removes.
type Withdrawal struct {
	Ref PartRef
	// Detail is the directive's reason.
	Detail string
}

// Proposed is the outcome of Propose.
type Proposed struct {
	// Source is the parts' source, EventSubscription/<name>.
	Source string
	// TTL is the lifetime given to the parts.
	TTL time.Duration
	// Parts are the parts to store, at most one per Kind/name (a later resource of the
	// same Kind and name in one result replaces an earlier one).
	Parts []ProposedPart
	// Rejections are the refused resources and directives, in order.
	Rejections []Rejection
	// Withdrawals are the existing parts of Source that delete directives remove.
	Withdrawals []Withdrawal
}

// Existing returns the stored part of the proposal's source for kind/name, if any. A nil
// Existing means no part is stored (every resource is a create).
type Existing func(kind, name string) (Part, bool)

// Propose turns the result of one plugin call into parts: it is the one implementation
// used by the daemon (Manager.HandleResult) and by `routerctl plugin dry-run`. It is
// pure: the outcome depends only on its arguments.
//
// For each resource, in order: decode strictly (schemas.DecodeObject), the subscription's
// allowed Kinds, the static-wins conflict check and the override policy (both skipped
// when cfg.SkipPolicy), cfg.Check; then the resource and its DynamicConfigPart are
// stamped with source EventSubscription/<b.Subscription> and the annotations of COMPAT.md
// (dynamic-source, event-group, event-id, event-subject of the event it came from, see
// OriginEvent). Delete directives allowed by the policy withdraw parts of the same source
// that exist (in prev or earlier in this result); other directive ops are rejected.
func Propose(cfg Config, b subscribe.Batch, r subscribe.Result, now time.Time, prev Existing) Proposed {
	sub, ok := cfg.Subscriptions[b.Subscription]
	if !ok {
		sub = Subscription{Group: b.Group}
	}
	if len(sub.AllowedKinds) == 0 {
		sub.AllowedKinds = []string{"RemoteAddressClaim"}
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = sub.DefaultTTL
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if prev == nil {
		prev = func(string, string) (Part, bool) { return Part{}, false }
	}
	p := &proposer{cfg: cfg, sub: sub, b: b, now: now, prev: prev, out: Proposed{Source: SourceOf(b.Subscription), TTL: ttl}}
	for _, raw := range r.Resources {
		p.resource(raw)
	}
	if r.Doc != nil {
		for _, d := range r.Doc.Status.Directives {
			p.directive(d.Op, schemas.ResourceRef{APIVersion: d.Target.APIVersion, Kind: d.Target.Kind, Name: d.Target.Name}, d.Reason)
		}
	}
	return p.out
}

// proposer carries one Propose call.
type proposer struct {
	cfg  Config
	sub  Subscription
	b    subscribe.Batch
	now  time.Time
	prev Existing
	out  Proposed
}

func (p *proposer) reject(target, reason, detail string) {
	p.out.Rejections = append(p.out.Rejections, Rejection{Target: target, Reason: reason, Detail: detail})
}

// pending returns the index in out.Parts of kind/name (-1 when none).
func (p *proposer) pending(kind, name string) int {
	for i, pp := range p.out.Parts {
		if pp.Part.Kind == kind && pp.Part.Name == name {
			return i
		}
	}
	return -1
}

func (p *proposer) resource(raw json.RawMessage) {
	source := p.out.Source
	obj, err := schemas.DecodeObject(raw)
	if err != nil {
		p.reject(describeRaw(raw), ReasonInvalid, err.Error())
		return
	}
	kind, name := obj.GetKind(), obj.GetName()
	target := kind + "/" + name
	if !contains(p.sub.AllowedKinds, kind) {
		p.reject(target, ReasonKindNotAllowed, fmt.Sprintf("kind %s is not in output.allowedKinds %v", kind, p.sub.AllowedKinds))
		return
	}
	if !p.cfg.SkipPolicy && p.cfg.Static[target] && p.cfg.Resolution() != DynamicWins {
		p.reject(target, ReasonStaticConflict, "a static resource of the same Kind and name exists (static-wins)")
		return
	}
	op := OpCreate
	var existing Part
	idx := p.pending(kind, name)
	if idx >= 0 {
		existing, op = p.out.Parts[idx].Part, OpUpdate
	} else if e, ok := p.prev(kind, name); ok {
		existing, op = e, OpUpdate
	}
	fields, err := SpecFields(raw)
	if err != nil {
		p.reject(target, ReasonInvalid, err.Error())
		return
	}
	var dec Decision
	if !p.cfg.SkipPolicy {
		ref := schemas.ResourceRef{APIVersion: obj.GetAPIVersion(), Kind: kind, Name: name}
		dec = Evaluate(p.cfg.Policies, Proposal{Source: source, Operation: op, Target: ref, Fields: fields})
		if !dec.Allowed {
			p.reject(target, ReasonPolicyDenied, dec.Reason)
			return
		}
	}

	origin := OriginEvent(p.b.Events, obj, raw)
	group := origin.Group
	if group == "" {
		group = p.b.Group
	}
	ann := map[string]string{AnnotationSource: source, AnnotationEventGroup: group, AnnotationEventID: origin.ID, AnnotationEventSubject: origin.Subject}
	meta := obj.GetMeta()
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	for k, v := range ann {
		meta.Annotations[k] = v
	}
	if p.cfg.Check != nil {
		if err := p.cfg.Check(obj); err != nil {
			reason := ReasonCheckFailed
			var rr RejectReasoner
			if errors.As(err, &rr) && rr.RejectReason() != "" {
				reason = rr.RejectReason()
			}
			p.reject(target, reason, err.Error())
			return
		}
	}

	part := Part{
		Source: source, Kind: kind, Name: name, Generation: 1, ExpiresAt: p.now.Add(p.out.TTL).UTC(),
		EventIDs: []string{origin.ID},
	}
	if op == OpUpdate {
		part.Generation, part.CreatedAt = existing.Generation+1, existing.CreatedAt
	}
	doc := &schemas.DynamicConfigPart{}
	doc.APIVersion, doc.Kind = schemas.ConfigAPIVersion, "DynamicConfigPart"
	doc.Metadata = schemas.ObjectMeta{Name: PartName(source, kind, name), Annotations: ann}
	doc.Spec = schemas.DynamicConfigPartSpec{
		Source: source, Generation: part.Generation, TTL: schemas.Dur(p.out.TTL), ExpiresAt: part.ExpiresAt,
		Resources: []schemas.Resource{{Object: obj}}, Events: part.EventIDs,
	}
	if len(dec.Mask) > 0 {
		doc.Spec.Mask = &schemas.PartMask{Fields: dec.Mask}
	}
	part.Document = doc
	pp := ProposedPart{Part: part, Operation: op, Policy: dec.Policy, Changed: op == OpCreate || !sameSpec(existing.Resource(), obj)}
	if idx >= 0 {
		// Replaces the earlier part of this result; the live set changes if either does.
		pp.Changed = pp.Changed || p.out.Parts[idx].Changed
		p.out.Parts = append(p.out.Parts[:idx], p.out.Parts[idx+1:]...)
	}
	p.out.Parts = append(p.out.Parts, pp)
}

func (p *proposer) directive(op string, target schemas.ResourceRef, reason string) {
	source := p.out.Source
	t := target.Kind + "/" + target.Name
	if op != OpDelete {
		p.reject(t, ReasonInvalid, fmt.Sprintf("directive op %q: only delete is supported", op))
		return
	}
	if !p.cfg.SkipPolicy {
		if dec := Evaluate(p.cfg.Policies, Proposal{Source: source, Operation: OpDelete, Target: target}); !dec.Allowed {
			p.reject(t, ReasonPolicyDenied, dec.Reason)
			return
		}
	}
	_, stored := p.prev(target.Kind, target.Name)
	if idx := p.pending(target.Kind, target.Name); idx >= 0 {
		p.out.Parts = append(p.out.Parts[:idx], p.out.Parts[idx+1:]...)
	} else if !stored {
		return // nothing to withdraw
	}
	p.out.Withdrawals = append(p.out.Withdrawals, Withdrawal{Ref: PartRef{Source: source, Kind: target.Kind, Name: target.Name}, Detail: reason})
}

// OriginEvent picks the batch event a resource came from: the one the plugin named in
// the routerd.net/event-id annotation, else the newest whose subject or payload address
// (trimmed, with or without a prefix length) equals a string value under the resource's
// spec (also compared without a prefix length), else the newest of the batch (the zero
// Record for an empty batch).
func OriginEvent(events []subscribe.Record, obj schemas.Object, raw []byte) subscribe.Record {
	if len(events) == 0 {
		return subscribe.Record{}
	}
	if id := obj.GetMeta().Annotations[AnnotationEventID]; id != "" {
		for _, e := range events {
			if e.ID == id {
				return e
			}
		}
	}
	values := specStrings(raw)
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		for _, v := range []string{e.Subject, e.Payload["address"]} {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if values[v] || values[stripPrefixLen(v)] {
				return e
			}
		}
	}
	return events[len(events)-1]
}
