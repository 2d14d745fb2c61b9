// Package desired translates routerd's resource Kinds (package schemas) into the
// dataplane's desired State:
//
//   - OverlayPeer: its local overlay address (underlay.address) on its tunnel interface
//     (underlay.interface);
//   - HybridRoute: one route per destination CIDR through the peer's tunnel interface,
//     next hop the peer's remote.address when it is on-link (inside the prefix of the
//     peer's underlay.address, same family), in install.table with install.metric;
//   - RemoteAddressClaim (static, and from unexpired DynamicConfigParts): a host route for
//     the address through delivery.tunnelInterface (else the peer's interface) to the
//     delivery peer (else the domain's peer), table main, metric 100; with capture type
//     proxy-arp also a proxy neighbor entry on capture.interface (unless the address is in
//     capture.excludeAddresses);
//   - MSSClamp: clamp rules in both directions for the tunnel interfaces of its peers and
//     its extra interfaces, to the path MTU (mode pmtu) or a fixed MSS (mode fixed).
//
// Problems (a reference to a peer or domain that does not exist, an address that does not
// parse, an interface that is not known) are collected, never fatal: the objects that can
// be built are built, and the doctor reports the rest.
package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/observe"
	"routerd.net/routerd/schemas"
)

// ClaimMetric is the metric of claim host routes.
const ClaimMetric = schemas.DefaultRouteMetric

// Result is the translated desired state and every problem met on the way.
type Result struct {
	// State is every object that could be built.
	State dataplane.State
	// Problems describe what could not be built, one line each naming the resource.
	Problems []string
}

// Options tune FromConfig.
type Options struct {
	// Now decides which DynamicConfigParts have expired (time.Now when zero).
	Now time.Time
	// Claims are further claims to install (e.g. merged from the store's dynamic parts).
	Claims []*schemas.RemoteAddressClaim
}

// translator carries the lookup tables of one translation.
type translator struct {
	peers   map[string]*schemas.OverlayPeer
	domains map[string]*schemas.AddressMobilityDomain
	res     Result
}

func (t *translator) problem(format string, args ...any) {
	t.res.Problems = append(t.res.Problems, fmt.Sprintf(format, args...))
}

// FromConfig translates cfg (and opts.Claims) into a desired dataplane state.
func FromConfig(cfg *schemas.Config, opts Options) Result {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	t := &translator{peers: map[string]*schemas.OverlayPeer{}, domains: map[string]*schemas.AddressMobilityDomain{}}
	for _, p := range cfg.OverlayPeers() {
		t.peers[p.Metadata.Name] = p
		t.peer(p)
	}
	for _, d := range cfg.AddressMobilityDomains() {
		t.domains[d.Metadata.Name] = d
	}
	for _, r := range cfg.HybridRoutes() {
		t.hybridRoute(r)
	}
	claims := slices.Clone(cfg.RemoteAddressClaims())
	for _, part := range cfg.DynamicConfigParts() {
		if !part.Spec.ExpiresAt.IsZero() && !part.Spec.ExpiresAt.After(opts.Now) {
			continue // expired: its claims are withdrawn
		}
		for _, r := range part.Spec.Resources {
			if c, ok := r.Object.(*schemas.RemoteAddressClaim); ok {
				claims = append(claims, c)
			}
		}
	}
	claims = append(claims, opts.Claims...)
	for _, c := range claims {
		t.claim(c)
	}
	for _, m := range cfg.MSSClamps() {
		t.mssClamp(m)
	}
	return t.res
}

// Domains returns the AddressMobilityDomains of cfg as the observer needs them (domains
// whose prefix does not parse are left out).
func Domains(cfg *schemas.Config) []observe.Domain {
	var out []observe.Domain
	for _, d := range cfg.AddressMobilityDomains() {
		if p, err := netip.ParsePrefix(strings.TrimSpace(d.Spec.Prefix)); err == nil {
			out = append(out, observe.Domain{Name: d.Metadata.Name, Prefix: p.Masked()})
		}
	}
	return out
}

// parseAddrOrPrefix accepts "10.0.0.1" (a host prefix) or "10.0.0.1/30".
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (t *translator) peer(p *schemas.OverlayPeer) {
	from := "OverlayPeer/" + p.Metadata.Name
	u := p.Spec.Underlay
	if u.Address == "" {
		return
	}
	if u.Interface == "" {
		t.problem("%s: underlay.address %s without underlay.interface", from, u.Address)
		return
	}
	pfx, err := parseAddrOrPrefix(u.Address)
	if err != nil {
		t.problem("%s: underlay.address %q: %v", from, u.Address, err)
		return
	}
	t.res.State.Addresses = append(t.res.State.Addresses, dataplane.Address{Prefix: pfx, Dev: u.Interface, From: from})
}

// via returns the peer's tunnel interface and next hop for destinations of dst's family.
func (t *translator) via(from, peerRef string, dst netip.Addr) (dev string, nh netip.Addr, ok bool) {
	p, found := t.peers[peerRef]
	if !found {
		t.problem("%s: peerRef %q: no such OverlayPeer", from, peerRef)
		return "", nh, false
	}
	dev = p.Spec.Underlay.Interface
	// The remote address is the next hop when it is on-link: inside the prefix of the
	// peer's local overlay address. Otherwise (a point-to-point tunnel without addresses,
	// another family) the route goes through the interface alone.
	a, err := netip.ParseAddr(strings.TrimSpace(p.Spec.Remote.Address))
	local, lerr := parseAddrOrPrefix(p.Spec.Underlay.Address)
	if err == nil && lerr == nil && a.Is4() == dst.Is4() && local.Masked().Contains(a) {
		nh = a
	}
	return dev, nh, true
}

func (t *translator) hybridRoute(r *schemas.HybridRoute) {
	from := "HybridRoute/" + r.Metadata.Name
	for _, c := range r.Spec.DestinationCIDRs {
		dst, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			t.problem("%s: destinationCIDRs %q: %v", from, c, err)
			continue
		}
		dev, nh, ok := t.via(from, r.Spec.PeerRef, dst.Addr())
		if !ok {
			continue
		}
		if dev == "" {
			t.problem("%s: OverlayPeer %s has no underlay.interface to route through", from, r.Spec.PeerRef)
			continue
		}
		t.res.State.Routes = append(t.res.State.Routes, dataplane.Route{
			Dst: dst.Masked(), Dev: dev, Via: nh, Table: r.Spec.Install.Table, Metric: r.Spec.Install.Metric, From: from,
		})
	}
}

func (t *translator) claim(c *schemas.RemoteAddressClaim) {
	from := "RemoteAddressClaim/" + c.Metadata.Name
	pfx, err := parseAddrOrPrefix(c.Spec.Address)
	if err != nil {
		t.problem("%s: address %q: %v", from, c.Spec.Address, err)
		return
	}
	addr := pfx.Addr()
	host := netip.PrefixFrom(addr, addr.BitLen())
	d, ok := t.domains[c.Spec.DomainRef]
	if !ok {
		t.problem("%s: domainRef %q: no such AddressMobilityDomain", from, c.Spec.DomainRef)
	} else if dp, err := netip.ParsePrefix(strings.TrimSpace(d.Spec.Prefix)); err == nil && !dp.Contains(addr) {
		t.problem("%s: address %s is outside domain %s (%s)", from, addr, d.Metadata.Name, dp)
	}
	peerRef, tunnel := "", ""
	if c.Spec.Delivery != nil {
		peerRef, tunnel = c.Spec.Delivery.PeerRef, c.Spec.Delivery.TunnelInterface
	}
	if peerRef == "" && ok {
		peerRef = d.Spec.PeerRef
	}
	if peerRef == "" {
		t.problem("%s: no delivery.peerRef and no peerRef on its domain: nowhere to route %s", from, addr)
	} else if dev, nh, found := t.via(from, peerRef, addr); found {
		if tunnel != "" && tunnel != dev {
			// The claim names its own tunnel interface: route through it without the
			// peer's next hop, which belongs to the peer's interface.
			dev, nh = tunnel, netip.Addr{}
		}
		if dev == "" {
			t.problem("%s: no delivery.tunnelInterface and OverlayPeer %s has no underlay.interface", from, peerRef)
		} else {
			t.res.State.Routes = append(t.res.State.Routes, dataplane.Route{Dst: host, Dev: dev, Via: nh, Metric: ClaimMetric, From: from})
		}
	}
	if cap := c.Spec.Capture; cap != nil && cap.Type == "proxy-arp" {
		switch {
		case slices.ContainsFunc(cap.ExcludeAddresses, func(s string) bool {
			p, err := parseAddrOrPrefix(s)
			return err == nil && p.Contains(addr)
		}):
		case cap.Interface == "":
			t.problem("%s: capture proxy-arp without capture.interface", from)
		default:
			t.res.State.ProxyNeighbors = append(t.res.State.ProxyNeighbors, dataplane.ProxyNeighbor{Addr: addr, Dev: cap.Interface, From: from})
		}
	}
}

func (t *translator) mssClamp(m *schemas.MSSClamp) {
	from := "MSSClamp/" + m.Metadata.Name
	mss := 0
	if m.Spec.Mode == "fixed" {
		mss = m.Spec.MSS
	}
	devs := slices.Clone(m.Spec.Interfaces)
	for _, ref := range m.Spec.PeerRefs {
		p, ok := t.peers[ref]
		switch {
		case !ok:
			t.problem("%s: peerRefs %q: no such OverlayPeer", from, ref)
		case p.Spec.Underlay.Interface == "":
			t.problem("%s: OverlayPeer %s has no underlay.interface to clamp", from, ref)
		default:
			devs = append(devs, p.Spec.Underlay.Interface)
		}
	}
	for _, dev := range devs {
		for _, dir := range []dataplane.Direction{dataplane.Egress, dataplane.Ingress} {
			t.res.State.MSSRules = append(t.res.State.MSSRules, dataplane.MSSRule{Dev: dev, Direction: dir, MSS: mss, From: from})
		}
	}
}
