//go:build !wasip1

// The host side runs natively only (credential commands, the Azure SDK).

package providerexec

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/providertest"
)

// hostDo is what the guest's provider_request does, without Wasm: the request goes as
// JSON through the host function, bound to plan, under the lab's grant for provider.
func hostDo(t *testing.T, l *providertest.Lab, plan abi.ActionPlan, dryRun bool) Do {
	fn := provider.Function(l.Requester)
	g := l.Grants[plan.Provider]
	grants := &capability.Grants{ProviderRequest: capability.ProviderRequestGrant{
		Hosts: g.Hosts, ProfileRefs: g.ProfileRefs, Methods: g.Methods, PathPrefixes: g.PathPrefixes}}
	ctx := provider.WithPlan(context.Background(), plan)
	return func(req abi.ProviderRequest) (*abi.ProviderResponse, error) {
		in, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := fn.Handle(ctx, &capability.Call{Plugin: "provider-" + plan.Provider, Hook: string(abi.HookExecute), Grants: grants, DryRun: dryRun}, in)
		if err != nil {
			return nil, err
		}
		resp := out.(abi.ProviderResponse)
		seen, _ := json.Marshal(resp)
		l.NoSecret(t, string(seen))
		return &resp, nil
	}
}

// TestExecutorsThroughHost runs each executor against the signature-checking fakes
// through the host function: the first execution changes the NIC, a second is skipped
// or refused by the provider without a second change, and the plan's undo restores it.
func TestExecutorsThroughHost(t *testing.T) {
	tests := []struct {
		name     string
		ex       Executor
		plan     abi.ActionPlan
		present  func(l *providertest.Lab) bool
		again    string // outcome of the second execution
		undoPlan func(p abi.ActionPlan) abi.ActionPlan
	}{
		{name: "aws", ex: AWS,
			plan:    lplan("aws", "aws-lab", abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP, "eni-a", "10.0.0.9"),
			present: func(l *providertest.Lab) bool { return slices.Contains(l.EC2.Addresses("eni-a"), "10.0.0.9") },
			again:   abi.ActionSucceeded},
		{name: "azure", ex: Azure,
			plan:    lplan("azure", "azure-lab", abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP, providertest.LabARMNICs+"nic-1", "10.1.0.9"),
			present: func(l *providertest.Lab) bool { return slices.Contains(l.Azure.Addresses("nic-1"), "10.1.0.9") },
			again:   abi.ActionSkipped},
		{name: "oci", ex: OCI,
			plan: lplan("oci", "oci-lab", abi.ActionCreatePrivateIP, abi.ActionDeletePrivateIP, "ocid1.vnic.oc1..v", "10.2.0.9"),
			present: func(l *providertest.Lab) bool {
				return slices.Contains(l.OCI.Addresses("ocid1.vnic.oc1..v"), "10.2.0.9")
			},
			again: abi.ActionSkipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := providertest.NewLab(t)
			run := func(p abi.ActionPlan) abi.ActionResult {
				res, err := Execute(&abi.Request{Spec: abi.RequestSpec{ActionPlan: &p}}, tt.ex, hostDo(t, l, p, false))
				if err != nil {
					t.Fatal(err)
				}
				return res.Status.ActionResults[0]
			}
			if r := run(tt.plan); r.Outcome != abi.ActionSucceeded || !tt.present(l) {
				t.Fatalf("first execution: %+v; address present: %v", r, tt.present(l))
			}
			if r := run(tt.plan); r.Outcome != tt.again || !tt.present(l) {
				t.Fatalf("second execution: %+v, want %s", r, tt.again)
			}
			undo, _ := tt.plan.UndoPlan()
			if r := run(undo); r.Outcome != abi.ActionSucceeded || tt.present(l) {
				t.Fatalf("undo: %+v; address present: %v", r, tt.present(l))
			}
		})
	}
}

// TestDryRunSendsNothing: in a dry run the host checks a change and refuses to send it.
func TestDryRunSendsNothing(t *testing.T) {
	l := providertest.NewLab(t)
	p := lplan("aws", "aws-lab", abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP, "eni-a", "10.0.0.9")
	before := l.EC2.Requests()
	r := AWS(&p, hostDo(t, l, p, true))
	if r.Outcome != abi.ActionFailed || r.Attributes[AttrErrorCode] != string(abi.ErrCodeUnsupported) {
		t.Fatalf("dry run: %+v", r)
	}
	if n := l.EC2.Requests(); n != before {
		t.Fatalf("a dry run sent %d requests", n-before)
	}
}

func lplan(provider, ref, action, undo, nic, address string) abi.ActionPlan {
	params := map[string]string{abi.ParamNIC: nic, abi.ParamAddress: address, "displayName": "routerd-test", "ipConfigurationName": "routerd-test"}
	return abi.ActionPlan{Name: provider + "-test", Provider: provider, ProviderRef: ref, Action: action, IdempotencyKey: "key-" + provider,
		Parameters: params, Undo: &abi.ActionUndo{Action: undo, Parameters: params}}
}
