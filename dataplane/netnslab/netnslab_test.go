package netnslab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/dataplane/internal/nstest"
	"routerd.net/routerd/schemas"
)

func TestLab(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireBinary(t, "ping")
	ctx := context.Background()
	prefix := nstest.Name("rdl") + "-"
	lab, err := Setup(ctx, Options{Routers: []string{"a", "b", "c"}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Teardown(); err != nil {
			t.Error(err)
		}
	})
	a, b := lab.Router("a"), lab.Router("b")
	toB, ok := a.LinkTo("b")
	if !ok || toB.Dev != "ovl-b" || toB.Local.String() != "169.254.1.1/30" || toB.Remote.String() != "169.254.1.2" {
		t.Fatalf("link a->b = %+v", toB)
	}
	if len(lab.Router("c").Links) != 2 {
		t.Fatalf("router c links = %+v", lab.Router("c").Links)
	}
	// Router b holds the address; router a claims it over its link to b.
	nstest.Run(t, "ip", "-n", b.NetNS, "addr", "add", "10.88.60.9/32", "dev", "lo")
	claim := dataplane.State{
		Routes:   []dataplane.Route{{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: toB.Dev, Via: toB.Remote, From: "RemoteAddressClaim/onprem-10-88-60-9"}},
		MSSRules: []dataplane.MSSRule{{Dev: toB.Dev, Direction: dataplane.Egress}, {Dev: toB.Dev, Direction: dataplane.Ingress}},
	}
	d, err := lab.Apply(ctx, "a", claim)
	if err != nil {
		t.Fatal(err)
	}
	if add, _, _ := d.Count(); add != 3 {
		t.Fatalf("apply diff:\n%s", d)
	}
	if err := lab.Ping(ctx, "a", netip.MustParseAddr("10.88.60.9")); err != nil {
		t.Fatalf("ping through the claim: %v", err)
	}
	ex, err := lab.Excerpt(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("excerpt:\n%s", ex)
	for _, want := range []string{"10.88.60.9 via 169.254.1.2 dev ovl-b", "maxseg size set rt mtu"} {
		if !strings.Contains(ex, want) {
			t.Errorf("excerpt lacks %q:\n%s", want, ex)
		}
	}
	if err := lab.Teardown(); err != nil {
		t.Fatal(err)
	}
	for _, r := range lab.Routers {
		if _, err := os.Stat(filepath.Join("/run/netns", r.NetNS)); !os.IsNotExist(err) {
			t.Errorf("netns %s still exists after Teardown (%v)", r.NetNS, err)
		}
	}
	if err := lab.Teardown(); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
}

func TestSetupRejectsBadNames(t *testing.T) {
	nstest.RequireRoot(t)
	tests := []struct {
		name    string
		routers []string
	}{
		{name: "none", routers: nil},
		{name: "too long", routers: []string{"a-very-long-name"}},
		{name: "duplicate", routers: []string{"a", "a"}},
		{name: "upper case", routers: []string{"A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if lab, err := Setup(context.Background(), Options{Routers: tt.routers, Prefix: nstest.Name("rdl")}); err == nil {
				lab.Teardown()
				t.Fatalf("Setup(%q) succeeded", tt.routers)
			}
		})
	}
}

// siteYAML is a router's config with one overlay peer (the on-prem site) and a claim
// routed to it.
func siteYAML(local, remote string) string {
	return fmt.Sprintf(`apiVersion: hybrid.routerd.net/v1alpha1
kind: OverlayPeer
metadata: {name: onprem-main}
spec:
  role: cloud
  underlay: {type: wireguard, interface: wg-hybrid, address: %s}
  remote: {nodeID: onprem, address: %s}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: AddressMobilityDomain
metadata: {name: lab}
spec: {prefix: 10.88.0.0/16, peerRef: onprem-main}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: RemoteAddressClaim
metadata: {name: onprem-10-88-60-9}
spec: {domainRef: lab, address: 10.88.60.9, delivery: {peerRef: onprem-main, tunnelInterface: wg-hybrid}}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: MSSClamp
metadata: {name: overlay}
spec: {peerRefs: [onprem-main]}
`, local, remote)
}

// TestLabFromConfig reproduces a config's interface names with explicit links: the
// router's "wg-hybrid" leads to an on-prem site holding the claimed address; the config's
// claim, applied for real, makes the address reachable.
func TestLabFromConfig(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireBinary(t, "ping")
	ctx := context.Background()
	lab, err := Setup(ctx, Options{
		Routers: []string{"router-b", "onprem"},
		Prefix:  nstest.Name("rdl") + "-",
		Links:   []LinkSpec{{A: "router-b", DevA: "wg-hybrid", B: "onprem", DevB: "to-b", AddrB: netip.MustParsePrefix("10.255.1.2/30")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Teardown() })
	if err := lab.AddAddress("onprem", "lo", netip.MustParsePrefix("10.88.60.9/32")); err != nil {
		t.Fatal(err)
	}
	cfg, err := schemas.Decode("site.yaml", []byte(siteYAML("10.255.1.1/30", "10.255.1.2")))
	if err != nil {
		t.Fatal(err)
	}
	res := desired.FromConfig(cfg, desired.Options{})
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %q", res.Problems)
	}
	if err := lab.Ping(ctx, "router-b", netip.MustParseAddr("10.88.60.9")); err == nil {
		t.Fatal("10.88.60.9 reachable before the claim was applied")
	}
	d, err := lab.Apply(ctx, "router-b", res.State)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied:\n%s", d)
	if err := lab.Ping(ctx, "router-b", netip.MustParseAddr("10.88.60.9")); err != nil {
		t.Fatal(err)
	}
	if err := lab.AddRoute("onprem", netip.MustParsePrefix("10.99.0.0/16"), "to-b", netip.MustParseAddr("10.255.1.1")); err != nil {
		t.Fatal(err)
	}
	if err := lab.AddAddress("router-b", "nope", netip.MustParsePrefix("10.1.1.1/32")); err == nil {
		t.Fatal("AddAddress on a missing interface succeeded")
	}
}

// TestSetupFromConfigs builds the topology of two routers whose configs both peer with
// the same on-prem site, applies each router's desired state, and pings the claimed
// address (which lives on the site) from both.
func TestSetupFromConfigs(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireBinary(t, "ping")
	ctx := context.Background()
	cfgB, err := schemas.Decode("b.yaml", []byte(siteYAML("10.255.1.1/30", "10.255.1.2")))
	if err != nil {
		t.Fatal(err)
	}
	cfgC, err := schemas.Decode("c.yaml", []byte(siteYAML("10.255.2.1/30", "10.255.2.2")))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := SetupFromConfigs(ctx, Options{Prefix: nstest.Name("rdl") + "-"}, map[string]*schemas.Config{"router-b": cfgB, "router-c": cfgC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Teardown() })
	var names []string
	for _, r := range lab.Routers {
		names = append(names, r.Name)
	}
	if strings.Join(names, " ") != "router-b router-c onprem" {
		t.Fatalf("lab routers = %q", names)
	}
	if l, ok := lab.Router("onprem").LinkTo("router-c"); !ok || l.Dev != "to-router-c" || l.Local.String() != "10.255.2.2/30" {
		t.Fatalf("onprem link to router-c = %+v", l)
	}
	if err := lab.AddAddress("onprem", "lo", netip.MustParsePrefix("10.88.60.9/32")); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*schemas.Config{"router-b": cfgB, "router-c": cfgC} {
		res := desired.FromConfig(cfg, desired.Options{})
		if _, err := lab.Apply(ctx, name, res.State); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := lab.Ping(ctx, name, netip.MustParseAddr("10.88.60.9")); err != nil {
			t.Fatal(err)
		}
	}
}
