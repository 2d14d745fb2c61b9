package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/schemas"
)

func init() { addDoctorArea(hybridDoctorArea) }

var hybridDoctorArea = doctorArea{
	name:  "hybrid",
	short: "Check the hybrid overlay: claims routed, overlay interfaces up, MSS clamp installed",
	long: `doctor hybrid compares the hybrid resources of the config dir (plus the live dynamic
parts of the store, as routerd merges them) with the kernel of the network namespace
(--netns, shared with doctor dataplane). Checks:

  claim-routes   every RemoteAddressClaim (static, in a DynamicConfigPart, or live in the
                 store) has its host route in the kernel (fail: the claim builds no route
                 — the cause is named — or its route is missing)
  overlay-up     the underlay interface of every OverlayPeer exists and is up
  mss-clamp      every clamp rule the MSSClamps want is in table inet routerd (fail), and
                 every OverlayPeer interface is covered by an MSSClamp (warn: TCP over the
                 overlay may stall on path-MTU problems)

Reading routerd's nftables table needs root (CAP_NET_ADMIN).`,
	run: runHybridDoctor,
}

func runHybridDoctor(ctx context.Context, cmd *cobra.Command) ([]doctorCheck, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, usagef("%v", err)
	}
	netnsName, _ := cmd.Flags().GetString("netns")
	cfg, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		return []doctorCheck{{Area: "hybrid", Name: "config", Status: checkFail, Summary: "the resource documents in " + s.ConfigDir + " do not load",
			Details: []string{err.Error(), "See routerctl doctor config."}}}, nil
	}
	want, claims, err := dataplaneDesired(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	insp, err := inspectKernel(ctx, netnsName, "hybrid")
	if err != nil {
		return nil, err
	}
	return hybridChecks(cfg, want.State, want.Problems, claims, insp), nil
}

// hybridChecks judges the hybrid resources against an inspection of the kernel.
func hybridChecks(cfg *schemas.Config, want dataplane.State, problems, claims []string, insp dataplane.Inspection) []doctorCheck {
	var out []doctorCheck
	norm, err := want.Normalize()
	if err != nil {
		problems = append(problems, err.Error())
		norm = want
	}
	owned, _ := insp.Owned.Normalize()

	// claim-routes
	found := false
	for _, name := range claims {
		from := "RemoteAddressClaim/" + name
		var routes []dataplane.Route
		for _, r := range norm.Routes {
			if r.From == from {
				routes = append(routes, r)
			}
		}
		c := doctorCheck{Area: "hybrid", Name: "claim-routes", Status: checkFail, Resource: from}
		if len(routes) == 0 {
			c.Summary = "claim " + name + " has no route: routerd cannot build one"
			for _, p := range problems {
				if strings.HasPrefix(p, from+":") {
					c.Details = append(c.Details, p)
				}
			}
			if len(c.Details) == 0 {
				c.Details = []string{"No cause was recorded; check the claim with routerctl config validate."}
			}
			out, found = append(out, c), true
			continue
		}
		for _, r := range routes {
			if !slices.ContainsFunc(owned.Routes, func(k dataplane.Route) bool { return k.Dst == r.Dst && k.Table == r.Table && k.Dev == r.Dev }) {
				c.Summary = "claim " + name + ": its route is not in the kernel"
				c.Details = append(c.Details, "missing: "+r.String()+". Is routerd running and reconciling (routerctl doctor dataplane shows the drift)?")
			}
		}
		if len(c.Details) > 0 {
			out, found = append(out, c), true
		}
	}
	if !found {
		out = append(out, doctorCheck{Area: "hybrid", Name: "claim-routes", Status: checkOK, Summary: fmt.Sprintf("every claim is routed (%s)", configPlural(len(claims), "claim"))})
	}

	// overlay-up
	found = false
	var overlayDevs []string
	for _, p := range cfg.OverlayPeers() {
		dev := p.Spec.Underlay.Interface
		res := "OverlayPeer/" + p.Metadata.Name
		switch {
		case dev == "":
			continue
		case !slices.Contains(insp.Interfaces, dev):
			out = append(out, doctorCheck{Area: "hybrid", Name: "overlay-up", Status: checkFail, Resource: res,
				Summary: "overlay interface " + dev + " of peer " + p.Metadata.Name + " does not exist",
				Details: []string{"Create the tunnel (WireGuard, GRE, ...) named in spec.underlay.interface, or fix the name."}})
			found = true
		case slices.Contains(insp.InterfacesDown, dev):
			out = append(out, doctorCheck{Area: "hybrid", Name: "overlay-up", Status: checkFail, Resource: res,
				Summary: "overlay interface " + dev + " of peer " + p.Metadata.Name + " is down",
				Details: []string{"Traffic for the peer's claims goes nowhere. Bring it up (ip link set " + dev + " up) and check the tunnel's underlay."}})
			found = true
		}
		overlayDevs = append(overlayDevs, dev)
	}
	if !found {
		out = append(out, doctorCheck{Area: "hybrid", Name: "overlay-up", Status: checkOK, Summary: fmt.Sprintf("every overlay interface is up (%s)", configPlural(len(overlayDevs), "interface"))})
	}

	// mss-clamp
	found = false
	var missing []string
	for _, r := range norm.MSSRules {
		if !slices.ContainsFunc(owned.MSSRules, func(k dataplane.MSSRule) bool { return k.Dev == r.Dev && k.Direction == r.Direction && k.MSS == r.MSS }) {
			missing = append(missing, "missing: "+r.String())
		}
	}
	if len(missing) > 0 {
		sum := configPlural(len(missing), "MSS clamp rule") + " missing from table inet " + dataplane.TableName
		if !insp.TablePresent {
			sum = "table inet " + dataplane.TableName + " does not exist: no MSS clamp rule is installed"
		}
		out = append(out, doctorCheck{Area: "hybrid", Name: "mss-clamp", Status: checkFail, Summary: sum,
			Details: append(missing, "Is routerd running and reconciling (routerctl doctor dataplane)?")})
		found = true
	}
	for _, dev := range overlayDevs {
		if !slices.ContainsFunc(norm.MSSRules, func(k dataplane.MSSRule) bool { return k.Dev == dev }) {
			out = append(out, doctorCheck{Area: "hybrid", Name: "mss-clamp", Status: checkWarn, Summary: "no MSSClamp covers overlay interface " + dev,
				Details: []string{"TCP through the tunnel may stall when the path MTU is smaller than the sender's. Add an MSSClamp with peerRefs naming its OverlayPeer."}})
			found = true
		}
	}
	if !found {
		out = append(out, doctorCheck{Area: "hybrid", Name: "mss-clamp", Status: checkOK, Summary: fmt.Sprintf("every overlay interface is clamped (%s installed)", configPlural(len(norm.MSSRules), "rule"))})
	}
	return out
}
