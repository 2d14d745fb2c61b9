package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/dataplane/netlinkdp"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

const doctorConfig = `apiVersion: hybrid.routerd.net/v1alpha1
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
metadata: {name: onprem-10-88-60-9}
spec: {domainRef: lab, address: 10.88.60.9}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: MSSClamp
metadata: {name: overlay}
spec: {peerRefs: [peer-b]}
`

// runCLI runs routerctl with args and returns the exit code and stdout.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r := runCtl(t, "", args...)
	return r.code, r.stdout + r.stderr
}

func TestDoctorDataplane(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("doctor dataplane test: needs root to create a network namespace")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("doctor dataplane test: needs %s to set up the namespace", tool)
		}
	}
	ns := fmt.Sprintf("rdtdoc%d", time.Now().UnixNano()%1e8)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("link", "add", "ovl0", "type", "veth", "peer", "name", "ovl0-p")
	ip("link", "set", "ovl0", "up")
	ip("link", "set", "ovl0-p", "up")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hybrid.yaml"), []byte(doctorConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	// An empty settings file, so that no settings of the machine leak in.
	settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
	if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A live dynamic part in the node's store claims one more address.
	stateDir := t.TempDir()
	st, err := store.Open(filepath.Join(stateDir, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dynClaim := &schemas.RemoteAddressClaim{
		TypeMeta: schemas.TypeMeta{APIVersion: "hybrid.routerd.net/v1alpha1", Kind: "RemoteAddressClaim"},
		Metadata: schemas.ObjectMeta{Name: "onprem-10-88-60-20"},
		Spec:     schemas.RemoteAddressClaimSpec{DomainRef: "lab", Address: "10.88.60.20"},
	}
	part := dynamic.Part{
		Source: "EventSubscription/claims", Kind: "RemoteAddressClaim", Name: dynClaim.Metadata.Name,
		ExpiresAt: time.Now().Add(time.Hour), CreatedAt: time.Now(), UpdatedAt: time.Now(),
		Document: &schemas.DynamicConfigPart{
			TypeMeta: schemas.TypeMeta{APIVersion: "config.routerd.net/v1alpha1", Kind: "DynamicConfigPart"},
			Metadata: schemas.ObjectMeta{Name: "claims-onprem-10-88-60-20"},
			Spec:     schemas.DynamicConfigPartSpec{Source: "EventSubscription/claims", Resources: []schemas.Resource{{Object: dynClaim}}},
		},
	}
	if err := dynamic.NewSQLRepo(st).Put(context.Background(), part); err != nil {
		t.Fatal(err)
	}
	parts, err := dynamic.NewSQLRepo(st).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	args := []string{"doctor", "dataplane", "--netns", ns, "--config-dir", dir, "--state-dir", stateDir, "--settings", settingsFile, "-o", "json"}
	report := func() (int, doctorReport) {
		t.Helper()
		code, out := runCLI(t, args...)
		var rep doctorReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("doctor output is not JSON: %v\n%s", err, out)
		}
		return code, rep
	}
	status := func(rep doctorReport) string {
		var parts []string
		for _, c := range rep.Checks {
			parts = append(parts, c.Name+"="+c.Status)
		}
		return strings.Join(parts, " ")
	}

	// Nothing applied yet: drift.
	code, rep := report()
	if code != exitDoctorFail || rep.OK || status(rep) != "references=ok interfaces=ok drift=fail nft-foreign=ok foreign-routes=ok" {
		t.Fatalf("before apply: exit %d, %s\n%+v", code, status(rep), rep)
	}
	if drift := strings.Join(rep.Checks[2].Details, "\n"); !strings.Contains(drift, "missing: route 10.88.60.20/32") || !strings.Contains(drift, "missing: route 10.88.60.9/32") {
		t.Fatalf("drift does not list the static and the dynamic claim:\n%s", drift)
	}

	hybrid := func() (int, string) {
		t.Helper()
		code, out := runCLI(t, "doctor", "hybrid", "--netns", ns, "--config-dir", dir, "--state-dir", stateDir, "--settings", settingsFile, "-o", "json")
		var rep doctorReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("doctor hybrid output is not JSON: %v\n%s", err, out)
		}
		var parts []string
		for _, c := range rep.Checks {
			k := c.Name
			if c.Resource != "" {
				k += "/" + c.Resource
			}
			parts = append(parts, k+"="+c.Status)
		}
		return code, strings.Join(parts, " ")
	}
	// Nothing applied: both claims lack their route, the clamp is not installed.
	if code, got := hybrid(); code != exitDoctorFail || got != "claim-routes/RemoteAddressClaim/onprem-10-88-60-20=fail claim-routes/RemoteAddressClaim/onprem-10-88-60-9=fail overlay-up=ok mss-clamp=fail" {
		t.Fatalf("hybrid before apply: exit %d, %s", code, got)
	}

	// Apply the desired state the way routerd does: now everything passes.
	cfg, err := schemas.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := netlinkdp.Open(netlinkdp.Options{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	r := dataplane.NewReconciler(b, nil)
	defer r.Close()
	m := dynamic.MergeConfig(cfg, parts, time.Now())
	res := desired.FromConfig(m.Config, desired.Options{Now: time.Now(), Claims: m.Claims})
	if _, err := r.Apply(context.Background(), res.State); err != nil {
		t.Fatal(err)
	}
	if code, rep := report(); code != exitOK || !rep.OK {
		t.Fatalf("after apply: exit %d, %s\n%+v", code, status(rep), rep)
	}
	if code, got := hybrid(); code != exitOK || got != "claim-routes=ok overlay-up=ok mss-clamp=ok" {
		t.Fatalf("hybrid after apply: exit %d, %s", code, got)
	}

	// Someone writes into routerd's table and shadows the claim.
	if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "routerd", "forward", "counter").CombinedOutput(); err != nil {
		t.Fatalf("nft add rule: %v\n%s", err, out)
	}
	ip("route", "add", "local", "10.88.60.9/32", "dev", "ovl0", "table", "local")
	code, rep = report()
	if code != exitDoctorFail || status(rep) != "references=ok interfaces=ok drift=ok nft-foreign=fail foreign-routes=fail" {
		t.Fatalf("after foreign changes: exit %d, %s\n%+v", code, status(rep), rep)
	}

	// The table form names the failing checks too.
	code, out := runCLI(t, "doctor", "dataplane", "--netns", ns, "--config-dir", dir, "--state-dir", stateDir, "--settings", settingsFile)
	if code != exitDoctorFail || !strings.Contains(out, "nft-foreign") || !strings.Contains(out, "FAIL") {
		t.Fatalf("table output (exit %d):\n%s", code, out)
	}

	// The overlay goes down.
	ip("link", "set", "ovl0", "down")
	if code, got := hybrid(); code != exitDoctorFail || !strings.Contains(got, "overlay-up/OverlayPeer/peer-b=fail") {
		t.Fatalf("hybrid with ovl0 down: exit %d, %s", code, got)
	}

	// `routerctl doctor` runs every area, the dataplane among them.
	code, out = runCLI(t, "doctor", "--netns", ns, "--config-dir", dir, "--state-dir", stateDir, "--settings", settingsFile, "-o", "json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitDoctorFail || !strings.Contains(status(rep), "nft-foreign=fail") {
		t.Fatalf("doctor (all areas): exit %d, %v\n%s", code, err, out)
	}
}
