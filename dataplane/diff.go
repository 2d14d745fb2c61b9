package dataplane

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Op is what a Change does to one object.
type Op string

// Change operations.
const (
	OpAdd     Op = "add"
	OpRemove  Op = "remove"
	OpReplace Op = "replace"
)

// Change is one step of a Diff. Old is nil for an add, New is nil for a remove; a
// replace has both (same Key, different attributes).
type Change struct {
	// Op is add, remove or replace.
	Op Op
	// Old is the object being removed or replaced.
	Old Object
	// New is the object being added, or the replacement.
	New Object
}

// Object returns the object the change is about (New, or Old for a remove).
func (c Change) Object() Object {
	if c.New != nil {
		return c.New
	}
	return c.Old
}

// String renders the change as one line: "+ <new>", "- <old>" or "~ <new> (was: <old>)".
func (c Change) String() string {
	switch c.Op {
	case OpAdd:
		return "+ " + c.New.String()
	case OpRemove:
		return "- " + c.Old.String()
	default:
		return fmt.Sprintf("~ %s (was: %s)", c.New.String(), c.Old.String())
	}
}

// MarshalJSON renders the change as {op, kind, key, object, previous, from}.
func (c Change) MarshalJSON() ([]byte, error) {
	o := c.Object()
	v := struct {
		Op       Op     `json:"op"`
		Kind     Kind   `json:"kind"`
		Key      string `json:"key"`
		Object   string `json:"object"`
		Previous string `json:"previous,omitempty"`
		From     string `json:"from,omitempty"`
	}{Op: c.Op, Kind: o.Kind(), Key: o.Key(), Object: o.String(), From: o.Origin()}
	if c.Op == OpReplace {
		v.Previous = c.Old.String()
	}
	return json.Marshal(v)
}

// Diff is the ordered list of changes that turns the current state into the desired one:
// removals first (mss rules, routes, proxy neighbors, addresses), then additions and
// replacements (addresses, proxy neighbors, routes, mss rules), each sorted by key.
type Diff struct {
	// Changes are in apply order.
	Changes []Change
}

// Empty reports whether the diff changes nothing.
func (d Diff) Empty() bool { return len(d.Changes) == 0 }

// Has reports whether the diff changes an object of kind k.
func (d Diff) Has(k Kind) bool {
	for _, c := range d.Changes {
		if c.Object().Kind() == k {
			return true
		}
	}
	return false
}

// Count returns the number of changes per operation.
func (d Diff) Count() (add, remove, replace int) {
	for _, c := range d.Changes {
		switch c.Op {
		case OpAdd:
			add++
		case OpRemove:
			remove++
		case OpReplace:
			replace++
		}
	}
	return add, remove, replace
}

// String renders the diff one change per line, or "no changes".
func (d Diff) String() string {
	if d.Empty() {
		return "no changes\n"
	}
	var b strings.Builder
	for _, c := range d.Changes {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// MarshalJSON renders the diff as a JSON array of changes ([] when empty).
func (d Diff) MarshalJSON() ([]byte, error) {
	if d.Changes == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(d.Changes)
}

// Compute returns the Diff from current (what routerd owns now) to desired. Both are
// normalized first; an invalid desired state is an error (see State.Normalize). Objects
// in current but not in desired are removed, objects only in desired are added, and
// objects whose Key matches but whose attributes differ are replaced.
func Compute(current, desired State) (Diff, error) {
	want, err := desired.Normalize()
	if err != nil {
		return Diff{}, err
	}
	// The current state comes from the kernel; merge duplicates but never fail on it.
	have, _ := current.Normalize()
	haveObjs, wantObjs := have.Objects(), want.Objects()
	haveByKey := make(map[string]Object, len(haveObjs))
	for _, o := range haveObjs {
		haveByKey[o.Key()] = o
	}
	var removes, adds []Change
	wantKeys := make(map[string]bool, len(wantObjs))
	for _, o := range wantObjs {
		key := o.Key()
		wantKeys[key] = true
		old, ok := haveByKey[key]
		switch {
		case !ok:
			adds = append(adds, Change{Op: OpAdd, New: o})
		case old.String() != o.String():
			adds = append(adds, Change{Op: OpReplace, Old: old, New: o})
		}
	}
	for _, o := range haveObjs {
		if !wantKeys[o.Key()] {
			removes = append(removes, Change{Op: OpRemove, Old: o})
		}
	}
	// Removals in reverse kind order, keys ascending within a kind.
	sort.SliceStable(removes, func(i, j int) bool {
		ki, kj := removes[i].Old.Kind(), removes[j].Old.Kind()
		if ki != kj {
			return ki > kj
		}
		return removes[i].Old.Key() < removes[j].Old.Key()
	})
	return Diff{Changes: append(removes, adds...)}, nil
}
