package netlinkdp

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/dataplane/internal/nstest"
	"routerd.net/routerd/schemas"
)

func open(t *testing.T, ns *nstest.NS) (*dataplane.Reconciler, *Backend) {
	t.Helper()
	b, err := Open(Options{NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	r := dataplane.NewReconciler(b, nil)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if err := b.Close(); err != nil { // idempotent
			t.Error(err)
		}
	})
	return r, b
}

// fullState is a desired state with every kind of object.
func fullState() dataplane.State {
	return dataplane.State{
		Addresses: []dataplane.Address{
			{Prefix: netip.MustParsePrefix("169.254.10.1/30"), Dev: "wg0", From: "OverlayPeer/cloud"},
			{Prefix: netip.MustParsePrefix("fd00:10::1/64"), Dev: "wg0", From: "OverlayPeer/cloud"},
		},
		ProxyNeighbors: []dataplane.ProxyNeighbor{
			{Addr: netip.MustParseAddr("10.88.60.11"), Dev: "lan0", From: "RemoteAddressClaim/c"},
			{Addr: netip.MustParseAddr("2001:db8:60::11"), Dev: "lan0", From: "RemoteAddressClaim/c6"},
		},
		Routes: []dataplane.Route{
			{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "wg0", From: "RemoteAddressClaim/a"},
			{Dst: netip.MustParsePrefix("10.88.60.10/32"), Dev: "wg0", Via: netip.MustParseAddr("169.254.10.2"), From: "RemoteAddressClaim/b"},
			{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "wg0", Table: 100, Metric: 50, From: "HybridRoute/dc"},
			{Dst: netip.MustParsePrefix("2001:db8::9/128"), Dev: "wg0", From: "RemoteAddressClaim/v6"},
		},
		MSSRules: []dataplane.MSSRule{
			{Dev: "wg0", Direction: dataplane.Egress, From: "MSSClamp/overlay"},
			{Dev: "wg0", Direction: dataplane.Ingress, From: "MSSClamp/overlay"},
		},
	}
}

// router creates a namespace with a tunnel-like interface wg0 and a LAN interface lan0,
// plus foreign objects routerd must never touch.
func router(t *testing.T) *nstest.NS {
	ns := nstest.New(t)
	ns.Link(t, "wg0")
	ns.Link(t, "lan0")
	ns.IP(t, "addr", "add", "10.9.9.1/24", "dev", "lan0")
	// wg0 keeps a foreign address: when an interface loses its last IPv4 address the
	// kernel drops every IPv4 route through it, foreign ones included.
	ns.IP(t, "addr", "add", "10.7.7.1/24", "dev", "wg0")
	ns.IP(t, "route", "add", "10.88.60.20/32", "dev", "wg0", "proto", "static")
	ns.IP(t, "route", "add", "10.200.0.0/16", "dev", "wg0", "table", "100", "metric", "60")
	ns.IP(t, "neigh", "add", "proxy", "10.9.9.77", "dev", "lan0")
	return ns
}

// foreignIntact asserts router's foreign objects are still there.
func foreignIntact(t *testing.T, ns *nstest.NS) {
	t.Helper()
	for _, c := range []struct{ args, want string }{
		{"route show 10.88.60.20/32", "10.88.60.20 dev wg0 proto static"},
		{"route show table 100 10.200.0.0/16 metric 60", "10.200.0.0/16 dev wg0"},
		{"addr show dev lan0", "10.9.9.1/24"},
		{"neigh show proxy", "10.9.9.77 dev lan0"},
	} {
		if out := ns.IP(t, strings.Fields(c.args)...); !strings.Contains(out, c.want) {
			t.Errorf("foreign object gone: ip %s:\n%s\nwant %q", c.args, out, c.want)
		}
	}
}

func apply(t *testing.T, r *dataplane.Reconciler, s dataplane.State) dataplane.Diff {
	t.Helper()
	d, err := r.Apply(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestApplyIdempotentDriftWithdraw(t *testing.T) {
	nstest.RequireBinary(t, "nft")
	ns := router(t)
	r, b := open(t, ns)
	ctx := context.Background()
	desired := fullState()

	dry, err := r.DryRun(ctx, desired)
	if err != nil {
		t.Fatal(err)
	}
	if add, _, _ := dry.Count(); add != desired.Len() {
		t.Fatalf("dry run adds %d objects, want %d:\n%s", add, desired.Len(), dry)
	}
	if out := ns.IP(t, "route", "show", "proto", "196"); out != "" {
		t.Fatalf("dry run changed the kernel: %s", out)
	}
	d := apply(t, r, desired)
	if d.String() != dry.String() {
		t.Errorf("apply diff\n%s\ndiffers from dry run\n%s", d, dry)
	}

	// Read back independently with ip(8).
	for _, c := range []struct{ args, want string }{
		{"route show proto 196", "10.88.60.9 dev wg0 scope link"},
		{"route show proto 196", "10.88.60.10 via 169.254.10.2 dev wg0"},
		{"route show table 100 proto 196", "10.200.0.0/16 dev wg0 scope link metric 50"},
		{"-6 route show proto 196", "2001:db8::9 dev wg0 metric 1024"},
		{"addr show dev wg0", "169.254.10.1/30 scope global"},
		{"neigh show proxy", "10.88.60.11 dev lan0 proxy proto 196"},
		{"-6 neigh show proxy", "2001:db8:60::11 dev lan0 proxy proto 196"},
		{"-6 addr show dev wg0", "fd00:10::1/64"},
	} {
		if out := ns.IP(t, strings.Fields(c.args)...); !strings.Contains(out, c.want) {
			t.Errorf("ip %s:\n%s\nwant a line containing %q", c.args, out, c.want)
		}
	}
	cur, err := b.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := desired.Normalize()
	if cur.String() != want.String() {
		t.Errorf("Current:\n%s\nwant:\n%s", cur, want)
	}
	if d := apply(t, r, desired); !d.Empty() {
		t.Fatalf("re-apply changed something:\n%s", d)
	}
	foreignIntact(t, ns)

	// Drift: one route deleted, one changed, one stale routerd route added by hand.
	ns.IP(t, "route", "del", "10.88.60.9/32", "dev", "wg0")
	ns.IP(t, "route", "replace", "10.88.60.10/32", "dev", "lan0", "proto", "196")
	ns.IP(t, "route", "add", "10.77.0.1/32", "dev", "wg0", "proto", "196")
	ns.Exec(t, "nft", "flush", "chain", "inet", "routerd", "forward")
	d = apply(t, r, desired)
	wantRepair := []string{
		"- route 10.77.0.1/32 dev wg0 table main metric 0 proto routerd",
		"~ route 10.88.60.10/32 via 169.254.10.2 dev wg0 table main metric 0 proto routerd (was: route 10.88.60.10/32 dev lan0 table main metric 0 proto routerd)",
		"+ route 10.88.60.9/32 dev wg0 table main metric 0 proto routerd",
		"+ mss-rule iifname wg0 tcp flags syn tcp option maxseg size set rt mtu",
		"+ mss-rule oifname wg0 tcp flags syn tcp option maxseg size set rt mtu",
	}
	if got := strings.TrimSpace(d.String()); got != strings.Join(wantRepair, "\n") {
		t.Errorf("repair diff:\n%s\nwant:\n%s", got, strings.Join(wantRepair, "\n"))
	}
	if d := apply(t, r, desired); !d.Empty() {
		t.Fatalf("after repair, re-apply changed something:\n%s", d)
	}

	// Withdraw an expired claim (and its proxy entry).
	withdrawn := fullState()
	withdrawn.Routes = withdrawn.Routes[1:]
	withdrawn.ProxyNeighbors = withdrawn.ProxyNeighbors[1:]
	d = apply(t, r, withdrawn)
	if got := strings.TrimSpace(d.String()); got != "- route 10.88.60.9/32 dev wg0 table main metric 0 proto routerd\n- proxy-neighbor 10.88.60.11 dev lan0 proto routerd" {
		t.Errorf("withdraw diff:\n%s", got)
	}
	if out := ns.IP(t, "route", "show", "10.88.60.9/32"); out != "" {
		t.Errorf("withdrawn route still there: %s", out)
	}

	// Empty desired state: everything of routerd's goes, nothing foreign.
	apply(t, r, dataplane.State{})
	for _, args := range []string{"route show proto 196", "route show table all proto 196", "neigh show proxy proto 196", "-6 neigh show proxy proto 196"} {
		if out := ns.IP(t, strings.Fields(args)...); out != "" {
			t.Errorf("ip %s after empty apply:\n%s", args, out)
		}
	}
	if out := ns.IP(t, "addr", "show", "dev", "wg0"); strings.Contains(out, "169.254.10.1") || strings.Contains(out, "fd00:10::1") {
		t.Errorf("routerd's address still there:\n%s", out)
	}
	if out, err := exec.Command("ip", "netns", "exec", ns.Name, "nft", "list", "table", "inet", "routerd").CombinedOutput(); err == nil {
		t.Errorf("routerd's table still there:\n%s", out)
	}
	foreignIntact(t, ns)
}

func TestForeignConflictNotOverwritten(t *testing.T) {
	ns := router(t)
	r, _ := open(t, ns)
	desired := dataplane.State{Routes: []dataplane.Route{
		// Same destination, table and metric as the foreign route of router().
		{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "lan0", Table: 100, Metric: 60, From: "HybridRoute/x"},
		{Dst: netip.MustParsePrefix("10.88.60.30/32"), Dev: "wg0", From: "RemoteAddressClaim/y"},
	}}
	_, err := r.Apply(context.Background(), desired)
	if err == nil || !strings.Contains(err.Error(), "foreign route") {
		t.Fatalf("apply error = %v, want a foreign route conflict", err)
	}
	if out := ns.IP(t, "route", "show", "10.88.60.30/32"); !strings.Contains(out, "dev wg0") {
		t.Errorf("the non-conflicting route was not applied: %q", out)
	}
	foreignIntact(t, ns)
	// Withdrawing our wish does not remove the foreign route either.
	apply(t, r, dataplane.State{})
	foreignIntact(t, ns)
}

func TestMSSRulesReadBack(t *testing.T) {
	nstest.RequireBinary(t, "nft")
	ns := router(t)
	r, b := open(t, ns)
	s := dataplane.State{MSSRules: []dataplane.MSSRule{
		{Dev: "wg0", Direction: dataplane.Egress, MSS: 1360},
		{Dev: "wg0", Direction: dataplane.Ingress, MSS: 1360},
	}}
	apply(t, r, s)
	insp, err := b.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Normalize()
	if !insp.TablePresent || len(insp.ForeignInTable) != 0 || insp.Owned.String() != want.String() {
		t.Fatalf("read back through netlink: present=%v foreign=%q owned:\n%s", insp.TablePresent, insp.ForeignInTable, insp.Owned)
	}
	out := ns.Exec(t, "nft", "list", "chain", "inet", "routerd", "forward")
	for _, w := range []string{
		"type filter hook forward priority mangle; policy accept;",
		`iifname "wg0" tcp flags syn tcp option maxseg size > 1360 tcp option maxseg size set 1360`,
		`oifname "wg0" tcp flags syn tcp option maxseg size > 1360 tcp option maxseg size set 1360`,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("nft list chain:\n%s\nwant %q", out, w)
		}
	}
}

// TestPingFollowsClaim proves traffic follows a claim: router A routes the claimed
// address over its link to router B, where the address lives; a ping from A reaches B.
func TestPingFollowsClaim(t *testing.T) {
	nstest.RequireBinary(t, "ping")
	a, bns := nstest.New(t), nstest.New(t)
	nstest.Veth(t, a, "ovl-b", bns, "ovl-a")
	rb, _ := open(t, bns)
	ra, _ := open(t, a)
	// B holds the claimed host address on a dummy interface and its overlay address.
	bns.Link(t, "host0")
	bns.IP(t, "addr", "add", "10.88.60.9/32", "dev", "host0")
	apply(t, rb, dataplane.State{
		Addresses: []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.20.2/30"), Dev: "ovl-a"}},
	})
	ping := func() error {
		return a.Ping("10.88.60.9")
	}
	apply(t, ra, dataplane.State{
		Addresses: []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.20.1/30"), Dev: "ovl-b"}},
	})
	if ping() == nil {
		t.Fatal("ping reached 10.88.60.9 before any claim was applied")
	}
	apply(t, ra, dataplane.State{
		Addresses: []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.20.1/30"), Dev: "ovl-b"}},
		Routes:    []dataplane.Route{{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "ovl-b", Via: netip.MustParseAddr("169.254.20.2"), From: "RemoteAddressClaim/onprem-10-88-60-9"}},
		MSSRules:  []dataplane.MSSRule{{Dev: "ovl-b", Direction: dataplane.Egress}, {Dev: "ovl-b", Direction: dataplane.Ingress}},
	})
	if err := ping(); err != nil {
		t.Fatalf("ping 10.88.60.9 from %s after the claim: %v\n%s", a.Name, err, a.IP(t, "route"))
	}
	// Withdraw the claim: the address is unreachable again.
	apply(t, ra, dataplane.State{
		Addresses: []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.20.1/30"), Dev: "ovl-b"}},
	})
	if ping() == nil {
		t.Fatal("ping still reaches 10.88.60.9 after the claim was withdrawn")
	}
}

func TestInspectForDoctor(t *testing.T) {
	nstest.RequireBinary(t, "nft")
	ns := router(t)
	r, b := open(t, ns)
	desired := fullState()
	apply(t, r, desired)
	ctx := context.Background()
	insp, err := b.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := dataplane.Check(desired, nil, insp)
	if !rep.OK {
		t.Fatalf("healthy dataplane fails the checks: %+v", rep)
	}
	// Break it: a route drifts, someone adds to routerd's table, a foreign more specific
	// route appears inside a routed prefix, and the desired state names a missing interface.
	ns.IP(t, "route", "del", "10.88.60.9/32", "dev", "wg0")
	ns.Exec(t, "nft", "add", "rule", "inet", "routerd", "forward", "counter")
	ns.IP(t, "route", "add", "10.200.5.0/24", "dev", "lan0", "table", "100")
	ns.IP(t, "route", "add", "blackhole", "10.66.0.0/16", "proto", "196")
	desired.Routes = append(desired.Routes, dataplane.Route{Dst: netip.MustParsePrefix("10.88.61.1/32"), Dev: "wg9", From: "RemoteAddressClaim/z"})
	insp, err = b.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep = dataplane.Check(desired, []string{"RemoteAddressClaim/z: peerRef nowhere: no such OverlayPeer"}, insp)
	if rep.OK {
		t.Fatal("broken dataplane passes the checks")
	}
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.Name] = c.Status + ": " + strings.Join(c.Details, "; ")
	}
	for name, want := range map[string]string{
		"references":     "fail: RemoteAddressClaim/z: peerRef nowhere",
		"interfaces":     "fail: interface wg9 does not exist (used by RemoteAddressClaim/z)",
		"drift":          "missing: route 10.88.60.9/32 dev wg0 table main metric 0 proto routerd; missing: route 10.88.61.1/32 dev wg9 table main metric 0 proto routerd; unmanaged: route 10.66.0.0/16 table 254 type 6",
		"nft-foreign":    "fail: rule handle",
		"foreign-routes": "fail: route 10.200.5.0/24 dev lan0 table 100 metric 0 proto 3 inside 10.200.0.0/16 (from HybridRoute/dc)",
	} {
		if !strings.Contains(got[name], want) {
			t.Errorf("check %s = %q, want it to contain %q", name, got[name], want)
		}
	}
}

// TestKernelDeletesOnlyByProtocol checks the kernel rule the backend relies on: a delete
// carrying routerd's protocol never removes a foreign route with the same key.
func TestKernelDeletesOnlyByProtocol(t *testing.T) {
	ns := router(t)
	ns.IP(t, "-6", "route", "add", "2001:db8:77::/64", "dev", "wg0", "metric", "1024")
	_, b := open(t, ns)
	tests := []struct {
		name  string
		route dataplane.Route
		show  string
		want  string
	}{
		{name: "ipv4", route: dataplane.Route{Dst: netip.MustParsePrefix("10.88.60.20/32"), Dev: "wg0", Table: 254},
			show: "route show 10.88.60.20/32", want: "10.88.60.20 dev wg0 proto static"},
		{name: "ipv4 other table", route: dataplane.Route{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "wg0", Table: 100, Metric: 60},
			show: "route show table 100", want: "10.200.0.0/16 dev wg0 scope link metric 60"},
		{name: "ipv6", route: dataplane.Route{Dst: netip.MustParsePrefix("2001:db8:77::/64"), Dev: "wg0", Table: 254, Metric: 1024},
			show: "-6 route show 2001:db8:77::/64", want: "2001:db8:77::/64 dev wg0 metric 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := b.links()
			if err != nil {
				t.Fatal(err)
			}
			if err := b.h.RouteDel(kernelRoute(tt.route, l.byName[tt.route.Dev])); err == nil {
				t.Error("deleting with routerd's protocol succeeded on a foreign route")
			}
			if out := ns.IP(t, strings.Fields(tt.show)...); !strings.Contains(out, tt.want) {
				t.Fatalf("foreign route gone: ip %s:\n%s\nwant %q", tt.show, out, tt.want)
			}
		})
	}
}

// TestTransitionsRandomOrder drives one namespace through random transitions between
// states and checks after each step that the kernel holds exactly the desired objects,
// that re-applying changes nothing, and at the end that no foreign object was touched.
func TestTransitionsRandomOrder(t *testing.T) {
	ns := router(t)
	r, b := open(t, ns)
	ctx := context.Background()
	full := fullState()
	moved := fullState()
	moved.Routes[0].Via = netip.MustParseAddr("169.254.10.2") // 10.88.60.9 now via the peer
	moved.Routes[2].Metric = 70                               // 10.200.0.0/16: another key
	moved.MSSRules = []dataplane.MSSRule{{Dev: "lan0", Direction: dataplane.Egress, MSS: 1400}}
	states := []dataplane.State{
		{},
		full,
		moved,
		{Routes: full.Routes[3:]}, // IPv6 only
		{Addresses: full.Addresses[:1], Routes: full.Routes[1:2]},
		{MSSRules: full.MSSRules},
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for step := range 30 {
		i := rng.IntN(len(states))
		if _, err := r.Apply(ctx, states[i]); err != nil {
			t.Fatalf("step %d (state %d): %v", step, i, err)
		}
		cur, err := b.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := states[i].Normalize()
		if cur.String() != want.String() {
			t.Fatalf("step %d (state %d): kernel holds\n%s\nwant\n%s", step, i, cur, want)
		}
		if d := apply(t, r, states[i]); !d.Empty() {
			t.Fatalf("step %d (state %d): re-apply changed:\n%s", step, i, d)
		}
	}
	foreignIntact(t, ns)
}

const claimConfig = `apiVersion: hybrid.routerd.net/v1alpha1
kind: OverlayPeer
metadata: {name: cloud}
spec:
  role: onprem
  underlay: {type: wireguard, interface: wg0, address: 169.254.10.1/30}
  remote: {address: 169.254.10.2}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: AddressMobilityDomain
metadata: {name: lab}
spec: {prefix: 10.88.0.0/16, peerRef: cloud}
`

// TestExpiredClaimWithdrawn follows a claim from a dynamic part into the kernel and out
// again when the part expires.
func TestExpiredClaimWithdrawn(t *testing.T) {
	ns := router(t)
	r, _ := open(t, ns)
	cfg, err := schemas.Decode("claims.yaml", []byte(claimConfig))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claim := &schemas.RemoteAddressClaim{
		TypeMeta: schemas.TypeMeta{APIVersion: "hybrid.routerd.net/v1alpha1", Kind: "RemoteAddressClaim"},
		Metadata: schemas.ObjectMeta{Name: "cloud-10-88-60-9"},
		Spec:     schemas.RemoteAddressClaimSpec{DomainRef: "lab", Address: "10.88.60.9", OwnerSide: "cloud"},
	}
	// The claim comes from a live dynamic part (merged by federation/dynamic.MergeConfig).
	res := desired.FromConfig(cfg, desired.Options{Now: now, Claims: []*schemas.RemoteAddressClaim{claim}})
	apply(t, r, res.State)
	if out := ns.IP(t, "route", "show", "10.88.60.9/32"); !strings.Contains(out, "10.88.60.9 via 169.254.10.2 dev wg0 proto 196 metric 100") {
		t.Fatalf("claim route not installed: %q", out)
	}
	// Later the part has expired, the merge no longer yields the claim: the next
	// reconcile withdraws the route.
	res = desired.FromConfig(cfg, desired.Options{Now: now.Add(31 * time.Minute)})
	d := apply(t, r, res.State)
	if got := strings.TrimSpace(d.String()); got != "- route 10.88.60.9/32 via 169.254.10.2 dev wg0 table main metric 100 proto routerd" {
		t.Fatalf("withdraw diff:\n%s", got)
	}
	if out := ns.IP(t, "route", "show", "10.88.60.9/32"); out != "" {
		t.Fatalf("expired claim still routed: %q", out)
	}
	foreignIntact(t, ns)
}

// TestInspectInterfacesDown: Inspect names the interfaces that are down (admin or link),
// for the doctor's overlay check.
func TestInspectInterfacesDown(t *testing.T) {
	ns := router(t)
	_, b := open(t, ns)
	tests := []struct {
		name  string
		setup []string
		want  string
	}{
		{name: "all up", want: ""},
		{name: "wg0 set down", setup: []string{"link", "set", "wg0", "down"}, want: "wg0"},
		{name: "wg0 up again", setup: []string{"link", "set", "wg0", "up"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				ns.IP(t, tt.setup...)
			}
			insp, err := b.Inspect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var down []string
			for _, d := range insp.InterfacesDown {
				if d == "wg0" || d == "lan0" {
					down = append(down, d)
				}
			}
			if got := strings.Join(down, ","); got != tt.want {
				t.Fatalf("InterfacesDown (wg0, lan0) = %q, want %q (all: %v)", got, tt.want, insp.InterfacesDown)
			}
		})
	}
}
