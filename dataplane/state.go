package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Ownership markers and names routerd uses in the kernel.
const (
	// RouteProtocol is the route protocol number (rtm_protocol) of every route routerd
	// installs; register it in /etc/iproute2/rt_protos.d as "196 routerd".
	RouteProtocol = 196
	// AddressProtocol is the address protocol (IFA_PROTO) of every interface address
	// routerd installs.
	AddressProtocol = 196
	// NeighborProtocol is the neighbor protocol (NDA_PROTOCOL) of every proxy neighbor
	// entry routerd installs.
	NeighborProtocol = 196
	// TableName is routerd's own nftables table (family inet). routerd replaces it as a
	// whole and never touches another table.
	TableName = "routerd"
	// ChainName is the base chain of the MSS clamp rules in [TableName] (hook forward,
	// priority mangle).
	ChainName = "forward"
	// MainTable is the kernel's main routing table (254); a Route with Table 0 means it.
	MainTable = 254
	// maxIfName is the longest interface name Linux accepts (IFNAMSIZ-1).
	maxIfName = 15
)

// Kind names one type of kernel object. Kinds are applied in this order when adding and
// in the reverse order when removing (a route may need the address of its next hop).
type Kind int

// Object kinds, in apply order.
const (
	KindAddress Kind = iota + 1
	KindProxyNeighbor
	KindRoute
	KindMSSRule
)

// String returns the kind's name as used in diffs and doctor output.
func (k Kind) String() string {
	switch k {
	case KindAddress:
		return "address"
	case KindProxyNeighbor:
		return "proxy-neighbor"
	case KindRoute:
		return "route"
	case KindMSSRule:
		return "mss-rule"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText renders the kind by name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Object is one concrete kernel object routerd wants or owns.
type Object interface {
	// Kind is the object's type.
	Kind() Kind
	// Key identifies the object in the kernel: two objects with the same Key cannot both
	// exist, and a changed object keeps its Key.
	Key() string
	// String describes every compared attribute; two objects with the same Key and a
	// different String differ (drift, or a desired change).
	String() string
	// Origin names the resource that wants the object (e.g.
	// "RemoteAddressClaim/onprem-10-88-60-9"); it is informative and never compared.
	Origin() string
}

// Route is a route routerd installs with protocol [RouteProtocol]: a host route for a
// RemoteAddressClaim or a prefix route for a HybridRoute, through a tunnel interface
// and optionally a next hop.
type Route struct {
	// Dst is the destination prefix (host bits are cleared when normalized).
	Dst netip.Prefix `json:"dst"`
	// Dev is the outgoing interface.
	Dev string `json:"dev"`
	// Via is the next hop; the zero Addr means a device route (scope link).
	Via netip.Addr `json:"via,omitzero"`
	// Table is the routing table; 0 means [MainTable].
	Table int `json:"table,omitempty"`
	// Metric is the route priority; 0 means the kernel default (0 for IPv4, 1024 for IPv6).
	Metric int `json:"metric,omitempty"`
	// From names the resource that wants the route.
	From string `json:"from,omitempty"`
}

// Kind implements Object.
func (r Route) Kind() Kind { return KindRoute }

// Origin implements Object.
func (r Route) Origin() string { return r.From }

// Key implements Object: destination, table and metric identify a route.
func (r Route) Key() string {
	return "route " + r.Dst.String() + " table " + tableName(r.Table) + " metric " + strconv.Itoa(r.Metric)
}

// String implements Object, in the words of `ip route`.
func (r Route) String() string {
	via := ""
	if r.Via.IsValid() {
		via = " via " + r.Via.String()
	}
	return "route " + r.Dst.String() + via + " dev " + r.Dev + " table " + tableName(r.Table) + " metric " + strconv.Itoa(r.Metric) + " proto routerd"
}

// Address is an interface address routerd installs with protocol [AddressProtocol], e.g.
// the local overlay address of an OverlayPeer's tunnel interface.
type Address struct {
	// Prefix is the address with its prefix length (host bits kept).
	Prefix netip.Prefix `json:"prefix"`
	// Dev is the interface.
	Dev string `json:"dev"`
	// From names the resource that wants the address.
	From string `json:"from,omitempty"`
}

// Kind implements Object.
func (a Address) Kind() Kind { return KindAddress }

// Origin implements Object.
func (a Address) Origin() string { return a.From }

// Key implements Object.
func (a Address) Key() string { return "address " + a.Prefix.String() + " dev " + a.Dev }

// String implements Object.
func (a Address) String() string { return a.Key() + " proto routerd" }

// ProxyNeighbor is a proxy ARP / proxy NDP entry: the router answers neighbor
// solicitations for Addr on Dev (a RemoteAddressClaim with capture type proxy-arp).
type ProxyNeighbor struct {
	// Addr is the address answered for.
	Addr netip.Addr `json:"addr"`
	// Dev is the interface the solicitations arrive on.
	Dev string `json:"dev"`
	// From names the resource that wants the entry.
	From string `json:"from,omitempty"`
}

// Kind implements Object.
func (n ProxyNeighbor) Kind() Kind { return KindProxyNeighbor }

// Origin implements Object.
func (n ProxyNeighbor) Origin() string { return n.From }

// Key implements Object.
func (n ProxyNeighbor) Key() string { return "proxy-neighbor " + n.Addr.String() + " dev " + n.Dev }

// String implements Object.
func (n ProxyNeighbor) String() string { return n.Key() + " proto routerd" }

// Direction says which way a clamp rule matches traffic on its interface.
type Direction string

// Clamp directions: traffic leaving through the interface (oifname) or arriving on it
// (iifname). An MSSClamp produces both.
const (
	Egress  Direction = "egress"
	Ingress Direction = "ingress"
)

// MSSRule clamps the TCP MSS option of SYN packets forwarded through Dev in one direction,
// to the route MTU (MSS 0, nft "set rt mtu") or to a fixed size (only ever lowered).
type MSSRule struct {
	// Dev is the (overlay) interface.
	Dev string `json:"dev"`
	// Direction is egress (oifname) or ingress (iifname).
	Direction Direction `json:"direction"`
	// MSS is the fixed size, or 0 for the route MTU.
	MSS int `json:"mss,omitempty"`
	// From names the resource that wants the rule.
	From string `json:"from,omitempty"`
}

// Kind implements Object.
func (m MSSRule) Kind() Kind { return KindMSSRule }

// Origin implements Object.
func (m MSSRule) Origin() string { return m.From }

// Key implements Object.
func (m MSSRule) Key() string { return fmt.Sprintf("mss-rule %s %s", m.match(), m.Dev) }

// String implements Object, in the words of nft.
func (m MSSRule) String() string {
	if m.MSS == 0 {
		return fmt.Sprintf("mss-rule %s %s tcp flags syn tcp option maxseg size set rt mtu", m.match(), m.Dev)
	}
	return fmt.Sprintf("mss-rule %s %s tcp flags syn tcp option maxseg size > %d tcp option maxseg size set %d", m.match(), m.Dev, m.MSS, m.MSS)
}

// match is the nft meta key of the direction.
func (m MSSRule) match() string {
	if m.Direction == Ingress {
		return "iifname"
	}
	return "oifname"
}

// State is a set of kernel objects: the desired state, or the objects routerd owns now.
type State struct {
	// Addresses are interface addresses.
	Addresses []Address `json:"addresses,omitempty"`
	// ProxyNeighbors are proxy ARP/NDP entries.
	ProxyNeighbors []ProxyNeighbor `json:"proxyNeighbors,omitempty"`
	// Routes are routes in any table.
	Routes []Route `json:"routes,omitempty"`
	// MSSRules are the clamp rules of routerd's nftables table.
	MSSRules []MSSRule `json:"mssRules,omitempty"`
}

// Objects returns every object of s, in apply order (kind, then key).
func (s State) Objects() []Object {
	objs := make([]Object, 0, len(s.Addresses)+len(s.ProxyNeighbors)+len(s.Routes)+len(s.MSSRules))
	for _, o := range s.Addresses {
		objs = append(objs, o)
	}
	for _, o := range s.ProxyNeighbors {
		objs = append(objs, o)
	}
	for _, o := range s.Routes {
		objs = append(objs, o)
	}
	for _, o := range s.MSSRules {
		objs = append(objs, o)
	}
	sortObjects(objs)
	return objs
}

// Interfaces returns the sorted, distinct interface names s refers to.
func (s State) Interfaces() []string {
	seen := map[string]bool{}
	for _, o := range s.Addresses {
		seen[o.Dev] = true
	}
	for _, o := range s.ProxyNeighbors {
		seen[o.Dev] = true
	}
	for _, o := range s.Routes {
		seen[o.Dev] = true
	}
	for _, o := range s.MSSRules {
		seen[o.Dev] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Len is the number of objects in s.
func (s State) Len() int {
	return len(s.Addresses) + len(s.ProxyNeighbors) + len(s.Routes) + len(s.MSSRules)
}

// String lists the objects of s, one per line, in apply order.
func (s State) String() string {
	var b strings.Builder
	for _, o := range s.Objects() {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Normalize returns s with defaults filled in (main table, IPv6 default metric, masked
// route prefixes, unmapped addresses), identical objects merged and everything sorted.
// It fails, naming every problem, when an object is invalid or two objects claim the
// same Key with different attributes.
func (s State) Normalize() (State, error) {
	var errs []error
	var out State
	seen := map[string]Object{}
	add := func(o Object) bool {
		if prev, ok := seen[o.Key()]; ok {
			if prev.String() != o.String() {
				errs = append(errs, fmt.Errorf("conflict: %q (from %s) and %q (from %s)", prev.String(), orUnknown(prev.Origin()), o.String(), orUnknown(o.Origin())))
			}
			return false
		}
		seen[o.Key()] = o
		return true
	}
	for _, a := range s.Addresses {
		a.Prefix = netip.PrefixFrom(a.Prefix.Addr().Unmap(), a.Prefix.Bits())
		if err := checkDev(a.Dev); err != nil || !a.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("%s: invalid address (prefix %v, dev %q)", orUnknown(a.From), a.Prefix, a.Dev))
			continue
		}
		if add(a) {
			out.Addresses = append(out.Addresses, a)
		}
	}
	for _, n := range s.ProxyNeighbors {
		n.Addr = n.Addr.Unmap()
		if err := checkDev(n.Dev); err != nil || !n.Addr.IsValid() {
			errs = append(errs, fmt.Errorf("%s: invalid proxy neighbor (addr %v, dev %q)", orUnknown(n.From), n.Addr, n.Dev))
			continue
		}
		if add(n) {
			out.ProxyNeighbors = append(out.ProxyNeighbors, n)
		}
	}
	for _, r := range s.Routes {
		r.Dst = netip.PrefixFrom(r.Dst.Addr().Unmap(), r.Dst.Bits()).Masked()
		r.Via = r.Via.Unmap()
		if r.Table == 0 {
			r.Table = MainTable
		}
		if r.Metric == 0 && r.Dst.Addr().Is6() {
			r.Metric = 1024
		}
		switch {
		case !r.Dst.IsValid():
			errs = append(errs, fmt.Errorf("%s: route without a valid destination", orUnknown(r.From)))
			continue
		case checkDev(r.Dev) != nil:
			errs = append(errs, fmt.Errorf("%s: route %s: %v", orUnknown(r.From), r.Dst, checkDev(r.Dev)))
			continue
		case r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4():
			errs = append(errs, fmt.Errorf("%s: route %s: next hop %s is of another address family", orUnknown(r.From), r.Dst, r.Via))
			continue
		case r.Table < 0 || r.Metric < 0:
			errs = append(errs, fmt.Errorf("%s: route %s: negative table or metric", orUnknown(r.From), r.Dst))
			continue
		}
		if add(r) {
			out.Routes = append(out.Routes, r)
		}
	}
	for _, m := range s.MSSRules {
		if m.Direction == "" {
			m.Direction = Egress
		}
		switch {
		case checkDev(m.Dev) != nil:
			errs = append(errs, fmt.Errorf("%s: mss rule: %v", orUnknown(m.From), checkDev(m.Dev)))
			continue
		case m.Direction != Egress && m.Direction != Ingress:
			errs = append(errs, fmt.Errorf("%s: mss rule on %s: direction %q: want egress or ingress", orUnknown(m.From), m.Dev, m.Direction))
			continue
		case m.MSS != 0 && (m.MSS < 536 || m.MSS > 65495):
			errs = append(errs, fmt.Errorf("%s: mss rule on %s: mss %d outside 536..65495", orUnknown(m.From), m.Dev, m.MSS))
			continue
		}
		if add(m) {
			out.MSSRules = append(out.MSSRules, m)
		}
	}
	sortByKey(out.Addresses)
	sortByKey(out.ProxyNeighbors)
	sortByKey(out.Routes)
	sortByKey(out.MSSRules)
	if len(errs) > 0 {
		return out, fmt.Errorf("dataplane: invalid state: %w", errors.Join(errs...))
	}
	return out, nil
}

// checkDev validates an interface name.
func checkDev(dev string) error {
	if dev == "" || len(dev) > maxIfName || strings.ContainsAny(dev, "/ \t\n") {
		return fmt.Errorf("interface name %q: want 1-%d characters without '/' or spaces", dev, maxIfName)
	}
	return nil
}

// tableName renders a routing table as ip route does.
func tableName(t int) string {
	switch t {
	case 0, MainTable:
		return "main"
	case 255:
		return "local"
	}
	return strconv.Itoa(t)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

// sortByKey orders objects by key, computing each key once.
func sortByKey[T Object](objs []T) {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key()
	}
	sort.Sort(byKey[T]{objs, keys})
}

type byKey[T Object] struct {
	objs []T
	keys []string
}

func (b byKey[T]) Len() int           { return len(b.objs) }
func (b byKey[T]) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey[T]) Swap(i, j int) {
	b.objs[i], b.objs[j] = b.objs[j], b.objs[i]
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
}

// sortObjects orders objects by kind, then key (each key computed once).
func sortObjects(objs []Object) {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = string(rune('0'+o.Kind())) + " " + o.Key()
	}
	sort.Sort(byKey[Object]{objs, keys})
}
