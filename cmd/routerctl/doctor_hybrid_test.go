package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/schemas"
)

// TestHybridChecks judges hybrid resources against inspections of a kernel, without one:
// a claim that builds no route (its cause named), a missing route, a missing or down
// overlay interface, a missing clamp rule and an overlay no MSSClamp covers.
func TestHybridChecks(t *testing.T) {
	const peer = `apiVersion: hybrid.routerd.net/v1alpha1
kind: OverlayPeer
metadata: {name: peer-b}
spec:
  role: onprem
  underlay: {type: route, interface: ovl0, address: 169.254.30.1/30}
  remote: {address: 169.254.30.2}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: AddressMobilityDomain
metadata: {name: lab}
spec: {prefix: 10.88.0.0/16, peerRef: peer-b}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: RemoteAddressClaim
metadata: {name: c9}
spec: {domainRef: lab, address: 10.88.60.9}
`
	const clamp = "---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: MSSClamp\nmetadata: {name: overlay}\nspec: {peerRefs: [peer-b]}\n"
	load := func(t *testing.T, doc string) (*schemas.Config, desired.Result, []string) {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "h.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := schemas.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		return cfg, desired.FromConfig(cfg, desired.Options{Now: now}), claimNames(cfg, nil, now)
	}
	applied := func(res desired.Result, ifaces, down []string) dataplane.Inspection {
		return dataplane.Inspection{Owned: res.State, TablePresent: true, Interfaces: ifaces, InterfacesDown: down}
	}
	tests := []struct {
		name   string
		doc    string
		insp   func(desired.Result) dataplane.Inspection
		want   string // check/resource=status, space separated
		detail string
	}{
		{name: "healthy", doc: peer + clamp, insp: func(r desired.Result) dataplane.Inspection { return applied(r, []string{"lo", "ovl0"}, nil) },
			want: "claim-routes=ok overlay-up=ok mss-clamp=ok"},
		{name: "nothing applied", doc: peer + clamp, insp: func(desired.Result) dataplane.Inspection {
			return dataplane.Inspection{Interfaces: []string{"ovl0"}}
		}, want: "claim-routes/RemoteAddressClaim/c9=fail overlay-up=ok mss-clamp=fail", detail: "table inet routerd does not exist"},
		{name: "overlay down", doc: peer + clamp, insp: func(r desired.Result) dataplane.Inspection {
			return applied(r, []string{"ovl0"}, []string{"ovl0"})
		}, want: "claim-routes=ok overlay-up/OverlayPeer/peer-b=fail mss-clamp=ok", detail: "ip link set ovl0 up"},
		{name: "overlay missing", doc: peer + clamp, insp: func(r desired.Result) dataplane.Inspection { return applied(r, []string{"lo"}, nil) },
			want: "claim-routes=ok overlay-up/OverlayPeer/peer-b=fail mss-clamp=ok", detail: "does not exist"},
		{name: "no MSSClamp for the overlay", doc: peer, insp: func(r desired.Result) dataplane.Inspection { return applied(r, []string{"ovl0"}, nil) },
			want: "claim-routes=ok overlay-up=ok mss-clamp=warn", detail: "Add an MSSClamp"},
		{name: "claim without a route", doc: strings.Replace(peer, "interface: ovl0, ", "", 1), insp: func(r desired.Result) dataplane.Inspection { return applied(r, nil, nil) },
			want: "claim-routes/RemoteAddressClaim/c9=fail overlay-up=ok mss-clamp=ok", detail: "RemoteAddressClaim/c9: no delivery.tunnelInterface and OverlayPeer peer-b has no underlay.interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, res, claims := load(t, tt.doc)
			checks := hybridChecks(cfg, res.State, res.Problems, claims, tt.insp(res))
			var got, details []string
			for _, c := range checks {
				k := c.Name
				if c.Resource != "" {
					k += "/" + c.Resource
				}
				got = append(got, k+"="+c.Status)
				details = append(details, c.Summary)
				details = append(details, c.Details...)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("checks = %s, want %s", strings.Join(got, " "), tt.want)
			}
			if !strings.Contains(strings.Join(details, "\n"), tt.detail) {
				t.Errorf("no summary or detail contains %q:\n%s", tt.detail, strings.Join(details, "\n"))
			}
		})
	}
}

// TestDoctorHybridBadStore: a store file that is not a database is a failed finding with
// the cause, for the hybrid and the dataplane area alike.
func TestDoctorHybridBadStore(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hybrid.yaml"), []byte(doctorConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "routerd.db"), []byte("this is not an SQLite database, just text"), 0o600); err != nil {
		t.Fatal(err)
	}
	settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
	if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, area := range []string{"hybrid", "dataplane"} {
		t.Run(area, func(t *testing.T) {
			code, out := runCLI(t, "doctor", area, "--config-dir", dir, "--state-dir", state, "--settings", settingsFile, "-o", "json")
			var rep doctorReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if code != exitDoctorFail || len(rep.Checks) != 1 || rep.Checks[0].Name != "run" || rep.Checks[0].Status != checkFail ||
				!strings.Contains(strings.Join(rep.Checks[0].Details, "\n"), "the live dynamic parts cannot be read") {
				t.Fatalf("exit %d\n%s", code, out)
			}
		})
	}
}
