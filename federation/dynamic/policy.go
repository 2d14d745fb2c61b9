package dynamic

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"routerd.net/routerd/schemas"
)

// Operations a source may be allowed by a DynamicOverridePolicy.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Conflict resolutions of DynamicOverridePolicy.spec.conflictResolution.
const (
	StaticWins  = "static-wins"
	DynamicWins = "dynamic-wins"
)

// Proposal is what a source wants to do to one resource.
type Proposal struct {
	// Source is the owner, e.g. EventSubscription/claims.
	Source string
	// Operation is OpCreate, OpUpdate or OpDelete.
	Operation string
	// Target names the resource.
	Target schemas.ResourceRef
	// Fields are the leaf field paths the resource sets under spec (empty for delete).
	Fields []string
}

// Decision is the outcome of Evaluate.
type Decision struct {
	// Allowed is true when one allow rule covers the whole proposal.
	Allowed bool
	// Policy names the policy (and rule index) that allowed it, e.g. "claims#0".
	Policy string
	// Mask is the allowing rule's field list (empty: the whole spec).
	Mask []string
	// Reason explains a refusal.
	Reason string
}

// Evaluate checks p against the allow rules of every policy. Anything no rule allows is
// refused (deny by default: without a DynamicOverridePolicy, nothing dynamic applies).
// A rule allows p when its source pattern matches p.Source (path.Match, so
// EventSubscription/* matches every subscription), its operations include p.Operation
// (default create and update), one of its targets matches (apiVersion and name may be
// empty or patterns) and, when it lists fields, every field p sets is covered by one
// ("spec.capture" or "spec.capture.*" covers spec.capture.type).
func Evaluate(policies []*schemas.DynamicOverridePolicy, p Proposal) Decision {
	var reasons []string
	for _, pol := range policies {
		for i, rule := range pol.Spec.Allow {
			id := fmt.Sprintf("%s#%d", pol.Metadata.Name, i)
			if !match(rule.Source, p.Source) {
				continue
			}
			ops := rule.Operations
			if len(ops) == 0 {
				ops = []string{OpCreate, OpUpdate}
			}
			if !contains(ops, p.Operation) {
				reasons = append(reasons, fmt.Sprintf("%s does not allow %s", id, p.Operation))
				continue
			}
			if !targetMatches(rule.Targets, p.Target) {
				reasons = append(reasons, fmt.Sprintf("%s does not list target %s", id, p.Target))
				continue
			}
			if f := uncovered(rule.Fields, p.Fields); f != "" {
				reasons = append(reasons, fmt.Sprintf("%s does not allow field %s", id, f))
				continue
			}
			return Decision{Allowed: true, Policy: id, Mask: rule.Fields}
		}
	}
	if len(reasons) == 0 {
		return Decision{Reason: fmt.Sprintf("no DynamicOverridePolicy allows source %s", p.Source)}
	}
	return Decision{Reason: strings.Join(reasons, "; ")}
}

// match reports whether name matches pattern (schemas.MatchName: "*" and path.Match
// globs, the patterns config validation accepts).
func match(pattern, name string) bool { return schemas.MatchName(pattern, name) }

func targetMatches(targets []schemas.ResourceRef, t schemas.ResourceRef) bool {
	for _, r := range targets {
		if r.APIVersion != "" && !match(r.APIVersion, t.APIVersion) {
			continue
		}
		if !match(r.Kind, t.Kind) {
			continue
		}
		if r.Name != "" && !match(r.Name, t.Name) {
			continue
		}
		return true
	}
	return false
}

// uncovered returns the first of fields no entry of allowed covers ("" when all are, or
// when allowed is empty: the whole spec).
func uncovered(allowed, fields []string) string {
	if len(allowed) == 0 {
		return ""
	}
	for _, f := range fields {
		ok := false
		for _, a := range allowed {
			a = strings.TrimSuffix(a, ".*")
			if f == a || strings.HasPrefix(f, a+".") {
				ok = true
				break
			}
		}
		if !ok {
			return f
		}
	}
	return ""
}

// SpecFields returns the sorted leaf field paths a resource document sets under spec, e.g.
// spec.address, spec.capture.type. Arrays are leaves.
func SpecFields(doc []byte) ([]string, error) {
	var m struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("dynamic: fields of resource: %w", err)
	}
	if len(m.Spec) == 0 {
		return nil, nil
	}
	var spec any
	if err := json.Unmarshal(m.Spec, &spec); err != nil {
		return nil, fmt.Errorf("dynamic: fields of resource: %w", err)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		obj, ok := v.(map[string]any)
		if !ok || len(obj) == 0 {
			out = append(out, prefix)
			return
		}
		for k, x := range obj {
			walk(prefix+"."+k, x)
		}
	}
	walk("spec", spec)
	sort.Strings(out)
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
