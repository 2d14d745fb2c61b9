// Package netnslab builds a small lab of routers for the demo and tests: one network
// namespace per router, every pair of routers joined by a veth pair ("ovl-<peer>" on each
// side, 169.254.N.1/30 and .2/30), forwarding on, and a kernel dataplane reconciler per
// router. Apply installs real routes and MSS clamp rules; Excerpt prints them as
// `ip route` / `nft list table` would. Teardown deletes every namespace it created.
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
	// Logger receives the reconcilers' logs; nil discards them.
	Logger *slog.Logger
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
	subnet := 0
	for i, a := range lab.Routers {
		for _, b := range lab.Routers[i+1:] {
			subnet++
			base := netip.AddrFrom4([4]byte{169, 254, byte(subnet), 0})
			la := Link{Dev: "ovl-" + b.Name, Peer: b.Name, Local: netip.PrefixFrom(base.Next(), 30), Remote: base.Next().Next()}
			lb := Link{Dev: "ovl-" + a.Name, Peer: a.Name, Local: netip.PrefixFrom(base.Next().Next(), 30), Remote: base.Next()}
			if err := addVeth(handles[a.Name], la, handles[b.Name], lb); err != nil {
				return fail(fmt.Errorf("netnslab: link %s-%s: %w", a.Name, b.Name, err))
			}
			a.Links = append(a.Links, la)
			b.Links = append(b.Links, lb)
		}
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
		ipn := &net.IPNet{IP: side.l.Local.Addr().AsSlice(), Mask: net.CIDRMask(side.l.Local.Bits(), 32)}
		if err := side.h.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("address %s on %s: %w", side.l.Local, side.l.Dev, err)
		}
		if err := side.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("up %s: %w", side.l.Dev, err)
		}
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
