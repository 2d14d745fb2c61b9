package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host/capability/provider/providertest"
	"routerd.net/routerd/host/wasmbuild"
)

// TestActionPlanCommands drives a running routerd through routerctl actionplan: a static
// claim with AWS capture is planned, approved (the approver is the caller's Unix user),
// refused while the policy is dryRunOnly, executed against the fake EC2 once it is not,
// and routerctl audit verify passes — and fails, naming the record, after an audit row
// is edited behind routerd's back.
func TestActionPlanCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts routerd with a Wasm plugin")
	}
	ec2 := providertest.NewEC2(t, providertest.EC2Options{Region: "eu-central-1", AccessKeyID: "AKIATEST", SecretAccessKey: "test-secret-key-never-printed",
		NICs: map[string][]string{"eni-1": nil}})
	dir := t.TempDir()
	s := settings.Settings{StateDir: filepath.Join(dir, "state"), PluginDir: filepath.Join(dir, "plugins"),
		ConfigDir: filepath.Join(dir, "conf.d"), ControlSocket: filepath.Join(dir, "routerd.sock")}
	for _, d := range []string{s.PluginDir, s.ConfigDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	wasm, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/provider-aws"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile := func(path, content string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(filepath.Join(s.PluginDir, "provider-aws.wasm"), string(wasm), 0o644)
	cred := filepath.Join(dir, "aws.json")
	writeFile(cred, `{"Version":1,"AccessKeyId":"AKIATEST","SecretAccessKey":"test-secret-key-never-printed"}`, 0o600)
	u, _ := url.Parse(ec2.URL)
	config := func(dryRunOnly bool) string {
		return fmt.Sprintf(`apiVersion: hybrid.routerd.net/v1alpha1
kind: OverlayPeer
metadata: {name: onprem}
spec: {role: cloud, nodeID: r1, underlay: {type: wireguard, interface: wg0, address: 10.255.0.1/30}, remote: {nodeID: onprem, address: 10.255.0.2}}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: AddressMobilityDomain
metadata: {name: lab}
spec: {prefix: 10.88.0.0/16, mode: selective-address, peerRef: onprem}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: CloudProviderProfile
metadata: {name: aws-lab}
spec: {provider: aws, region: eu-central-1, endpoint: %[1]q, nics: [eni-1], auth: {mode: file, file: %[2]q}}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: RemoteAddressClaim
metadata: {name: onprem-10-88-60-9}
spec:
  domainRef: lab
  address: 10.88.60.9
  ownerSide: onprem
  capture: {type: provider-secondary-ip, providerRef: aws-lab, nicRef: eni-1}
  delivery: {peerRef: onprem}
---
apiVersion: plugin.routerd.net/v1alpha1
kind: Plugin
metadata: {name: provider-aws}
spec:
  module: provider-aws.wasm
  hooks: [plan, execute]
  grants: {providerRequest: {hosts: [%[3]q], profileRefs: [aws-lab], methods: [POST]}}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: ProviderActionPolicy
metadata: {name: default}
spec: {enabled: true, dryRunOnly: %[4]v, allowedProviders: [aws], allowedActions: [assign-secondary-ip, unassign-secondary-ip], allowedCIDRs: [10.88.60.0/24]}
`, ec2.URL, cred, u.Host, dryRunOnly)
	}
	writeFile(filepath.Join(s.ConfigDir, "routerd.yaml"), config(true), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, daemon.Options{Settings: s, CacheDir: filepath.Join(dir, "cache"), PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	flags := []string{"--state-dir", s.StateDir, "--control-socket", s.ControlSocket, "--config-dir", s.ConfigDir}
	ctl := func(want int, args ...string) string {
		t.Helper()
		r := runCtl(t, "", append(args, flags...)...)
		if r.code != want {
			t.Fatalf("routerctl %s: exit %d, want %d\n%s%s%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr, r.err)
		}
		out := r.stdout + r.stderr + r.err
		if strings.Contains(out, "test-secret-key-never-printed") {
			t.Fatalf("routerctl %s printed the secret", strings.Join(args, " "))
		}
		return out
	}

	var plans []store.ActionPlanRecord
	for deadline := time.Now().Add(20 * time.Second); len(plans) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no action plan after 20s")
		}
		_ = json.Unmarshal([]byte(ctl(exitOK, "actionplan", "list", "-o", "json")), &plans)
		if len(plans) == 0 {
			ctl(exitOK, "actionplan", "plan")
		}
	}
	p := plans[0]
	if p.State != store.PlanProposed || p.Action != "assign-secondary-ip" || p.Target != "eni-1" {
		t.Fatalf("planned %+v", p)
	}
	if out := ctl(exitOK, "actionplan", "list"); !strings.Contains(out, p.ID[:12]) || !strings.Contains(out, "proposed") {
		t.Fatalf("list table:\n%s", out)
	}
	ctl(exitFailed, "actionplan", "execute", p.ID[:8]) // not approved yet
	out := ctl(exitOK, "actionplan", "approve", p.ID[:8], "--reason", "change 4711", "-o", "json")
	var approved store.ActionPlanRecord
	if err := json.Unmarshal([]byte(out), &approved); err != nil || approved.State != store.PlanApproved || approved.ApprovedBy == "" || approved.ApprovedBy == "control-api" {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if out := ctl(exitFailed, "actionplan", "execute", p.ID[:8]); !strings.Contains(out, "dry-run-only") {
		t.Fatalf("execute under a dryRunOnly policy:\n%s", out)
	}
	if ec2.Requests() != 0 {
		t.Fatalf("%d requests reached EC2 under dryRunOnly", ec2.Requests())
	}

	writeFile(filepath.Join(s.ConfigDir, "routerd.yaml"), config(false), 0o644)
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	ctl(exitOK, "actionplan", "approve", p.ID[:8])
	out = ctl(exitOK, "actionplan", "execute", p.ID[:8], "-o", "json")
	var executed store.ActionPlanRecord
	if err := json.Unmarshal([]byte(out), &executed); err != nil || executed.State != store.PlanExecuted || !slices.Contains(ec2.Addresses("eni-1"), "10.88.60.9") {
		t.Fatalf("execute: %v, EC2 %v\n%s", err, ec2.Addresses("eni-1"), out)
	}
	if out := ctl(exitOK, "actionplan", "show", p.ID); !strings.Contains(out, "executed") || !strings.Contains(out, "requestId") {
		t.Fatalf("show:\n%s", out)
	}
	ctl(exitFailed, "actionplan", "execute", p.ID[:8]) // executed is final
	ctl(exitOK, "audit", "verify")

	// Edit one audit record behind routerd's back: verify names it.
	db, err := sql.Open("sqlite3", s.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`SELECT seq FROM audit_log WHERE action = 'actionplan.approved' ORDER BY seq LIMIT 1`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE seq = ?`, seq); err != nil {
		t.Fatal(err)
	}
	if out := ctl(exitFailed, "audit", "verify"); !strings.Contains(out, fmt.Sprint(seq)) || !strings.Contains(out, "edited") {
		t.Fatalf("verify after an edit:\n%s", out)
	}
}
