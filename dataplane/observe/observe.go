// Package observe watches a network namespace through netlink (neighbor and address
// subscriptions) and reports hosts inside the prefixes of AddressMobilityDomains: a host
// address seen for the first time becomes an AddressObserved observation, a known address
// that shows up behind another link-layer address or interface becomes NeighborMoved.
//
// Observations are this package's own type: the daemon turns them into federation events
// (dataplane imports neither federation nor host).
//
// Addresses routerd itself routes or installs are ignored (Options.Ignore, e.g.
// IgnoreOwned of the reconciler): a claimed remote address answered over a local link
// must not be observed here and sent back to the federation as if it lived here, which
// would make the claim chase itself (an echo loop).
package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"routerd.net/routerd/dataplane"
)

// Domain is the part of an AddressMobilityDomain the observer needs.
type Domain struct {
	// Name is the AddressMobilityDomain's name.
	Name string
	// Prefix holds the addresses that may move.
	Prefix netip.Prefix
}

// Kind says what an Observation reports.
type Kind string

// Observation kinds.
const (
	// AddressObserved: a host address inside a domain seen for the first time (or again
	// after routerd stopped routing it elsewhere).
	AddressObserved Kind = "address-observed"
	// NeighborMoved: a known host address seen behind another link-layer address or
	// interface (Previous* say where it was).
	NeighborMoved Kind = "neighbor-moved"
	// ClientIPv4Observed: with Options.ClientIPv4, a new IPv4 host once more, for the
	// original routerd event type routerd.client.ipv4.observed (OwnerSide is set).
	ClientIPv4Observed Kind = "client-ipv4-observed"
)

// Observation is one observed fact about a host address.
type Observation struct {
	// Kind says what was observed.
	Kind Kind
	// At is when the observer saw it.
	At time.Time
	// Address is the host address.
	Address netip.Addr
	// Domain is the name of the most specific domain holding Address.
	Domain string
	// Interface and MAC are where the host was seen (empty for ClientIPv4Observed).
	Interface, MAC string
	// PreviousInterface and PreviousMAC are where it was before (NeighborMoved).
	PreviousInterface, PreviousMAC string
	// OwnerSide is Options.OwnerSide (ClientIPv4Observed).
	OwnerSide string
}

// Options configure Start.
type Options struct {
	// NetNS is the namespace name; "" watches the namespace of the process.
	NetNS string
	// Domains are the prefixes to watch; addresses outside all of them are ignored.
	Domains []Domain
	// Ignore reports addresses routerd owns or routes elsewhere; they are never observed.
	Ignore func(netip.Addr) bool
	// LocalAddresses also reports addresses configured on the namespace's own interfaces
	// (not only neighbors).
	LocalAddresses bool
	// ClientIPv4 also emits, for every new IPv4 host, the original routerd event type
	// routerd.client.ipv4.observed (event.ClientIPv4Observed with the domain and
	// OwnerSide), which the bundled event-to-remote-claim plugin turns into claims.
	ClientIPv4 bool
	// OwnerSide is this site's side for ClientIPv4 events: onprem or cloud (default
	// onprem).
	OwnerSide string
	// Emit receives every observation, from one goroutine, in order. Required.
	Emit func(Observation)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives subscription errors; nil discards them.
	Logger *slog.Logger
}

// location is where a host address was last seen.
type location struct {
	dev, mac string
}

// Observer is a running neighbor/address watch. Close stops it.
type Observer struct {
	opts  Options
	log   *slog.Logger
	h     *netlink.Handle
	ns    netns.NsHandle
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	known map[netip.Addr]location
}

// Start subscribes to neighbor and address updates in the namespace (existing entries
// are reported first) and emits observations until Close.
//
// # Errors
//
// Start fails when Emit is nil, the namespace cannot be opened, or a subscription fails.
func Start(opts Options) (*Observer, error) {
	if opts.Emit == nil {
		return nil, errors.New("observe: Options.Emit is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OwnerSide == "" {
		opts.OwnerSide = "onprem"
	}
	if opts.Ignore == nil {
		opts.Ignore = func(netip.Addr) bool { return false }
	}
	o := &Observer{opts: opts, log: opts.Logger, ns: netns.None(), done: make(chan struct{}), known: map[netip.Addr]location{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if opts.NetNS != "" {
		if o.ns, err = netns.GetFromName(opts.NetNS); err != nil {
			return nil, fmt.Errorf("observe: open netns %s: %w", opts.NetNS, err)
		}
	} else if o.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("observe: open current netns: %w", err)
	}
	if o.h, err = netlink.NewHandleAt(o.ns); err != nil {
		o.ns.Close()
		return nil, fmt.Errorf("observe: netlink handle: %w", err)
	}
	onErr := func(err error) { o.log.Warn("observe: netlink subscription error", "netns", opts.NetNS, "err", err) }
	neighCh := make(chan netlink.NeighUpdate, 256)
	if err := netlink.NeighSubscribeWithOptions(neighCh, o.done, netlink.NeighSubscribeOptions{Namespace: &o.ns, ListExisting: true, ErrorCallback: onErr}); err != nil {
		o.Close()
		return nil, fmt.Errorf("observe: subscribe to neighbors: %w", err)
	}
	var addrCh chan netlink.AddrUpdate
	if opts.LocalAddresses {
		addrCh = make(chan netlink.AddrUpdate, 256)
		if err := netlink.AddrSubscribeWithOptions(addrCh, o.done, netlink.AddrSubscribeOptions{Namespace: &o.ns, ListExisting: true, ErrorCallback: onErr}); err != nil {
			o.Close()
			return nil, fmt.Errorf("observe: subscribe to addresses: %w", err)
		}
	}
	o.wg.Add(1)
	go o.run(neighCh, addrCh)
	return o, nil
}

// Close stops the observer and waits for its goroutine; it is idempotent.
func (o *Observer) Close() error {
	o.once.Do(func() {
		close(o.done)
		o.wg.Wait()
		if o.h != nil {
			o.h.Close()
		}
		o.ns.Close()
	})
	return nil
}

// Shutdown is Close bounded by ctx.
func (o *Observer) Shutdown(ctx context.Context) error {
	ch := make(chan struct{})
	go func() { o.Close(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("observe: shutdown: %w", ctx.Err())
	}
}

func (o *Observer) run(neighCh chan netlink.NeighUpdate, addrCh chan netlink.AddrUpdate) {
	defer o.wg.Done()
	for {
		select {
		case <-o.done:
			return
		case u, ok := <-neighCh:
			if !ok {
				return
			}
			o.neighbor(u)
		case u, ok := <-addrCh:
			if !ok {
				addrCh = nil
				continue
			}
			o.address(u)
		}
	}
}

// usable neighbor states: the host answered (or was configured).
const liveStates = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT

func (o *Observer) neighbor(u netlink.NeighUpdate) {
	if u.Type != unix.RTM_NEWNEIGH || u.Flags&unix.NTF_PROXY != 0 || u.State&liveStates == 0 {
		return
	}
	mac := u.HardwareAddr.String()
	if len(u.HardwareAddr) == 0 || isZero(u.HardwareAddr) {
		return
	}
	ip, ok := netip.AddrFromSlice(u.IP)
	if !ok {
		return
	}
	o.seen(ip.Unmap(), o.devName(u.LinkIndex), mac)
}

func (o *Observer) address(u netlink.AddrUpdate) {
	if !u.NewAddr || u.Scope != unix.RT_SCOPE_UNIVERSE {
		return
	}
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok {
		return
	}
	mac := ""
	if l, err := o.h.LinkByIndex(u.LinkIndex); err == nil {
		mac = l.Attrs().HardwareAddr.String()
	}
	o.seen(ip.Unmap(), o.devName(u.LinkIndex), mac)
}

// seen records a host at (dev, mac) and emits what changed.
func (o *Observer) seen(ip netip.Addr, dev, mac string) {
	domain, ok := o.domain(ip)
	if !ok {
		return
	}
	if o.opts.Ignore(ip) {
		// The address lives elsewhere now (routerd routes it away): forget it, so that
		// when it comes back it is announced again.
		delete(o.known, ip)
		return
	}
	now := location{dev: dev, mac: mac}
	prev, known := o.known[ip]
	o.known[ip] = now
	switch {
	case !known:
		at := o.opts.Now()
		o.opts.Emit(Observation{Kind: AddressObserved, At: at, Address: ip, Interface: dev, MAC: mac, Domain: domain})
		if o.opts.ClientIPv4 && ip.Is4() {
			o.opts.Emit(Observation{Kind: ClientIPv4Observed, At: at, Address: ip, OwnerSide: o.opts.OwnerSide, Domain: domain})
		}
	case prev != now:
		o.opts.Emit(Observation{Kind: NeighborMoved, At: o.opts.Now(), Address: ip, Interface: dev, MAC: mac,
			PreviousInterface: prev.dev, PreviousMAC: prev.mac, Domain: domain})
	}
}

// domain returns the most specific domain holding ip.
func (o *Observer) domain(ip netip.Addr) (string, bool) {
	best, bits := "", -1
	for _, d := range o.opts.Domains {
		if d.Prefix.Contains(ip) && d.Prefix.Bits() > bits {
			best, bits = d.Name, d.Prefix.Bits()
		}
	}
	return best, bits >= 0
}

func (o *Observer) devName(index int) string {
	if l, err := o.h.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprintf("if%d", index)
}

func isZero(mac net.HardwareAddr) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return true
}

// IgnoreOwned returns an Ignore function for addresses the reconciler's last applied
// state routes (any route destination holding the address), installs on an interface,
// or answers for (proxy neighbors).
func IgnoreOwned(r *dataplane.Reconciler) func(netip.Addr) bool {
	return func(ip netip.Addr) bool { return Owns(r.LastApplied(), ip) }
}

// Owns reports whether s routes, installs or proxies ip.
func Owns(s dataplane.State, ip netip.Addr) bool {
	for _, rt := range s.Routes {
		if rt.Dst.Contains(ip) {
			return true
		}
	}
	for _, a := range s.Addresses {
		if a.Prefix.Addr() == ip {
			return true
		}
	}
	for _, n := range s.ProxyNeighbors {
		if n.Addr == ip {
			return true
		}
	}
	return false
}
