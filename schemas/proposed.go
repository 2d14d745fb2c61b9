package schemas

import (
	"fmt"
	"strings"
)

// Reasons CheckProposed rejects an object (ProposedError.Reason): short, stable names
// for counting and auditing rejections.
const (
	// ProposedSemantic: the object alone is invalid (what Validate reports: names,
	// addresses, CIDRs, enums, ranges, consistency within the object).
	ProposedSemantic = "semantic"
	// ProposedReference: a reference check failed against the static config and the
	// live objects (a missing domain, peer or profile; a claim outside its domain's
	// prefix; a second peer for one node).
	ProposedReference = "reference"
	// ProposedConflict: a live object of the same Kind and name exists (a loaded config
	// rejects such duplicates too).
	ProposedConflict = "conflict"
)

// ProposedError is why CheckProposed rejected an object.
type ProposedError struct {
	// Reason is ProposedSemantic, ProposedReference or ProposedConflict.
	Reason string
	// Kind and Name identify the proposed object.
	Kind, Name string
	// Problems are the failed checks. Semantic problems name the proposed object and the
	// field path inside it (for a DynamicConfigPart: spec.resources[i]....); reference and
	// conflict problems name the resource whose reference failed and its own field path.
	Problems []Problem
}

// RejectReason is the rejection reason under which the dynamic config manager counts
// and audits the refusal (semantic, reference or conflict).
func (e *ProposedError) RejectReason() string { return e.Reason }

// Error says what was rejected, why (the reason) and every failed check.
func (e *ProposedError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	return fmt.Sprintf("proposed %s/%s rejected (%s): %s", e.Kind, e.Name, e.Reason, strings.Join(msgs, "; "))
}

// CheckProposed runs on an object proposed at run time (a plugin's resource, or a whole
// DynamicConfigPart and the resources it carries) every check a config file gets: the
// semantic checks of each resource alone, then its reference checks against static plus
// the live objects, which are the other live dynamic objects (their DynamicConfigParts
// are opened: the resources they carry count, a live resource replacing a static one of
// the same Kind and name). The checks are the ones loading runs, not a copy. live must not
// contain the object the proposal replaces; static may be nil.
//
// It applies the proposed object's defaults (idempotent; DecodeObject already does) and
// returns nil or a *ProposedError whose Reason names the first kind of check that failed:
// ProposedSemantic, ProposedConflict or ProposedReference.
func CheckProposed(static *Config, live []Object, proposed Object) error {
	kind, name := proposed.GetKind(), proposed.GetName()
	reject := func(reason string, problems []Problem) error {
		return &ProposedError{Reason: reason, Kind: kind, Name: name, Problems: problems}
	}
	proposed.SetDefaults()
	c := newChecker()
	validateObject(proposed, c)
	var problems []Problem
	for _, p := range *c.problems {
		if p.code == "" { // warnings do not reject
			problems = append(problems, Problem{Kind: kind, Name: name, Path: p.path, Message: p.msg, Severity: SeverityError})
		}
	}
	if len(problems) > 0 {
		return reject(ProposedSemantic, problems)
	}

	scope := newRefScope()
	var earlier []Object
	if static != nil {
		for _, e := range static.entries {
			scope.add(e.obj)
			if e.ok {
				earlier = append(earlier, e.obj)
			}
		}
	}
	proposedRes := resourcesOf(proposed)
	// Live resources of a proposed resource's own Kind matter only for its name (and for
	// the Kinds that compare resources of their Kind, see peerCompared): skipping the
	// others keeps a check independent of how many claims are live.
	sameKind := map[string]bool{}
	names := map[string]bool{}
	for _, r := range proposedRes {
		if _, ok := r.(peerCompared); !ok {
			sameKind[r.GetKind()] = true
		}
		names[r.GetKind()+"/"+r.GetName()] = true
	}
	liveByKey := map[string]bool{}
	for _, o := range resourcesOf(live...) {
		key := o.GetKind() + "/" + o.GetName()
		if sameKind[o.GetKind()] && !names[key] {
			continue
		}
		scope.add(o)
		earlier = append(earlier, o)
		liveByKey[key] = true
	}

	for _, r := range proposedRes {
		if key := r.GetKind() + "/" + r.GetName(); liveByKey[key] {
			problems = append(problems, Problem{Kind: r.GetKind(), Name: r.GetName(), Path: "metadata.name",
				Message: fmt.Sprintf("%s is already live from another dynamic part: a name may be used once per Kind", key), Severity: SeverityError})
		}
	}
	if len(problems) > 0 {
		return reject(ProposedConflict, problems)
	}

	for _, r := range proposedRes {
		scope.add(r) // resources of one part may refer to each other
	}
	for _, r := range proposedRes {
		if o, ok := r.(refChecked); ok {
			o.checkRefs(&refChecker{scope: scope, earlier: earlier, errorf: errorfTo(&problems, r.GetKind(), r.GetName(), "")})
		}
		earlier = append(earlier, r)
	}
	if len(problems) > 0 {
		return reject(ProposedReference, problems)
	}
	return nil
}

// resourcesOf returns objs with every DynamicConfigPart replaced by the resources it
// carries.
func resourcesOf(objs ...Object) []Object {
	var out []Object
	for _, o := range objs {
		part, ok := o.(*DynamicConfigPart)
		if !ok {
			out = append(out, o)
			continue
		}
		for _, r := range part.Spec.Resources {
			if r.Object != nil {
				out = append(out, r.Object)
			}
		}
	}
	return out
}
