// Package netlinkdp is the Linux kernel dataplane.Backend: routes, interface addresses
// and proxy neighbor entries through vishvananda/netlink, and routerd's nftables table
// through package dataplane/nft, all inside one network namespace.
//
// Every object it creates carries routerd's ownership marker (route protocol, IFA_PROTO,
// NDA_PROTOCOL, the inet routerd table); Current lists only marked objects, and removal
// is restricted to them, so foreign objects are never touched. Adding an object whose key
// is taken by a foreign one fails for that object (EEXIST) instead of overwriting it.
package netlinkdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/nft"
)

const (
	dataplaneAddrProto  = dataplane.AddressProtocol
	dataplaneNeighProto = dataplane.NeighborProtocol
	// requestTimeout bounds every netlink request (send and each receive).
	requestTimeout = 10 * time.Second
)

// Options configure Open.
type Options struct {
	// NetNS is the name of the network namespace (ip netns, /run/netns/NAME); "" means the
	// namespace of the calling process.
	NetNS string
	// NetNSPath opens the namespace from a path instead (e.g. /proc/PID/ns/net).
	NetNSPath string
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Backend is the kernel backend for one network namespace. It is safe for concurrent use.
type Backend struct {
	name    string
	log     *slog.Logger
	ns      netns.NsHandle
	h       *netlink.Handle
	nft     *nftables.Conn
	sockets map[int]*nl.SocketHandle

	mu     sync.Mutex
	closed bool
}

// Open connects to the kernel in the namespace opts names.
//
// # Errors
//
// Open fails when the namespace does not exist or cannot be entered (not root), or a
// netlink socket cannot be opened in it.
func Open(opts Options) (*Backend, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{name: "netlink", log: log, ns: netns.None()}
	var err error
	switch {
	case opts.NetNS != "":
		b.name = "netlink netns " + opts.NetNS
		b.ns, err = netns.GetFromName(opts.NetNS)
	case opts.NetNSPath != "":
		b.name = "netlink netns " + opts.NetNSPath
		b.ns, err = netns.GetFromPath(opts.NetNSPath)
	}
	if err != nil {
		return nil, fmt.Errorf("netlinkdp: open netns %s%s: %w", opts.NetNS, opts.NetNSPath, err)
	}
	if b.h, err = netlink.NewHandleAt(b.ns); err != nil {
		b.Close()
		return nil, fmt.Errorf("netlinkdp: %s: netlink handle: %w", b.name, err)
	}
	if err := b.h.SetSocketTimeout(requestTimeout); err != nil {
		b.Close()
		return nil, fmt.Errorf("netlinkdp: %s: socket timeout: %w", b.name, err)
	}
	s, err := nl.GetNetlinkSocketAt(b.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("netlinkdp: %s: netlink socket: %w", b.name, err)
	}
	b.sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	// A shared socket gets no timeouts from the library: bound every request.
	tv := unix.NsecToTimeval(requestTimeout.Nanoseconds())
	if err := errors.Join(s.SetSendTimeout(&tv), s.SetReceiveTimeout(&tv)); err != nil {
		b.Close()
		return nil, fmt.Errorf("netlinkdp: %s: socket timeouts: %w", b.name, err)
	}
	nftOpts := []nftables.ConnOption{nftables.AsLasting()}
	if b.ns.IsOpen() {
		nftOpts = append(nftOpts, nftables.WithNetNSFd(int(b.ns)))
	}
	if b.nft, err = nftables.New(nftOpts...); err != nil {
		b.Close()
		return nil, fmt.Errorf("netlinkdp: %s: nftables: %w", b.name, err)
	}
	return b, nil
}

// Name implements dataplane.Backend.
func (b *Backend) Name() string { return b.name }

// Close implements dataplane.Backend; it is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.nft != nil {
		if err := b.nft.CloseLasting(); err != nil {
			errs = append(errs, fmt.Errorf("netlinkdp: close nftables: %w", err))
		}
	}
	for _, s := range b.sockets {
		s.Close()
	}
	if b.h != nil {
		b.h.Close()
	}
	if b.ns.IsOpen() {
		if err := b.ns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("netlinkdp: close netns: %w", err))
		}
	}
	return errors.Join(errs...)
}

// links maps interface indexes to names and back.
type links struct {
	byIndex map[int]string
	byName  map[string]int
	down    map[string]bool // admin or link down
}

func (b *Backend) links() (links, error) {
	ls, err := b.h.LinkList()
	if err != nil {
		return links{}, fmt.Errorf("list links: %w", err)
	}
	l := links{byIndex: map[int]string{}, byName: map[string]int{}, down: map[string]bool{}}
	for _, k := range ls {
		a := k.Attrs()
		l.byIndex[a.Index] = a.Name
		l.byName[a.Name] = a.Index
		switch {
		case a.Flags&net.FlagUp == 0,
			a.OperState == netlink.OperDown, a.OperState == netlink.OperLowerLayerDown, a.OperState == netlink.OperNotPresent:
			l.down[a.Name] = true
		}
	}
	return l, nil
}

func (b *Backend) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("netlinkdp: backend closed")
	}
	return nil
}

// allRoutes lists the routes of every table (both families).
func (b *Backend) allRoutes() ([]netlink.Route, error) {
	rs, err := b.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return rs, nil
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	ip, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// defaultDst is the destination of a default route, which netlink reports as nil.
func defaultDst(r netlink.Route) netip.Prefix {
	if p := prefixOf(r.Dst); p.IsValid() {
		return p
	}
	if r.Family == unix.AF_INET6 {
		return netip.MustParsePrefix("::/0")
	}
	return netip.MustParsePrefix("0.0.0.0/0")
}

// Current implements dataplane.Backend.
func (b *Backend) Current(ctx context.Context) (dataplane.State, error) {
	insp, err := b.Inspect(ctx)
	return insp.Owned, err
}

// Inspect implements dataplane.Inspector: routerd's objects, foreign objects in routerd's
// table, every foreign route and the interface names.
func (b *Backend) Inspect(ctx context.Context) (dataplane.Inspection, error) {
	insp := dataplane.Inspection{Backend: b.name}
	if err := b.check(); err != nil {
		return insp, err
	}
	if err := ctx.Err(); err != nil {
		return insp, err
	}
	l, err := b.links()
	if err != nil {
		return insp, fmt.Errorf("netlinkdp: %s: %w", b.name, err)
	}
	for name := range l.byName {
		insp.Interfaces = append(insp.Interfaces, name)
		if l.down[name] {
			insp.InterfacesDown = append(insp.InterfacesDown, name)
		}
	}
	sort.Strings(insp.Interfaces)
	sort.Strings(insp.InterfacesDown)

	routes, err := b.allRoutes()
	if err != nil {
		return insp, fmt.Errorf("netlinkdp: %s: %w", b.name, err)
	}
	for _, r := range routes {
		if r.Protocol != dataplane.RouteProtocol {
			insp.ForeignRoutes = append(insp.ForeignRoutes, dataplane.KernelRoute{
				Dst: defaultDst(r), Dev: l.byIndex[r.LinkIndex], Via: addrOf(r.Gw), Table: r.Table, Metric: r.Priority, Protocol: int(r.Protocol),
			})
			continue
		}
		if r.LinkIndex == 0 || len(r.MultiPath) > 0 || r.Type != unix.RTN_UNICAST {
			insp.Unmanaged = append(insp.Unmanaged, fmt.Sprintf("route %s table %d type %d with %d paths (protocol %d)", defaultDst(r), r.Table, r.Type, max(1, len(r.MultiPath)), dataplane.RouteProtocol))
			continue
		}
		insp.Owned.Routes = append(insp.Owned.Routes, dataplane.Route{
			Dst: defaultDst(r), Dev: l.byIndex[r.LinkIndex], Via: addrOf(r.Gw), Table: r.Table, Metric: r.Priority,
		})
	}

	addrs, err := b.listAddrs()
	if err != nil {
		return insp, fmt.Errorf("netlinkdp: %s: list addresses: %w", b.name, err)
	}
	for _, a := range addrs {
		if a.Proto == dataplane.AddressProtocol {
			insp.Owned.Addresses = append(insp.Owned.Addresses, dataplane.Address{Prefix: a.Prefix, Dev: l.byIndex[a.Index]})
		}
	}
	neighs, err := b.listProxyNeighs()
	if err != nil {
		return insp, fmt.Errorf("netlinkdp: %s: list proxy neighbors: %w", b.name, err)
	}
	for _, n := range neighs {
		if n.Proto == dataplane.NeighborProtocol {
			insp.Owned.ProxyNeighbors = append(insp.Owned.ProxyNeighbors, dataplane.ProxyNeighbor{Addr: n.Addr, Dev: l.byIndex[n.Index]})
		}
	}

	b.mu.Lock()
	contents, err := nft.Read(b.nft)
	b.mu.Unlock()
	if err != nil {
		return insp, fmt.Errorf("netlinkdp: %s: %w", b.name, err)
	}
	insp.TablePresent = contents.Present
	insp.ForeignInTable = contents.Foreign
	insp.Owned.MSSRules = contents.Rules
	return insp, nil
}

// Apply implements dataplane.Backend. It performs every change it can and returns the
// failures joined, each naming its object; MSS rule changes replace routerd's nftables
// table atomically from desired.
func (b *Backend) Apply(ctx context.Context, diff dataplane.Diff, desired dataplane.State) error {
	if err := b.check(); err != nil {
		return err
	}
	l, err := b.links()
	if err != nil {
		return fmt.Errorf("netlinkdp: %s: %w", b.name, err)
	}
	var errs []error
	for _, c := range diff.Changes {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		o := c.Object()
		if o.Kind() == dataplane.KindMSSRule {
			continue
		}
		if err := b.apply(c, l); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", c.Op, o.String(), err))
			continue
		}
		b.log.Debug("dataplane change", "backend", b.name, "change", c.String())
	}
	if diff.Has(dataplane.KindMSSRule) {
		b.mu.Lock()
		err := nft.Replace(b.nft, desired.MSSRules)
		b.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Backend) apply(c dataplane.Change, l links) error {
	o := c.Object()
	dev := ""
	switch o := o.(type) {
	case dataplane.Route:
		dev = o.Dev
	case dataplane.Address:
		dev = o.Dev
	case dataplane.ProxyNeighbor:
		dev = o.Dev
	}
	index, ok := l.byName[dev]
	if !ok {
		if c.Op == dataplane.OpRemove {
			return nil // the interface is gone, and with it the object
		}
		return fmt.Errorf("interface %s does not exist", dev)
	}
	switch o := o.(type) {
	case dataplane.Route:
		r := kernelRoute(o, index)
		switch c.Op {
		case dataplane.OpAdd:
			if err := b.h.RouteAdd(r); err != nil {
				if errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("a foreign route with the same destination, table and metric exists: %w", err)
				}
				return err
			}
			return nil
		case dataplane.OpReplace:
			return b.h.RouteReplace(r)
		default:
			// The kernel deletes only a route whose protocol matches: never a foreign one.
			return b.h.RouteDel(r)
		}
	case dataplane.Address:
		switch c.Op {
		case dataplane.OpRemove:
			ipn := &net.IPNet{IP: o.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(o.Prefix.Bits(), o.Prefix.Addr().BitLen())}
			link, err := b.h.LinkByIndex(index)
			if err != nil {
				return fmt.Errorf("interface %s: %w", dev, err)
			}
			return b.h.AddrDel(link, &netlink.Addr{IPNet: ipn, LinkIndex: index})
		default:
			if err := b.addAddr(index, o.Prefix); err != nil {
				if errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("the address is already configured by someone else: %w", err)
				}
				return err
			}
			return nil
		}
	case dataplane.ProxyNeighbor:
		switch c.Op {
		case dataplane.OpRemove:
			return b.delProxyNeigh(index, o.Addr)
		default:
			if err := b.addProxyNeigh(index, o.Addr); err != nil {
				if errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("a foreign proxy entry exists: %w", err)
				}
				return err
			}
			return nil
		}
	}
	return fmt.Errorf("unsupported object kind %s", o.Kind())
}

// kernelRoute converts a normalized dataplane.Route.
func kernelRoute(o dataplane.Route, index int) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: index,
		Dst:       &net.IPNet{IP: o.Dst.Addr().AsSlice(), Mask: net.CIDRMask(o.Dst.Bits(), o.Dst.Addr().BitLen())},
		Table:     o.Table,
		Priority:  o.Metric,
		Protocol:  dataplane.RouteProtocol,
		Family:    family(o.Dst.Addr()),
	}
	if o.Via.IsValid() {
		r.Gw = net.IP(o.Via.AsSlice())
	} else if o.Dst.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}
