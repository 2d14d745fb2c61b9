package netnslab

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"routerd.net/routerd/schemas"
)

// SetupFromConfigs builds a lab from the routers' resource documents: one namespace per
// router (the map's keys) and one per far site, where a far site is the remote.nodeID of
// an OverlayPeer (else "site-<peer name>"). Each OverlayPeer becomes a veth pair from the
// router's underlay.interface to the site ("to-<router>"), and the site's end gets the
// peer's remote.address with the prefix length of the router's underlay.address, so that
// routes through the peer work. The router's own end is left to routerd (OverlayPeer
// addresses are part of the desired state). Options.Routers and Options.Links are
// ignored; Prefix and Logger apply.
//
// # Errors
//
// A site name that is also a router name, an OverlayPeer without underlay.interface, or
// an address that does not parse is an error; so is everything Setup can fail on.
func SetupFromConfigs(ctx context.Context, opts Options, configs map[string]*schemas.Config) (*Lab, error) {
	routers := make([]string, 0, len(configs))
	for name := range configs {
		routers = append(routers, name)
	}
	sort.Strings(routers)
	isRouter := map[string]bool{}
	for _, r := range routers {
		isRouter[r] = true
	}
	var sites []string
	seenSite := map[string]bool{}
	var links []LinkSpec
	for _, r := range routers {
		for _, p := range configs[r].OverlayPeers() {
			site := strings.TrimSpace(p.Spec.Remote.NodeID)
			if site == "" {
				site = "site-" + p.Metadata.Name
			}
			if isRouter[site] {
				return nil, fmt.Errorf("netnslab: router %s: OverlayPeer %s: remote.nodeID %q is a router of the lab; only far sites are supported", r, p.Metadata.Name, site)
			}
			dev := p.Spec.Underlay.Interface
			if dev == "" {
				return nil, fmt.Errorf("netnslab: router %s: OverlayPeer %s has no underlay.interface", r, p.Metadata.Name)
			}
			remote, err := netip.ParseAddr(strings.TrimSpace(p.Spec.Remote.Address))
			if err != nil {
				return nil, fmt.Errorf("netnslab: router %s: OverlayPeer %s: remote.address: %w", r, p.Metadata.Name, err)
			}
			bits := remote.BitLen()
			if local := strings.TrimSpace(p.Spec.Underlay.Address); local != "" {
				if lp, err := netip.ParsePrefix(local); err == nil && lp.Addr().Is4() == remote.Is4() {
					bits = lp.Bits()
				}
			}
			siteDev := "to-" + r
			if len(siteDev) > 15 {
				siteDev = siteDev[:15]
			}
			links = append(links, LinkSpec{A: r, DevA: dev, B: site, DevB: siteDev, AddrB: netip.PrefixFrom(remote, bits)})
			if !seenSite[site] {
				seenSite[site] = true
				sites = append(sites, site)
			}
		}
	}
	opts.Routers = append(routers, sites...)
	opts.Links = links
	return Setup(ctx, opts)
}
