package host

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/providertest"
	"routerd.net/routerd/host/wasmbuild"
)

// TestProviderSecretsNeverEnterGuestMemory runs the provider-aws plugin's execute hook
// through provider_request against the fake EC2 (which checks the SigV4 signature made
// with the secret key), then reads the whole linear memory of every instance — the
// plugin's and the Extism kernel's — and requires that no credential byte sequence is in
// it: the host signs, the plugin only sees the answer.
func TestProviderSecretsNeverEnterGuestMemory(t *testing.T) {
	lab := providertest.NewLab(t)
	h := newHost(t, Options{CacheDir: t.TempDir(), Functions: []capability.Function{provider.Function(lab.Requester)}})
	g := lab.Grants["aws"]
	spec := Spec{Name: "provider-aws", Limits: Limits{WarmInstances: 1}, Grants: capability.Grants{ProviderRequest: capability.ProviderRequestGrant{
		Hosts: g.Hosts, ProfileRefs: []string{"aws-lab"}, Methods: []string{"POST"}, PathPrefixes: []string{"/"}}}}
	if err := h.LoadFile(context.Background(), wasmbuild.ForTest(t, "plugins/provider-aws"), spec); err != nil {
		t.Fatal(err)
	}
	params := map[string]string{abi.ParamNIC: "eni-a", abi.ParamAddress: "10.0.0.9"}
	plan := abi.ActionPlan{Name: "assign-10-0-0-9", Provider: "aws", ProviderRef: "aws-lab", Action: abi.ActionAssignSecondaryIP,
		IdempotencyKey: "k", Parameters: params, Undo: &abi.ActionUndo{Action: abi.ActionUnassignSecondaryIP, Parameters: params}}
	req, _ := json.Marshal(abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerExecute}, ActionPlan: &plan}})
	out, err := h.Call(provider.WithPlan(context.Background(), plan), "provider-aws", abi.HookExecute, req)
	if err != nil {
		t.Fatal(err)
	}
	var res abi.Result
	if err := json.Unmarshal(out, &res); err != nil || len(res.Status.ActionResults) != 1 || res.Status.ActionResults[0].Outcome != abi.ActionSucceeded {
		t.Fatalf("execute: %v\n%s", err, out)
	}
	if !slices.Contains(lab.EC2.Addresses("eni-a"), "10.0.0.9") {
		t.Fatal("the signed request did not reach the fake EC2")
	}
	lab.NoSecret(t, string(out))

	v := h.entry("provider-aws").current.Load()
	v.mu.Lock()
	idle := slices.Clone(v.idle)
	v.mu.Unlock()
	if len(idle) == 0 {
		t.Fatal("no idle instance to inspect")
	}
	scanned := 0
	for _, in := range idle {
		for name, mod := range map[string]api.Module{"plugin": in.main, "kernel": in.kernel} {
			mem, _ := mod.Memory().Read(0, mod.Memory().Size())
			if len(mem) == 0 {
				t.Fatalf("%s memory is empty", name)
			}
			scanned += len(mem)
			for _, s := range lab.Secrets {
				if bytes.Contains(mem, []byte(s)) {
					t.Errorf("secret %.6s... found in the %s module's linear memory", s, name)
				}
			}
		}
		// The memory does hold what the plugin legitimately saw: the plan's address.
		if mem, _ := in.main.Memory().Read(0, in.main.Memory().Size()); !bytes.Contains(mem, []byte("10.0.0.9")) {
			t.Error("the scan would not find anything: the plan's address is not in the plugin's memory either")
		}
	}
	t.Logf("scanned %d bytes of guest memory in %d instances", scanned, len(idle))
}
