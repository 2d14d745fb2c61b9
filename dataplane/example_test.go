package dataplane_test

import (
	"context"
	"fmt"
	"net/netip"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/fake"
)

// A claim is applied, re-applied (nothing to do), then withdrawn.
func ExampleReconciler() {
	ctx := context.Background()
	r := dataplane.NewReconciler(fake.New("example"), nil)
	defer r.Close()
	claim := dataplane.State{
		Routes: []dataplane.Route{{
			Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "wg-hybrid", Via: netip.MustParseAddr("10.255.0.2"), Metric: 100,
			From: "RemoteAddressClaim/onprem-10-88-60-9",
		}},
		MSSRules: []dataplane.MSSRule{{Dev: "wg-hybrid", Direction: dataplane.Egress}},
	}
	dry, _ := r.DryRun(ctx, claim)
	fmt.Print("dry run:\n", dry)
	d, _ := r.Apply(ctx, claim)
	fmt.Print("apply:\n", d)
	d, _ = r.Apply(ctx, claim)
	fmt.Print("again:\n", d)
	d, _ = r.Apply(ctx, dataplane.State{})
	fmt.Print("withdrawn:\n", d)
	// Output:
	// dry run:
	// + route 10.88.60.9/32 via 10.255.0.2 dev wg-hybrid table main metric 100 proto routerd
	// + mss-rule oifname wg-hybrid tcp flags syn tcp option maxseg size set rt mtu
	// apply:
	// + route 10.88.60.9/32 via 10.255.0.2 dev wg-hybrid table main metric 100 proto routerd
	// + mss-rule oifname wg-hybrid tcp flags syn tcp option maxseg size set rt mtu
	// again:
	// no changes
	// withdrawn:
	// - mss-rule oifname wg-hybrid tcp flags syn tcp option maxseg size set rt mtu
	// - route 10.88.60.9/32 via 10.255.0.2 dev wg-hybrid table main metric 100 proto routerd
}
