// Package fake is an in-memory dataplane.Backend that records what it would do as
// readable text. It is the dry-run backend of a routerd that is not root, and the first
// tier of the dataplane tests.
package fake

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"routerd.net/routerd/dataplane"
)

// Backend keeps routerd's objects in memory and writes one line per change to its log.
// The zero value is not usable; call New.
type Backend struct {
	name string

	mu      sync.Mutex
	objects map[string]dataplane.Object
	log     strings.Builder
	applies int
	failOn  string

	interfaces     []string
	foreignInTable []string
	foreignRoutes  []dataplane.KernelRoute
}

// New returns an empty fake backend called name (e.g. "fake router-a").
func New(name string) *Backend {
	return &Backend{name: name, objects: map[string]dataplane.Object{}}
}

// Name implements dataplane.Backend.
func (b *Backend) Name() string { return b.name }

// Current implements dataplane.Backend.
func (b *Backend) Current(ctx context.Context) (dataplane.State, error) {
	if err := ctx.Err(); err != nil {
		return dataplane.State{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var s dataplane.State
	for _, o := range b.objects {
		switch o := o.(type) {
		case dataplane.Route:
			s.Routes = append(s.Routes, o)
		case dataplane.Address:
			s.Addresses = append(s.Addresses, o)
		case dataplane.ProxyNeighbor:
			s.ProxyNeighbors = append(s.ProxyNeighbors, o)
		case dataplane.MSSRule:
			s.MSSRules = append(s.MSSRules, o)
		}
	}
	return s.Normalize()
}

// Apply implements dataplane.Backend: it applies the changes to the in-memory state and
// records them, one "+", "-" or "~" line each, under an "apply N" header. MSS rule changes
// are recorded as one atomic table replacement, as the kernel backend performs them.
func (b *Backend) Apply(ctx context.Context, diff dataplane.Diff, desired dataplane.State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applies++
	fmt.Fprintf(&b.log, "apply %d\n", b.applies)
	for _, c := range diff.Changes {
		o := c.Object()
		if b.failOn != "" && o.Key() == b.failOn {
			fmt.Fprintf(&b.log, "! %s: injected failure\n", c)
			return fmt.Errorf("fake: %s: injected failure", o.Key())
		}
		if o.Kind() == dataplane.KindMSSRule {
			continue
		}
		b.log.WriteString(c.String())
		b.log.WriteByte('\n')
		if c.Op == dataplane.OpRemove {
			delete(b.objects, o.Key())
		} else {
			b.objects[o.Key()] = o
		}
	}
	if diff.Has(dataplane.KindMSSRule) {
		for k, o := range b.objects {
			if o.Kind() == dataplane.KindMSSRule {
				delete(b.objects, k)
			}
		}
		fmt.Fprintf(&b.log, "= table inet %s replaced (%d rules)\n", dataplane.TableName, len(desired.MSSRules))
		for _, m := range desired.MSSRules {
			b.objects[m.Key()] = m
			fmt.Fprintf(&b.log, "  %s\n", m.String())
		}
	}
	return nil
}

// Log returns everything recorded so far.
func (b *Backend) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

// ResetLog forgets the recorded text (the objects stay).
func (b *Backend) ResetLog() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log.Reset()
}

// Put places o in the backend as if someone had changed the kernel behind routerd's back
// (drift); it is not recorded.
func (b *Backend) Put(o dataplane.Object) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[o.Key()] = o
}

// Delete removes the object with key as if someone had deleted it behind routerd's back.
func (b *Backend) Delete(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key)
}

// FailOn makes Apply fail when it reaches the object with key ("" disables).
func (b *Backend) FailOn(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failOn = key
}

// Close implements dataplane.Backend; it is idempotent and keeps the recorded log.
func (b *Backend) Close() error { return nil }

// SetInterfaces sets the interface names Inspect reports as existing.
func (b *Backend) SetInterfaces(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.interfaces = append([]string(nil), names...)
}

// SetForeign sets the foreign objects Inspect reports inside routerd's nftables table and
// among the routes.
func (b *Backend) SetForeign(inTable []string, routes []dataplane.KernelRoute) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.foreignInTable = append([]string(nil), inTable...)
	b.foreignRoutes = append([]dataplane.KernelRoute(nil), routes...)
}

// Inspect implements dataplane.Inspector.
func (b *Backend) Inspect(ctx context.Context) (dataplane.Inspection, error) {
	cur, err := b.Current(ctx)
	if err != nil {
		return dataplane.Inspection{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return dataplane.Inspection{
		Backend:        b.name,
		Owned:          cur,
		TablePresent:   len(cur.MSSRules) > 0 || len(b.foreignInTable) > 0,
		ForeignInTable: append([]string(nil), b.foreignInTable...),
		ForeignRoutes:  append([]dataplane.KernelRoute(nil), b.foreignRoutes...),
		Interfaces:     append([]string(nil), b.interfaces...),
	}, nil
}
