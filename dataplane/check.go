package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// KernelRoute is a route of the kernel that routerd does not own, as Inspect reports it.
type KernelRoute struct {
	// Dst is the destination (0.0.0.0/0 or ::/0 for a default route).
	Dst netip.Prefix `json:"dst"`
	// Dev is the outgoing interface ("" when the route has none, e.g. unreachable).
	Dev string `json:"dev,omitempty"`
	// Via is the next hop, if any.
	Via netip.Addr `json:"via,omitzero"`
	// Table is the routing table id.
	Table int `json:"table"`
	// Metric is the route priority.
	Metric int `json:"metric"`
	// Protocol is the route protocol number (2 kernel, 3 boot, 4 static, ...).
	Protocol int `json:"protocol"`
}

// String renders the route in the words of ip route.
func (r KernelRoute) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "route %s", r.Dst)
	if r.Via.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Via)
	}
	if r.Dev != "" {
		fmt.Fprintf(&b, " dev %s", r.Dev)
	}
	fmt.Fprintf(&b, " table %s metric %d proto %d", tableName(r.Table), r.Metric, r.Protocol)
	return b.String()
}

// Inspection is everything a backend can tell the doctor about its kernel.
type Inspection struct {
	// Backend names the backend inspected.
	Backend string `json:"backend"`
	// Owned are the objects carrying routerd's ownership markers.
	Owned State `json:"owned"`
	// TablePresent reports whether routerd's nftables table exists.
	TablePresent bool `json:"tablePresent"`
	// ForeignInTable describes objects inside routerd's nftables table that routerd did
	// not write (or someone modified).
	ForeignInTable []string `json:"foreignInTable,omitempty"`
	// ForeignRoutes are all routes without routerd's protocol.
	ForeignRoutes []KernelRoute `json:"-"`
	// Unmanaged are objects carrying routerd's marker that routerd cannot have written
	// and does not manage (e.g. a multipath or blackhole route with protocol 196).
	Unmanaged []string `json:"unmanaged,omitempty"`
	// Interfaces are the names of the existing interfaces.
	Interfaces []string `json:"interfaces"`
	// InterfacesDown are the existing interfaces that are administratively down or whose
	// link is down (operational state down, lowerlayerdown or notpresent).
	InterfacesDown []string `json:"interfacesDown,omitempty"`
}

// Inspector is a Backend that can report foreign objects and interfaces for the doctor.
type Inspector interface {
	Inspect(ctx context.Context) (Inspection, error)
}

// Check statuses.
const (
	StatusPass = "pass"
	StatusFail = "fail"
)

// CheckResult is the outcome of one doctor check.
type CheckResult struct {
	// Name identifies the check: references, interfaces, drift, nft-foreign, foreign-routes.
	Name string `json:"name"`
	// Status is pass or fail.
	Status string `json:"status"`
	// Summary is one line for humans.
	Summary string `json:"summary"`
	// Details lists every problem found (one object each).
	Details []string `json:"details,omitempty"`
}

// Report is the result of all dataplane checks.
type Report struct {
	// Backend names the backend inspected.
	Backend string `json:"backend"`
	// OK is true when every check passed.
	OK bool `json:"ok"`
	// Checks are the results in a fixed order.
	Checks []CheckResult `json:"checks"`
}

// Check compares desired with what insp found and returns one CheckResult per check:
//
//   - references: problems found while building the desired state (peers, domains or
//     interfaces a resource refers to that do not exist), passed in as problems;
//   - interfaces: interfaces the desired state uses that do not exist in the kernel;
//   - drift: desired objects missing or changed, routerd objects no longer desired, and
//     objects with routerd's marker routerd cannot manage;
//   - nft-foreign: objects in routerd's nftables table that routerd did not write;
//   - foreign-routes: routes of someone else inside a prefix routerd routes, in the same
//     table or the local table: more specific ones, or the same prefix with a metric that
//     wins over (or ties with) routerd's; they shadow or contradict routerd's route.
func Check(desired State, problems []string, insp Inspection) Report {
	rep := Report{Backend: insp.Backend, OK: true}
	add := func(name, okSummary, failSummary string, details []string) {
		r := CheckResult{Name: name, Status: StatusPass, Summary: okSummary}
		if len(details) > 0 {
			r.Status, r.Summary, r.Details = StatusFail, fmt.Sprintf(failSummary, len(details)), details
			rep.OK = false
		}
		rep.Checks = append(rep.Checks, r)
	}

	want, err := desired.Normalize()
	refs := slices.Clone(problems)
	if err != nil {
		refs = append(refs, err.Error())
	}
	add("references", "every referenced peer, domain and interface is defined", "%d problems in the desired state", refs)

	var missing []string
	for _, dev := range want.Interfaces() {
		if !slices.Contains(insp.Interfaces, dev) {
			missing = append(missing, fmt.Sprintf("interface %s does not exist (used by %s)", dev, strings.Join(usersOf(want, dev), ", ")))
		}
	}
	add("interfaces", fmt.Sprintf("all %d interfaces exist", len(want.Interfaces())), "%d interfaces missing", missing)

	var drift []string
	if d, err := Compute(insp.Owned, want); err == nil {
		for _, c := range d.Changes {
			switch c.Op {
			case OpAdd:
				drift = append(drift, "missing: "+c.New.String())
			case OpReplace:
				drift = append(drift, fmt.Sprintf("changed: %s (want: %s)", c.Old.String(), c.New.String()))
			case OpRemove:
				drift = append(drift, "not desired: "+c.Old.String())
			}
		}
	}
	for _, u := range insp.Unmanaged {
		drift = append(drift, "unmanaged: "+u)
	}
	add("drift", fmt.Sprintf("all %d desired objects present and unchanged", want.Len()), "%d objects drifted", drift)

	add("nft-foreign", fmt.Sprintf("table inet %s holds only routerd's rules", TableName), "%d foreign objects in table inet "+TableName, slices.Clone(insp.ForeignInTable))

	var foreign []string
	for _, fr := range insp.ForeignRoutes {
		for _, r := range want.Routes {
			inside := fr.Dst.Bits() > r.Dst.Bits() || (fr.Dst.Bits() == r.Dst.Bits() && (fr.Metric <= r.Metric || fr.Table == 255))
			if inside && r.Dst.Contains(fr.Dst.Addr()) && (fr.Table == r.Table || fr.Table == 255) {
				foreign = append(foreign, fmt.Sprintf("%s inside %s (from %s)", fr, r.Dst, orUnknown(r.From)))
				break
			}
		}
	}
	add("foreign-routes", "no foreign route inside a prefix routerd routes", "%d foreign routes inside routerd's prefixes", foreign)
	return rep
}

// usersOf names the resources whose objects use interface dev.
func usersOf(s State, dev string) []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range s.Objects() {
		var d string
		switch o := o.(type) {
		case Route:
			d = o.Dev
		case Address:
			d = o.Dev
		case ProxyNeighbor:
			d = o.Dev
		case MSSRule:
			d = o.Dev
		}
		if d == dev && !seen[orUnknown(o.Origin())] {
			seen[orUnknown(o.Origin())] = true
			out = append(out, orUnknown(o.Origin()))
		}
	}
	return out
}
