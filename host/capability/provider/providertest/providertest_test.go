package providertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"routerd.net/routerd/host/capability/provider/credential"
	"routerd.net/routerd/host/capability/provider/providertest"
	"routerd.net/routerd/host/capability/provider/sign"
)

// do signs and sends one request.
func do(t *testing.T, s sign.Signer, method, u, ct string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if err := s.Sign(context.Background(), req, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEC2Semantics(t *testing.T) {
	f := providertest.NewEC2(t, providertest.EC2Options{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret",
		NICs: map[string][]string{"eni-a": {"10.0.0.5"}, "eni-b": nil}})
	s, err := sign.New("aws", credential.Static(credential.Credential{Provider: "aws", AWS: &credential.AWS{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}}), sign.Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	form := func(kv ...string) []byte {
		v := url.Values{"Version": {providertest.EC2Version}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return []byte(v.Encode())
	}
	tests := []struct {
		name     string
		body     []byte
		wantCode int
		wantBody string
		wantA    []string
		wantB    []string
	}{
		{name: "unknown action", body: form("Action", "TerminateInstances"), wantCode: 400, wantBody: "<Code>InvalidAction</Code>", wantA: []string{"10.0.0.5"}},
		{name: "wrong version", body: []byte("Action=AssignPrivateIpAddresses&Version=2010-01-01"), wantCode: 400, wantBody: "is not supported", wantA: []string{"10.0.0.5"}},
		{name: "in use elsewhere", body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-b", "PrivateIpAddress.1", "10.0.0.5"),
			wantCode: 400, wantBody: "PrivateIpAddressInUse", wantA: []string{"10.0.0.5"}},
		{name: "reassignment moves it", body: form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-b", "PrivateIpAddress.1", "10.0.0.5", "AllowReassignment", "true"),
			wantCode: 200, wantBody: "<privateIpAddress>10.0.0.5</privateIpAddress>", wantA: []string{}, wantB: []string{"10.0.0.5"}},
		{name: "unassign not assigned", body: form("Action", "UnassignPrivateIpAddresses", "NetworkInterfaceId", "eni-a", "PrivateIpAddress.1", "10.0.0.5"),
			wantCode: 400, wantBody: "not assigned to interface eni-a", wantA: []string{}, wantB: []string{"10.0.0.5"}},
		{name: "unassign", body: form("Action", "UnassignPrivateIpAddresses", "NetworkInterfaceId", "eni-b", "PrivateIpAddress.1", "10.0.0.5"),
			wantCode: 200, wantBody: "<return>true</return>", wantA: []string{}, wantB: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, s, "POST", f.URL+"/", "application/x-www-form-urlencoded", tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) || !strings.Contains(body, "ec2-") {
				t.Errorf("got %d %s, want %d containing %q and a request id", code, body, tt.wantCode, tt.wantBody)
			}
			if a, b := f.Addresses("eni-a"), f.Addresses("eni-b"); !slices.Equal(a, tt.wantA) && len(a)+len(tt.wantA) > 0 || !slices.Equal(b, tt.wantB) && len(b)+len(tt.wantB) > 0 {
				t.Errorf("eni-a %v eni-b %v, want %v %v", a, b, tt.wantA, tt.wantB)
			}
		})
	}
	if f.Requests() != int64(len(tests)) {
		t.Errorf("Requests() = %d, want %d", f.Requests(), len(tests))
	}
}

func TestARMSemantics(t *testing.T) {
	f := providertest.NewAzure(t, providertest.AzureOptions{TenantID: "t", ClientID: "c", ClientSecret: "s", SubscriptionID: "sub", ResourceGroup: "rg",
		NICs: map[string][]string{"nic-1": {"10.1.0.4"}, "nic-2": {"10.1.0.5"}}})
	s, err := sign.New("azure", credential.Static(credential.Credential{Provider: "azure", Azure: &credential.Azure{TenantID: "t", ClientID: "c", ClientSecret: "s"}}),
		sign.Options{AzureAuthorityHost: f.AuthorityHost, AzureTransport: f.LoginClient})
	if err != nil {
		t.Fatal(err)
	}
	nic := f.URL + "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1"
	v := "?api-version=" + providertest.ARMAPIVersion
	put := func(ips ...string) []byte {
		var n providertest.NetworkInterface
		for i, ip := range ips {
			c := providertest.IPConfiguration{Name: "c" + ip}
			c.Properties.PrivateIPAddress, c.Properties.Primary = ip, i == 0
			c.Properties.Subnet = &providertest.SubResource{ID: "/subnets/default"}
			n.Properties.IPConfigurations = append(n.Properties.IPConfigurations, c)
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name     string
		method   string
		url      string
		body     []byte
		wantCode int
		wantBody string
	}{
		{name: "api-version required", method: "GET", url: nic, wantCode: 400, wantBody: "MissingApiVersionParameter"},
		{name: "other api-version", method: "GET", url: nic + "?api-version=2015-01-01", wantCode: 400, wantBody: "NoRegisteredProviderFound"},
		{name: "address of another nic", method: "PUT", url: nic + v, body: put("10.1.0.4", "10.1.0.5"), wantCode: 400, wantBody: "PrivateIPAddressInUse"},
		{name: "no primary", method: "PUT", url: nic + v, body: []byte(`{"properties":{"ipConfigurations":[{"name":"a","properties":{"privateIPAddress":"10.1.0.9","subnet":{"id":"/subnets/default"}}}]}}`), wantCode: 400, wantBody: "exactly one primary"},
		{name: "no subnet", method: "PUT", url: nic + v, body: []byte(`{"properties":{"ipConfigurations":[{"name":"a","properties":{"privateIPAddress":"10.1.0.9","primary":true}}]}}`), wantCode: 400, wantBody: "SubnetIsRequired"},
		{name: "not json", method: "PUT", url: nic + v, body: []byte(`{`), wantCode: 400, wantBody: "InvalidRequestContent"},
		{name: "put", method: "PUT", url: nic + v, body: put("10.1.0.4", "10.1.0.60"), wantCode: 200, wantBody: `"privateIPAddress":"10.1.0.60"`},
		{name: "delete not allowed", method: "DELETE", url: nic + v, wantCode: 405, wantBody: "MethodNotAllowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, s, tt.method, tt.url, "application/json", tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	if got := f.Addresses("nic-1"); !slices.Equal(got, []string{"10.1.0.4", "10.1.0.60"}) {
		t.Errorf("nic-1 %v", got)
	}
}

func TestOCISemantics(t *testing.T) {
	key := providertest.NewOCIKey(t)
	f := providertest.NewOCI(t, providertest.OCIOptions{Tenancy: "ten", User: "usr", Key: key, VNICs: map[string][]string{"vnic-1": {"10.2.0.4"}}})
	s, err := sign.New("oci", credential.Static(credential.Credential{Provider: "oci", OCI: &credential.OCI{Tenancy: "ten", User: "usr", Fingerprint: key.Fingerprint, PrivateKey: key.PEM}}), sign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := f.URL + providertest.OCIAPIVersion + "/privateIps"
	tests := []struct {
		name     string
		method   string
		url      string
		body     string
		wantCode int
		wantBody string
	}{
		{name: "list needs a filter", method: "GET", url: base, wantCode: 400, wantBody: "MissingParameter"},
		{name: "unknown vnic", method: "POST", url: base, body: `{"vnicId":"vnic-9","ipAddress":"10.2.0.9"}`, wantCode: 404, wantBody: "NotAuthorizedOrNotFound"},
		{name: "missing ip", method: "POST", url: base, body: `{"vnicId":"vnic-1"}`, wantCode: 400, wantBody: "InvalidParameter"},
		{name: "address taken", method: "POST", url: base, body: `{"vnicId":"vnic-1","ipAddress":"10.2.0.4"}`, wantCode: 409, wantBody: "Conflict"},
		{name: "delete unknown", method: "DELETE", url: base + "/ocid1.privateip.oc1..nope", wantCode: 404, wantBody: "NotAuthorizedOrNotFound"},
		{name: "get one", method: "GET", url: base + "/ocid1.privateip.oc1..fake0001", wantCode: 200, wantBody: `"ipAddress":"10.2.0.4"`},
		{name: "other api", method: "GET", url: f.URL + "/20160918/vnics/vnic-1", wantCode: 404, wantBody: "NotAuthorizedOrNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, s, tt.method, tt.url, "application/json", []byte(tt.body))
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Get(base + "?vnicId=vnic-1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("opc-request-id") == "" {
			t.Errorf("unsigned request: %d", resp.StatusCode)
		}
	})
}
