package provider_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/providertest"
)

// TestFunctionRefusesWhatThePlanDoesNotCover: provider_request sends only calls that serve
// the approved plan bound to the execution; everything else is refused before anything
// leaves the machine.
func TestFunctionRefusesWhatThePlanDoesNotCover(t *testing.T) {
	plan := func(provider, ref, action, nic, address string) abi.ActionPlan {
		return abi.ActionPlan{Name: "p", Provider: provider, ProviderRef: ref, Action: action,
			Parameters: map[string]string{abi.ParamNIC: nic, abi.ParamAddress: address}}
	}
	awsPlan := plan("aws", "aws-lab", abi.ActionAssignSecondaryIP, "eni-a", "10.0.0.9")
	ociPlan := plan("oci", "oci-lab", abi.ActionDeletePrivateIP, "ocid1.vnic.oc1..v", "10.2.0.9")
	azPlan := plan("azure", "azure-lab", abi.ActionAssignSecondaryIP, "nic-1", "10.1.0.9")
	form := func(kv ...string) []byte {
		v := url.Values{"Version": {providertest.EC2Version}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return []byte(v.Encode())
	}
	armPath := providertest.LabARMNICs + "nic-1"
	tests := []struct {
		name   string
		plan   *abi.ActionPlan // nil: no execution bound
		req    abi.ProviderRequest
		code   abi.ErrorCode
		reason string
	}{
		{name: "outside an execution", req: abi.ProviderRequest{ProfileRef: "aws-lab", Method: "POST", Path: "/",
			Body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-a", "PrivateIpAddress.1", "10.0.0.9")},
			code: abi.ErrCodeCapabilityDenied, reason: "approved action plan"},
		{name: "another NIC", plan: &awsPlan, req: abi.ProviderRequest{ProfileRef: "aws-lab", Method: "POST", Path: "/",
			Body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-b", "PrivateIpAddress.1", "10.0.0.9")},
			code: abi.ErrCodeCapabilityDenied, reason: "allows NIC eni-a"},
		{name: "another address", plan: &awsPlan, req: abi.ProviderRequest{ProfileRef: "aws-lab", Method: "POST", Path: "/",
			Body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-a", "PrivateIpAddress.1", "10.0.0.10")},
			code: abi.ErrCodeCapabilityDenied, reason: "allows address 10.0.0.9"},
		{name: "another action", plan: &awsPlan, req: abi.ProviderRequest{ProfileRef: "aws-lab", Method: "POST", Path: "/",
			Body: form("Action", "UnassignPrivateIpAddresses", "NetworkInterfaceId", "eni-a", "PrivateIpAddress.1", "10.0.0.9")},
			code: abi.ErrCodeCapabilityDenied, reason: "allows EC2 Action AssignPrivateIpAddresses"},
		{name: "an extra EC2 parameter", plan: &awsPlan, req: abi.ProviderRequest{ProfileRef: "aws-lab", Method: "POST", Path: "/",
			Body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-a", "PrivateIpAddress.1", "10.0.0.9", "SecondaryPrivateIpAddressCount", "5")},
			code: abi.ErrCodeCapabilityDenied, reason: "SecondaryPrivateIpAddressCount"},
		{name: "another profile", plan: &awsPlan, req: abi.ProviderRequest{ProfileRef: "aws-public", Method: "POST", Path: "/",
			Body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-a", "PrivateIpAddress.1", "10.0.0.9")},
			code: abi.ErrCodeCapabilityDenied, reason: "uses profile aws-lab"},
		{name: "an absolute URL", plan: &awsPlan, req: abi.ProviderRequest{ProfileRef: "aws-lab", Method: "GET", URL: "https://169.254.169.254/latest"},
			code: abi.ErrCodeInvalidArgument, reason: "not url"},
		{name: "OCI delete of a privateIp not listed in this execution", plan: &ociPlan,
			req:  abi.ProviderRequest{ProfileRef: "oci-lab", Method: "DELETE", Path: "/20160918/privateIps/ocid1.privateip.oc1..other"},
			code: abi.ErrCodeCapabilityDenied, reason: "was not listed"},
		{name: "ARM PUT before reading the NIC", plan: &azPlan,
			req:  abi.ProviderRequest{ProfileRef: "azure-lab", Method: "PUT", Path: armPath, Query: "api-version=" + providertest.ARMAPIVersion, Body: []byte(`{}`)},
			code: abi.ErrCodeCapabilityDenied, reason: "before reading it"},
		{name: "ARM on another NIC", plan: &azPlan,
			req:  abi.ProviderRequest{ProfileRef: "azure-lab", Method: "GET", Path: providertest.LabARMNICs + "nic-2", Query: "api-version=" + providertest.ARMAPIVersion},
			code: abi.ErrCodeCapabilityDenied, reason: "allows network interface nic-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := providertest.NewLab(t)
			ctx := context.Background()
			if tt.plan != nil {
				ctx = provider.WithPlan(ctx, *tt.plan)
			}
			g := l.Grants[map[string]string{"aws-lab": "aws", "aws-public": "aws", "oci-lab": "oci", "azure-lab": "azure"}[tt.req.ProfileRef]]
			grants := &capability.Grants{ProviderRequest: capability.ProviderRequestGrant{Hosts: g.Hosts, ProfileRefs: g.ProfileRefs, Methods: g.Methods, PathPrefixes: g.PathPrefixes}}
			in, _ := json.Marshal(tt.req)
			sent := l.EC2.Requests() + l.OCI.Requests() + l.Azure.Requests()
			_, err := provider.Function(l.Requester).Handle(ctx, &capability.Call{Plugin: "p", Grants: grants}, in)
			var e *abi.Error
			if !asABI(err, &e) || e.Code != tt.code || !strings.Contains(e.Message, tt.reason) {
				t.Fatalf("err = %v, want %s containing %q", err, tt.code, tt.reason)
			}
			if now := l.EC2.Requests() + l.OCI.Requests() + l.Azure.Requests(); now != sent {
				t.Errorf("%d requests left the machine", now-sent)
			}
		})
	}
}

// TestFunctionARMPutMustChangeOnlyThePlannedAddress: after reading the NIC, a PUT that
// adds an address the plan does not name is refused.
func TestFunctionARMPutMustChangeOnlyThePlannedAddress(t *testing.T) {
	l := providertest.NewLab(t)
	p := abi.ActionPlan{Name: "p", Provider: "azure", ProviderRef: "azure-lab", Action: abi.ActionAssignSecondaryIP,
		Parameters: map[string]string{abi.ParamNIC: "nic-1", abi.ParamAddress: "10.1.0.9"}}
	ctx := provider.WithPlan(context.Background(), p)
	g := l.Grants["azure"]
	grants := &capability.Grants{ProviderRequest: capability.ProviderRequestGrant{Hosts: g.Hosts, ProfileRefs: g.ProfileRefs, Methods: g.Methods, PathPrefixes: g.PathPrefixes}}
	fn := provider.Function(l.Requester)
	call := func(method string, body []byte) (any, error) {
		in, _ := json.Marshal(abi.ProviderRequest{ProfileRef: "azure-lab", Method: method, Path: providertest.LabARMNICs + "nic-1",
			Query: "api-version=" + providertest.ARMAPIVersion, Body: body})
		return fn.Handle(ctx, &capability.Call{Plugin: "p", Grants: grants}, in)
	}
	out, err := call("GET", nil)
	if err != nil {
		t.Fatal(err)
	}
	var nic providertest.NetworkInterface
	if err := json.Unmarshal(out.(abi.ProviderResponse).Body, &nic); err != nil {
		t.Fatal(err)
	}
	c := providertest.IPConfiguration{Name: "extra"}
	c.Properties.PrivateIPAddress, c.Properties.Subnet = "10.1.0.77", &providertest.SubResource{ID: "/subnets/default"}
	nic.Properties.IPConfigurations = append(nic.Properties.IPConfigurations, c)
	body, _ := json.Marshal(nic)
	if _, err := call("PUT", body); err == nil || !strings.Contains(err.Error(), "the approved change leaves [10.1.0.4 10.1.0.9]") {
		t.Fatalf("err = %v", err)
	}
}

func asABI(err error, target **abi.Error) bool {
	e, ok := err.(*abi.Error)
	*target = e
	return ok
}
