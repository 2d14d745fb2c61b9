// Package netnslab builds a small lab of routers for the demo and tests: one network
// namespace per router, every pair of routers joined by a veth pair ("ovl-<peer>" on each
// side, 169.254.N.1/30 and .2/30) — or only the links Options.Links names, with the
// interface names a config uses — forwarding on, and a kernel dataplane reconciler per
// router. Apply installs real routes and MSS clamp rules; Excerpt prints them as
// `ip route` / `nft list table` would; AddAddress, AddRoute and Ping set up and probe the
// far sites. Teardown deletes every namespace it created.
//
// Everything is done through netlink (vishvananda/netlink, netns, google/nftables); the
// ip and nft binaries are only used by Excerpt, when installed, to print the kernel's own
// view.
package netnslab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/netlinkdp"
)

// Options configure Setup.
type Options struct {
	// Routers are the router names, e.g. ["a", "b", "c"]: lowercase letters, digits and
	// '-', at most 11 characters (the interface toward router x is "ovl-x").
	Routers []string
	// Prefix starts every namespace name (default "rd-lab-"); the namespace of router r
	// is Prefix+r. Choose a prefix no other lab on the machine uses.
	Prefix string
	// Links, when set, replace the full mesh: only these veth pairs are created, with
	// the interface names and (optional) addresses given. Use it to reproduce a
	// config's interface names (e.g. every router's "wg-hybrid" toward an "onprem"
	// router that is not running routerd).
	Links []LinkSpec
	// Logger receives the reconcilers' logs; nil discards them.
	Logger *slog.Logger
}

// LinkSpec is one veth pair between routers A and B.
type LinkSpec struct {
	// A and B are router names from Options.Routers.
	A, B string
	// DevA and DevB are the interface names in A and B (at most 15 characters).
	DevA, DevB string
	// AddrA and AddrB are addresses to configure on each end (zero: none; routerd may
	// configure them from an OverlayPeer's underlay.address).
	AddrA, AddrB netip.Prefix
}

// Link is one router's end of a veth pair toward a peer router.
type Link struct {
	// Dev is the local interface name, "ovl-<peer>".
	Dev string
	// Peer is the router at the other end.
	Peer string
	// Local is this end's address and prefix.
	Local netip.Prefix
	// Remote is the other end's address: the next hop toward Peer.
	Remote netip.Addr
}

// Router is one router of the lab.
type Router struct {
	// Name is the router's name.
	Name string
	// NetNS is its network namespace name (ip netns).
	NetNS string
	// Links are its links to every other router, in Options.Routers order.
	Links []Link
	// Reconciler drives its kernel dataplane.
	Reconciler *dataplane.Reconciler
}

// LinkTo returns the router's link toward peer.
func (r *Router) LinkTo(peer string) (Link, bool) {
	for _, l := range r.Links {
		if l.Peer == peer {
			return l, true
		}
	}
	return Link{}, false
}

// Lab is a set of routers in namespaces. Close it with Teardown.
type Lab struct {
	// Routers are the lab's routers, in Options.Routers order.
	Routers []*Router

	mu      sync.Mutex
	created []string
	down    bool
}

// Available reports why a lab cannot be built here (nil when it can): not root, or no
// network namespace support.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("netnslab: needs root to create network namespaces")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("netnslab: no network namespace support: %w", err)
	}
	return nil
}

// Setup creates the namespaces, links, addresses and reconcilers. On error everything
// already created is removed again.
func Setup(ctx context.Context, opts Options) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if len(opts.Routers) == 0 {
		return nil, errors.New("netnslab: no routers")
	}
	if len(opts.Routers) > 16 {
		return nil, errors.New("netnslab: at most 16 routers")
	}
	if opts.Prefix == "" {
		opts.Prefix = "rd-lab-"
	}
	seen := map[string]bool{}
	for _, name := range opts.Routers {
		if name == "" || len(name) > 11 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || seen[name] {
			return nil, fmt.Errorf("netnslab: router name %q: want a unique name of 1-11 characters [a-z0-9-]", name)
		}
		seen[name] = true
	}
	lab := &Lab{}
	fail := func(err error) (*Lab, error) {
		if terr := lab.Teardown(); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, err
	}
	handles := map[string]netns.NsHandle{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for _, name := range opts.Routers {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		nsName := opts.Prefix + name
		h, err := createNamespace(nsName)
		if err != nil {
			return fail(err)
		}
		lab.mu.Lock()
		lab.created = append(lab.created, nsName)
		lab.mu.Unlock()
		handles[name] = h
		lab.Routers = append(lab.Routers, &Router{Name: name, NetNS: nsName})
	}
	specs := opts.Links
	if len(specs) == 0 {
		subnet := 0
		for i, a := range lab.Routers {
			for _, b := range lab.Routers[i+1:] {
				subnet++
				base := netip.AddrFrom4([4]byte{169, 254, byte(subnet), 0})
				specs = append(specs, LinkSpec{
					A: a.Name, DevA: "ovl-" + b.Name, AddrA: netip.PrefixFrom(base.Next(), 30),
					B: b.Name, DevB: "ovl-" + a.Name, AddrB: netip.PrefixFrom(base.Next().Next(), 30),
				})
			}
		}
	}
	for _, sp := range specs {
		a, b := lab.Router(sp.A), lab.Router(sp.B)
		if a == nil || b == nil || a == b || len(sp.DevA) == 0 || len(sp.DevA) > 15 || len(sp.DevB) == 0 || len(sp.DevB) > 15 {
			return fail(fmt.Errorf("netnslab: link %+v: want two different routers of Options.Routers and interface names of 1-15 characters", sp))
		}
		la := Link{Dev: sp.DevA, Peer: sp.B, Local: sp.AddrA, Remote: sp.AddrB.Addr()}
		lb := Link{Dev: sp.DevB, Peer: sp.A, Local: sp.AddrB, Remote: sp.AddrA.Addr()}
		if err := addVeth(handles[sp.A], la, handles[sp.B], lb); err != nil {
			return fail(fmt.Errorf("netnslab: link %s/%s-%s/%s: %w", sp.A, sp.DevA, sp.B, sp.DevB, err))
		}
		a.Links = append(a.Links, la)
		b.Links = append(b.Links, lb)
	}
	for _, r := range lab.Routers {
		be, err := netlinkdp.Open(netlinkdp.Options{NetNS: r.NetNS, Logger: opts.Logger})
		if err != nil {
			return fail(err)
		}
		r.Reconciler = dataplane.NewReconciler(be, opts.Logger)
	}
	return lab, nil
}

// createNamespace creates a named namespace with loopback up and IPv4/IPv6 forwarding
// on. The work happens on a locked OS thread that is discarded afterwards, so the
// process's threads never stay in the new namespace.
func createNamespace(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		h, err := netns.NewNamed(name)
		if err != nil {
			ch <- result{err: fmt.Errorf("netnslab: create netns %s: %w", name, err)}
			return
		}
		var errs []error
		if lo, err := netlink.LinkByName("lo"); err != nil {
			errs = append(errs, err)
		} else if err := netlink.LinkSetUp(lo); err != nil {
			errs = append(errs, err)
		}
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			ch <- result{h: h, err: fmt.Errorf("netnslab: prepare netns %s: %w", name, err)}
			return
		}
		ch <- result{h: h}
	}()
	r := <-ch
	return r.h, r.err
}

// addVeth creates the veth pair la.Dev (in namespace a) - lb.Dev (in b), addresses and up.
func addVeth(a netns.NsHandle, la Link, b netns.NsHandle, lb Link) error {
	ha, err := netlink.NewHandleAt(a)
	if err != nil {
		return err
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b)
	if err != nil {
		return err
	}
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: la.Dev},
		PeerName:      lb.Dev,
		PeerNamespace: netlink.NsFd(b),
	}
	if err := ha.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", la.Dev, lb.Dev, err)
	}
	for _, side := range []struct {
		h *netlink.Handle
		l Link
	}{{ha, la}, {hb, lb}} {
		link, err := side.h.LinkByName(side.l.Dev)
		if err != nil {
			return fmt.Errorf("find %s: %w", side.l.Dev, err)
		}
		if side.l.Local.IsValid() {
			if err := side.h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(side.l.Local)}); err != nil {
				return fmt.Errorf("address %s on %s: %w", side.l.Local, side.l.Dev, err)
			}
		}
		if err := side.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("up %s: %w", side.l.Dev, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddAddress configures p on interface dev of router name as the lab's own (foreign to
// routerd) address: the far end of a site, or a host address on "lo".
func (l *Lab) AddAddress(name, dev string, p netip.Prefix) error {
	return l.withLink(name, dev, func(h *netlink.Handle, link netlink.Link) error {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
			return fmt.Errorf("netnslab: router %s: address %s on %s: %w", name, p, dev, err)
		}
		return nil
	})
}

// withLink runs fn with a netlink handle in router name's namespace and its interface dev.
func (l *Lab) withLink(name, dev string, fn func(h *netlink.Handle, link netlink.Link) error) error {
	r := l.Router(name)
	if r == nil {
		return fmt.Errorf("netnslab: no router %q", name)
	}
	ns, err := netns.GetFromName(r.NetNS)
	if err != nil {
		return fmt.Errorf("netnslab: open netns %s: %w", r.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netnslab: netlink in %s: %w", r.NetNS, err)
	}
	defer h.Close()
	link, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("netnslab: router %s: interface %s: %w", name, dev, err)
	}
	return fn(h, link)
}

// AddRoute installs a route of the lab's own (foreign to routerd; protocol static) in
// router name, e.g. the far site's way back to an overlay. A zero via means a device
// route.
func (l *Lab) AddRoute(name string, dst netip.Prefix, dev string, via netip.Addr) error {
	return l.withLink(name, dev, func(h *netlink.Handle, link netlink.Link) error {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(dst.Masked()), Protocol: 4} // static
		if via.IsValid() {
			route.Gw = net.IP(via.AsSlice())
		} else {
			route.Scope = netlink.SCOPE_LINK
		}
		if err := h.RouteAdd(route); err != nil {
			return fmt.Errorf("netnslab: router %s: route %s: %w", name, dst, err)
		}
		return nil
	})
}

// Ping sends ICMP echoes from router name to addr (ping(8) inside the namespace), one
// every 200 ms for at most 3 s, and reports whether a reply came back. A fresh veth pair
// may drop the very first packet, hence more than one try.
func (l *Lab) Ping(ctx context.Context, name string, addr netip.Addr) error {
	r := l.Router(name)
	if r == nil {
		return fmt.Errorf("netnslab: no router %q", name)
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", r.NetNS, "ping", "-n", "-c", "1", "-i", "0.2", "-w", "3", addr.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netnslab: ping %s from %s: %w: %s", addr, name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Router returns the router called name, or nil.
func (l *Lab) Router(name string) *Router {
	for _, r := range l.Routers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Apply reconciles router name's kernel to desired and returns the applied diff.
func (l *Lab) Apply(ctx context.Context, name string, desired dataplane.State) (dataplane.Diff, error) {
	r := l.Router(name)
	if r == nil {
		return dataplane.Diff{}, fmt.Errorf("netnslab: no router %q", name)
	}
	return r.Reconciler.Apply(ctx, desired)
}

// Excerpt returns router name's routerd routes and nftables table as printable text:
// the output of `ip route show table all proto 196` and `nft list table inet routerd`
// when those tools are installed, else the same objects as routerd reads them back.
func (l *Lab) Excerpt(ctx context.Context, name string) (string, error) {
	r := l.Router(name)
	if r == nil {
		return "", fmt.Errorf("netnslab: no router %q", name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# router %s (netns %s)\n", r.Name, r.NetNS)
	ipOut, ipErr := exec.CommandContext(ctx, "ip", "-n", r.NetNS, "route", "show", "table", "all", "proto", fmt.Sprint(dataplane.RouteProtocol)).Output()
	nftOut, nftErr := exec.CommandContext(ctx, "ip", "netns", "exec", r.NetNS, "nft", "list", "table", "inet", dataplane.TableName).Output()
	if ipErr == nil && nftErr == nil {
		fmt.Fprintf(&b, "$ ip route show table all proto %d\n%s", dataplane.RouteProtocol, ipOut)
		fmt.Fprintf(&b, "$ nft list table inet %s\n%s", dataplane.TableName, nftOut)
		return b.String(), nil
	}
	cur, err := r.Reconciler.Backend().Current(ctx)
	if err != nil {
		return "", fmt.Errorf("netnslab: read router %s: %w", name, err)
	}
	fmt.Fprintf(&b, "(ip/nft not available; routerd's objects as read back through netlink)\n%s", cur)
	return b.String(), nil
}

// Teardown closes the reconcilers and deletes every namespace Setup created (which also
// removes their links, routes and tables). It is idempotent.
func (l *Lab) Teardown() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil
	}
	l.down = true
	var errs []error
	for _, r := range l.Routers {
		if r.Reconciler != nil {
			if err := r.Reconciler.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range l.created {
		if err := netns.DeleteNamed(name); err != nil {
			errs = append(errs, fmt.Errorf("netnslab: delete netns %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
