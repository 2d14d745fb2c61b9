package observe

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/internal/nstest"
	"routerd.net/routerd/dataplane/netlinkdp"
)

// recorder collects observations and signals each one.
type recorder struct {
	mu        sync.Mutex
	obs       []Observation
	sentinels []string
	more      chan struct{} // receives a value (non-blocking) after every observation
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) emit(o Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func line(o Observation) string {
	l := fmt.Sprintf("%s %s dev %s domain %s", o.Kind, o.Address, o.Interface, o.Domain)
	if o.PreviousMAC != "" {
		l += " mac " + o.MAC + " was " + o.PreviousMAC
	}
	return l
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, o := range r.obs {
		out = append(out, line(o))
	}
	return out
}

// barrier makes the kernel report one more neighbor (a sentinel address of the domain,
// never used otherwise) and waits, bounded, until the observer reports it. Netlink
// delivers updates in order and the observer handles them in order, so every update the
// test caused before the barrier has been handled: the observations are complete. It
// returns them without the sentinels'.
func (r *recorder) barrier(t *testing.T, router *nstest.NS) []string {
	t.Helper()
	r.mu.Lock()
	n := len(r.sentinels)
	r.mu.Unlock()
	addr := fmt.Sprintf("10.88.60.%d", 200+n)
	r.mu.Lock()
	r.sentinels = append(r.sentinels, addr)
	r.mu.Unlock()
	router.IP(t, "neigh", "replace", addr, "lladdr", fmt.Sprintf("02:00:00:00:02:%02x", n), "dev", "lan0", "nud", "permanent")
	want := fmt.Sprintf("%s %s dev lan0 domain campus", AddressObserved, addr)
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for !slices.Contains(r.lines(), want) {
		select {
		case <-r.more:
		case <-timeout.C:
			t.Fatalf("the observer did not report the sentinel %s within 5s; observations: %q", addr, r.lines())
		}
	}
	var out []string
	for _, l := range r.lines() {
		sentinel := false
		for _, a := range r.sentinels {
			sentinel = sentinel || strings.Contains(l, " "+a+" ")
		}
		if !sentinel {
			out = append(out, l)
		}
	}
	return out
}

func TestObserver(t *testing.T) {
	nstest.RequireBinary(t, "ping")
	router, hosts := nstest.New(t), nstest.New(t)
	nstest.Veth(t, router, "lan0", hosts, "eth0")
	router.IP(t, "addr", "add", "10.88.60.1/24", "dev", "lan0")
	// Two hosts in the domain, one outside it, and a remote (claimed) address that
	// happens to answer on the same link.
	for _, a := range []string{"10.88.60.50/24", "10.88.60.51/24", "10.88.70.9/16", "192.168.5.5/24"} {
		hosts.IP(t, "addr", "add", a, "dev", "eth0")
	}
	router.IP(t, "addr", "add", "192.168.5.1/24", "dev", "lan0")

	b, err := netlinkdp.Open(netlinkdp.Options{NetNS: router.Name})
	if err != nil {
		t.Fatal(err)
	}
	rec := dataplane.NewReconciler(b, nil)
	t.Cleanup(func() { rec.Close() })
	// routerd routes the claimed address 10.88.70.9 itself (here: over the same link).
	if _, err := rec.Apply(context.Background(), dataplane.State{Routes: []dataplane.Route{
		{Dst: netip.MustParsePrefix("10.88.70.9/32"), Dev: "lan0", From: "RemoteAddressClaim/cloud-10-88-70-9"},
	}}); err != nil {
		t.Fatal(err)
	}

	r := newRecorder()
	obs, err := Start(Options{
		NetNS:   router.Name,
		Domains: []Domain{{Name: "campus", Prefix: netip.MustParsePrefix("10.88.0.0/16")}},
		Ignore:  IgnoreOwned(rec),
		Emit:    r.emit,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })

	ping := func(addr string) {
		if err := router.Ping(addr); err != nil {
			t.Fatal(err)
		}
	}
	ping("10.88.60.50")
	ping("10.88.60.50") // same host again: no second event
	ping("10.88.60.51")
	ping("192.168.5.5") // outside every domain
	ping("10.88.70.9")  // routerd's own claim route: never observed
	got := r.barrier(t, router)
	want := []string{
		"address-observed 10.88.60.50 dev lan0 domain campus",
		"address-observed 10.88.60.51 dev lan0 domain campus",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("observations:\n%q\nwant:\n%q", got, want)
	}
	if n := router.IP(t, "neigh", "show", "10.88.70.9"); n == "" {
		t.Fatal("test setup: the claimed address was never resolved on the link, the echo case was not exercised")
	}

	// The host moves: its entry now points at another link-layer address.
	router.IP(t, "neigh", "replace", "10.88.60.51", "lladdr", "02:00:00:00:00:51", "dev", "lan0", "nud", "reachable")
	got = r.barrier(t, router)
	if len(got) != 3 || got[2] != "neighbor-moved 10.88.60.51 dev lan0 domain campus mac 02:00:00:00:00:51 was "+macOf(t, hosts) {
		t.Fatalf("after the move: %q", got)
	}
	// The host moves to another site: routerd claims it there (routes it away), and the
	// observer forgets it. When it comes back (the claim is withdrawn and the host answers
	// here again) it is announced again.
	claimed := dataplane.State{Routes: []dataplane.Route{
		{Dst: netip.MustParsePrefix("10.88.70.9/32"), Dev: "lan0"},
		{Dst: netip.MustParsePrefix("10.88.60.50/32"), Dev: "lan0", From: "RemoteAddressClaim/cloud-10-88-60-50"},
	}}
	if _, err := rec.Apply(context.Background(), claimed); err != nil {
		t.Fatal(err)
	}
	router.IP(t, "neigh", "replace", "10.88.60.50", "lladdr", "02:00:00:00:00:50", "dev", "lan0", "nud", "reachable")
	if got = r.barrier(t, router); len(got) != 3 {
		t.Fatalf("a claimed-away host was observed: %q", got)
	}
	claimed.Routes = claimed.Routes[:1]
	if _, err := rec.Apply(context.Background(), claimed); err != nil {
		t.Fatal(err)
	}
	router.IP(t, "neigh", "replace", "10.88.60.50", "lladdr", "02:00:00:00:00:52", "dev", "lan0", "nud", "reachable")
	got = r.barrier(t, router)
	if len(got) != 4 || got[3] != "address-observed 10.88.60.50 dev lan0 domain campus" {
		t.Fatalf("the returning host: %q", got)
	}

	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := obs.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func macOf(t *testing.T, ns *nstest.NS) string {
	out := ns.IP(t, "-br", "link", "show", "eth0")
	var name, state, mac string
	fmt.Sscan(out, &name, &state, &mac)
	return mac
}

func TestOwns(t *testing.T) {
	s := dataplane.State{
		Routes:         []dataplane.Route{{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "wg0"}},
		Addresses:      []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.1.1/30"), Dev: "wg0"}},
		ProxyNeighbors: []dataplane.ProxyNeighbor{{Addr: netip.MustParseAddr("10.1.1.1"), Dev: "lan0"}},
	}
	tests := []struct {
		name string
		ip   string
		want bool
	}{
		{name: "inside routed prefix", ip: "10.200.3.4", want: true},
		{name: "routerd's address", ip: "169.254.1.1", want: true},
		{name: "same subnet, other host", ip: "169.254.1.2", want: false},
		{name: "proxied", ip: "10.1.1.1", want: true},
		{name: "unrelated", ip: "10.3.3.3", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Owns(s, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Owns(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

// TestSeen drives the observer's bookkeeping directly (no netlink): sequences of
// sightings and the observations they produce.
func TestSeen(t *testing.T) {
	type sighting struct {
		ip, dev, mac string
		owned        bool // routerd routes the address away at that moment
	}
	tests := []struct {
		name       string
		clientIPv4 bool
		seen       []sighting
		want       []string
	}{
		{
			name: "new, repeated, moved",
			seen: []sighting{{ip: "10.88.1.1", dev: "lan0", mac: "02:00:00:00:00:01"}, {ip: "10.88.1.1", dev: "lan0", mac: "02:00:00:00:00:01"}, {ip: "10.88.1.1", dev: "lan1", mac: "02:00:00:00:00:01"}},
			want: []string{"address-observed 10.88.1.1 dev lan0 domain campus", "neighbor-moved 10.88.1.1 dev lan1 domain campus mac 02:00:00:00:00:01 was 02:00:00:00:00:01"},
		},
		{
			name: "outside every domain",
			seen: []sighting{{ip: "192.0.2.1", dev: "lan0", mac: "02:00:00:00:00:01"}},
		},
		{
			name: "most specific domain",
			seen: []sighting{{ip: "10.88.200.1", dev: "lan0", mac: "02:00:00:00:00:01"}},
			want: []string{"address-observed 10.88.200.1 dev lan0 domain dc"},
		},
		{
			name: "owned, then back",
			seen: []sighting{{ip: "10.88.1.1", dev: "lan0", mac: "02:00:00:00:00:01"}, {ip: "10.88.1.1", dev: "lan0", mac: "02:00:00:00:00:01", owned: true}, {ip: "10.88.1.1", dev: "lan0", mac: "02:00:00:00:00:01"}},
			want: []string{"address-observed 10.88.1.1 dev lan0 domain campus", "address-observed 10.88.1.1 dev lan0 domain campus"},
		},
		{
			name:       "client ipv4 compatibility events",
			clientIPv4: true,
			seen:       []sighting{{ip: "10.88.1.1", dev: "lan0", mac: "02:00:00:00:00:01"}, {ip: "2001:db8:88::1", dev: "lan0", mac: "02:00:00:00:00:02"}},
			want:       []string{"address-observed 10.88.1.1 dev lan0 domain campus", "client-ipv4-observed 10.88.1.1 dev  domain campus", "address-observed 2001:db8:88::1 dev lan0 domain campus6"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			owned := false
			o := &Observer{known: map[netip.Addr]location{}, opts: Options{
				Domains: []Domain{
					{Name: "campus", Prefix: netip.MustParsePrefix("10.88.0.0/16")},
					{Name: "dc", Prefix: netip.MustParsePrefix("10.88.200.0/24")},
					{Name: "campus6", Prefix: netip.MustParsePrefix("2001:db8:88::/48")},
				},
				Ignore:     func(netip.Addr) bool { return owned },
				ClientIPv4: tt.clientIPv4,
				OwnerSide:  "cloud",
				Emit:       r.emit,
				Now:        func() time.Time { return time.Unix(1e9, 0) },
			}}
			for _, s := range tt.seen {
				owned = s.owned
				o.seen(netip.MustParseAddr(s.ip), s.dev, s.mac)
			}
			if got := r.lines(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("observations:\n%q\nwant:\n%q", got, tt.want)
			}
			for _, ob := range r.obs {
				if ob.Kind == ClientIPv4Observed && ob.OwnerSide != "cloud" {
					t.Errorf("ownerSide = %q", ob.OwnerSide)
				}
				if !ob.At.Equal(time.Unix(1e9, 0)) {
					t.Errorf("%s at %v, want the injected clock's time", ob.Kind, ob.At)
				}
			}
		})
	}
}
