package dataplane_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/fake"
)

func TestCheckForeignRoutes(t *testing.T) {
	desired := dataplane.State{Routes: []dataplane.Route{
		{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "wg0", Table: 100, Metric: 50, From: "HybridRoute/dc"},
		{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "wg0", Metric: 100, From: "RemoteAddressClaim/a"},
	}}
	kr := func(dst string, table, metric int) dataplane.KernelRoute {
		return dataplane.KernelRoute{Dst: netip.MustParsePrefix(dst), Dev: "eth0", Table: table, Metric: metric, Protocol: 4}
	}
	tests := []struct {
		name    string
		foreign dataplane.KernelRoute
		fail    bool
	}{
		{name: "more specific, same table", foreign: kr("10.200.5.0/24", 100, 500), fail: true},
		{name: "same prefix, worse metric", foreign: kr("10.200.0.0/16", 100, 60), fail: false},
		{name: "same prefix, better metric", foreign: kr("10.200.0.0/16", 100, 10), fail: true},
		{name: "same prefix, same metric", foreign: kr("10.88.60.9/32", 254, 100), fail: true},
		{name: "other table", foreign: kr("10.200.5.0/24", 254, 0), fail: false},
		{name: "covering route", foreign: kr("10.88.0.0/16", 254, 0), fail: false},
		{name: "local table", foreign: kr("10.88.60.9/32", 255, 0), fail: true},
		{name: "unrelated", foreign: kr("192.0.2.0/24", 254, 0), fail: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fake.New("fake check")
			b.SetInterfaces("wg0", "eth0")
			r := dataplane.NewReconciler(b, nil)
			defer r.Close()
			if _, err := r.Apply(context.Background(), desired); err != nil {
				t.Fatal(err)
			}
			b.SetForeign(nil, []dataplane.KernelRoute{tt.foreign})
			insp, err := b.Inspect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			rep := dataplane.Check(desired, nil, insp)
			var got dataplane.CheckResult
			for _, c := range rep.Checks {
				if c.Name == "foreign-routes" {
					got = c
				}
				if c.Name != "foreign-routes" && c.Status != dataplane.StatusPass {
					t.Errorf("check %s failed: %v", c.Name, c.Details)
				}
			}
			if (got.Status == dataplane.StatusFail) != tt.fail || rep.OK == tt.fail {
				t.Errorf("foreign-routes = %s %q (report ok %v), want fail=%v", got.Status, got.Details, rep.OK, tt.fail)
			}
		})
	}
}

func TestCheckFindings(t *testing.T) {
	desired := dataplane.State{
		Routes:   []dataplane.Route{{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "wg0", From: "RemoteAddressClaim/a"}},
		MSSRules: []dataplane.MSSRule{{Dev: "wg1", From: "MSSClamp/overlay"}},
	}
	b := fake.New("fake findings")
	b.SetInterfaces("wg0")
	b.Put(dataplane.Route{Dst: netip.MustParsePrefix("10.1.1.1/32"), Dev: "wg0"})
	b.SetForeign([]string{"set s"}, nil)
	insp, err := b.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep := dataplane.Check(desired, []string{"RemoteAddressClaim/b: peerRef \"x\": no such OverlayPeer"}, insp)
	got := map[string]string{}
	for _, c := range rep.Checks {
		got[c.Name] = c.Status + " " + strings.Join(c.Details, "; ")
	}
	want := map[string]string{
		"references":     `fail RemoteAddressClaim/b: peerRef "x": no such OverlayPeer`,
		"interfaces":     "fail interface wg1 does not exist (used by MSSClamp/overlay)",
		"drift":          "fail not desired: route 10.1.1.1/32 dev wg0 table main metric 0 proto routerd; missing: route 10.88.60.9/32 dev wg0 table main metric 0 proto routerd; missing: mss-rule oifname wg1 tcp flags syn tcp option maxseg size set rt mtu",
		"nft-foreign":    "fail set s",
		"foreign-routes": "pass ",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("check %s = %q\nwant %q", name, got[name], w)
		}
	}
	if rep.OK {
		t.Error("report OK with failures")
	}
}
