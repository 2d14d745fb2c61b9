package netlinkdp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/internal/nstest"
)

// claims returns n host-route claims through dev.
func claims(n int, dev string) dataplane.State {
	var s dataplane.State
	for i := range n {
		dst := netip.AddrFrom4([4]byte{10, 90, byte(i >> 8), byte(i)})
		s.Routes = append(s.Routes, dataplane.Route{Dst: netip.PrefixFrom(dst, 32), Dev: dev, Metric: 100, From: fmt.Sprintf("RemoteAddressClaim/c%d", i)})
	}
	s.MSSRules = []dataplane.MSSRule{{Dev: dev, Direction: dataplane.Egress}, {Dev: dev, Direction: dataplane.Ingress}}
	return s
}

// BenchmarkApply1kRoutes applies 1,000 claims in a fresh namespace, then re-reconciles
// the same state, and prints dataplane_apply_1k_routes_ms and dataplane_noop_reconcile_ms
// (medians of 3 rounds, each in its own fresh namespace). As a baseline measured in the
// same run it logs the time of 1,000 bare netlink RouteAdd calls.
func BenchmarkApply1kRoutes(b *testing.B) {
	nstest.RequireRoot(b)
	const rounds = 3
	var applyMS, noopMS, rawMS []float64
	ctx := context.Background()
	for range rounds {
		ns := nstest.New(b)
		ns.Link(b, "wg0")
		be, err := Open(Options{NetNS: ns.Name})
		if err != nil {
			b.Fatal(err)
		}
		r := dataplane.NewReconciler(be, nil)
		desired := claims(1000, "wg0")
		start := time.Now()
		d, err := r.Apply(ctx, desired)
		if err != nil {
			b.Fatal(err)
		}
		applyMS = append(applyMS, ms(time.Since(start)))
		if add, _, _ := d.Count(); add != 1002 {
			b.Fatalf("applied %d objects, want 1002", add)
		}
		start = time.Now()
		d, err = r.Apply(ctx, desired)
		if err != nil {
			b.Fatal(err)
		}
		noopMS = append(noopMS, ms(time.Since(start)))
		if !d.Empty() {
			b.Fatalf("no-op reconcile changed %d objects", len(d.Changes))
		}

		// Baseline: the same number of bare route adds on the same handle.
		link, err := be.h.LinkByName("wg0")
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for i := range 1000 {
			dst := &net.IPNet{IP: net.IPv4(10, 91, byte(i>>8), byte(i)), Mask: net.CIDRMask(32, 32)}
			if err := be.h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}); err != nil {
				b.Fatal(err)
			}
		}
		rawMS = append(rawMS, ms(time.Since(start)))
		r.Close()
	}
	fmt.Printf("BENCH %s %.2f %s\n", "dataplane_apply_1k_routes_ms", median(applyMS), "ms")
	fmt.Printf("BENCH %s %.2f %s\n", "dataplane_noop_reconcile_ms", median(noopMS), "ms")
	b.Logf("baseline: 1,000 bare netlink RouteAdd calls: %.2f ms (median of %d)", median(rawMS), rounds)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
