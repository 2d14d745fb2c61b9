package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/credential"
	"routerd.net/routerd/host/capability/provider/providertest"
	"routerd.net/routerd/host/capability/provider/sign"
)

const (
	awsSecret   = providertest.LabAWSSecret
	azureSecret = providertest.LabAzureSecret
	armNIC      = providertest.LabARMNICs
)

func ec2Form(action, nic string, ips ...string) []byte {
	v := url.Values{"Action": {action}, "Version": {providertest.EC2Version}, "NetworkInterfaceId": {nic}}
	for i, ip := range ips {
		v.Set(fmt.Sprintf("PrivateIpAddress.%d", i+1), ip)
	}
	return []byte(v.Encode())
}

func TestRequestAgainstFakes(t *testing.T) {
	l := providertest.NewLab(t)
	ctx := context.Background()
	// ARM PUT body: nic-1 with a second ipConfiguration.
	var nic providertest.NetworkInterface
	putNIC := func(etag string) []byte {
		n := nic
		c := providertest.IPConfiguration{Name: "routerd-10-1-0-50"}
		c.Properties.PrivateIPAddress, c.Properties.PrivateIPAllocationMethod = "10.1.0.50", "Static"
		c.Properties.Subnet = &providertest.SubResource{ID: "/subnets/default"}
		n.Properties.IPConfigurations = append(slices.Clone(n.Properties.IPConfigurations), c)
		b, _ := json.Marshal(n)
		return b
	}
	armQuery := url.Values{"api-version": {providertest.ARMAPIVersion}}
	var ociID string
	tests := []struct {
		name     string
		grant    string
		call     func() provider.Call
		wantKind string // "" for success
		wantCode string
		after    func(t *testing.T, r provider.Response)
	}{
		{name: "ec2 assign", grant: "aws", call: func() provider.Call {
			return provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-a", "10.0.0.50")}
		}, after: func(t *testing.T, r provider.Response) {
			if !strings.HasPrefix(r.RequestID, "ec2-") || !slices.Equal(l.EC2.Addresses("eni-a"), []string{"10.0.0.50"}) {
				t.Errorf("request id %q, eni-a %v", r.RequestID, l.EC2.Addresses("eni-a"))
			}
		}},
		{name: "ec2 assign again changes nothing", grant: "aws", call: func() provider.Call {
			return provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-a", "10.0.0.50")}
		}, after: func(t *testing.T, r provider.Response) {
			if got := l.EC2.Addresses("eni-a"); !slices.Equal(got, []string{"10.0.0.50"}) {
				t.Errorf("eni-a %v", got)
			}
		}},
		{name: "ec2 address in use on another nic", grant: "aws", call: func() provider.Call {
			return provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-a", "10.0.0.20")}
		}, wantKind: provider.KindFinal, wantCode: "PrivateIpAddressInUse"},
		{name: "ec2 unknown nic", grant: "aws", call: func() provider.Call {
			return provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-zzz", "10.0.0.51")}
		}, wantKind: provider.KindFinal, wantCode: "InvalidNetworkInterfaceID.NotFound"},
		{name: "ec2 unassign", grant: "aws", call: func() provider.Call {
			return provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("UnassignPrivateIpAddresses", "eni-a", "10.0.0.50")}
		}, after: func(t *testing.T, r provider.Response) {
			if got := l.EC2.Addresses("eni-a"); len(got) != 0 {
				t.Errorf("eni-a %v after unassign", got)
			}
		}},
		{name: "arm get nic", grant: "azure", call: func() provider.Call {
			return provider.Call{ProfileRef: "azure-lab", Method: "GET", Path: armNIC + "nic-1", Query: armQuery}
		}, after: func(t *testing.T, r provider.Response) {
			if err := json.Unmarshal(r.Body, &nic); err != nil || r.ETag == "" && nic.Etag == "" || !strings.HasPrefix(r.RequestID, "arm-") {
				t.Errorf("nic %+v, %v, request id %q", nic, err, r.RequestID)
			}
		}},
		{name: "arm put adds ipConfiguration", grant: "azure", call: func() provider.Call {
			return provider.Call{ProfileRef: "azure-lab", Method: "PUT", Path: armNIC + "nic-1", Query: armQuery, Body: putNIC(""), Header: map[string]string{"If-Match": nic.Etag}}
		}, after: func(t *testing.T, r provider.Response) {
			if got := l.Azure.Addresses("nic-1"); !slices.Equal(got, []string{"10.1.0.4", "10.1.0.50"}) {
				t.Errorf("nic-1 %v", got)
			}
		}},
		{name: "arm put with stale etag", grant: "azure", call: func() provider.Call {
			return provider.Call{ProfileRef: "azure-lab", Method: "PUT", Path: armNIC + "nic-1", Query: armQuery, Body: putNIC(""), Header: map[string]string{"If-Match": nic.Etag}}
		}, wantKind: provider.KindFinal, wantCode: "PreconditionFailed"},
		{name: "arm unknown nic", grant: "azure", call: func() provider.Call {
			return provider.Call{ProfileRef: "azure-lab", Method: "GET", Path: armNIC + "nic-9", Query: armQuery}
		}, wantKind: provider.KindFinal, wantCode: "ResourceNotFound"},
		{name: "oci create private ip", grant: "oci", call: func() provider.Call {
			return provider.Call{ProfileRef: "oci-lab", Method: "POST", Path: "/20160918/privateIps", Body: []byte(`{"vnicId":"ocid1.vnic.oc1..v","ipAddress":"10.2.0.50"}`),
				Header: map[string]string{"opc-retry-token": "plan-1"}}
		}, after: func(t *testing.T, r provider.Response) {
			var p providertest.PrivateIP
			if err := json.Unmarshal(r.Body, &p); err != nil || p.IPAddress != "10.2.0.50" || !strings.HasPrefix(r.RequestID, "opc-") {
				t.Errorf("private ip %+v, %v", p, err)
			}
			ociID = p.ID
		}},
		{name: "oci create again conflicts", grant: "oci", call: func() provider.Call {
			return provider.Call{ProfileRef: "oci-lab", Method: "POST", Path: "/20160918/privateIps", Body: []byte(`{"vnicId":"ocid1.vnic.oc1..v","ipAddress":"10.2.0.50"}`)}
		}, wantKind: provider.KindFinal, wantCode: "Conflict"},
		{name: "oci list", grant: "oci", call: func() provider.Call {
			return provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/privateIps", Query: url.Values{"vnicId": {"ocid1.vnic.oc1..v"}}}
		}, after: func(t *testing.T, r provider.Response) {
			if !bytes.Contains(r.Body, []byte(ociID)) {
				t.Errorf("list %s lacks %s", r.Body, ociID)
			}
		}},
		{name: "oci delete", grant: "oci", call: func() provider.Call {
			return provider.Call{ProfileRef: "oci-lab", Method: "DELETE", Path: "/20160918/privateIps/" + ociID}
		}, after: func(t *testing.T, r provider.Response) {
			if r.Status != 204 || len(l.OCI.Addresses("ocid1.vnic.oc1..v")) != 0 {
				t.Errorf("status %d, vnic %v", r.Status, l.OCI.Addresses("ocid1.vnic.oc1..v"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := l.Requester.Request(ctx, l.Grants[tt.grant], tt.call())
			l.NoSecret(t, fmt.Sprintf("%+v %s %v", resp, resp.Body, err))
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if tt.after != nil {
					tt.after(t, resp)
				}
				return
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind || pe.Code != tt.wantCode || pe.RequestID == "" || pe.Status < 400 {
				t.Fatalf("err = %#v, want %s %s with a request id", err, tt.wantKind, tt.wantCode)
			}
		})
	}
	l.NoSecret(t, l.Logs.String())
	if strings.Contains(l.Logs.String(), "api-version") || strings.Contains(l.Logs.String(), "10.2.0.50") {
		t.Errorf("log carries a query or body: %s", l.Logs.String())
	}
}

func TestRequestDenied(t *testing.T) {
	l := providertest.NewLab(t)
	aws := l.Grants["aws"]
	tests := []struct {
		name    string
		grant   provider.Grant
		call    provider.Call
		wantErr string
	}{
		{name: "profile not granted", grant: aws, call: provider.Call{ProfileRef: "oci-lab", Method: "POST", Path: "/"}, wantErr: `profile "oci-lab" is not granted`},
		{name: "unknown profile", grant: provider.Grant{Plugin: "p", ProfileRefs: []string{"ghost"}}, call: provider.Call{ProfileRef: "ghost", Method: "POST", Path: "/"}, wantErr: `no CloudProviderProfile named "ghost"`},
		{name: "host not granted", grant: aws, call: provider.Call{ProfileRef: "aws-public", Method: "POST", Path: "/"}, wantErr: "host ec2.eu-central-1.amazonaws.com of profile aws-public is not granted"},
		{name: "method not granted", grant: aws, call: provider.Call{ProfileRef: "aws-lab", Method: "DELETE", Path: "/"}, wantErr: `method "DELETE" is not granted`},
		{name: "path outside prefix", grant: l.Grants["oci"], call: provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/vnics"}, wantErr: "path /20160918/vnics is not granted"},
		{name: "prefix is whole segments", grant: l.Grants["oci"], call: provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/privateIpsX"}, wantErr: "is not granted"},
		{name: "dot-dot escapes prefix", grant: l.Grants["oci"], call: provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/privateIps/../vnics"}, wantErr: "must be clean"},
		{name: "escaped path", grant: l.Grants["oci"], call: provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/privateIps/%2e%2e/vnics"}, wantErr: "must be clean"},
		{name: "authorization header", grant: aws, call: provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Header: map[string]string{"Authorization": "x"}}, wantErr: `header "Authorization" may not be set`},
		{name: "host header", grant: aws, call: provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Header: map[string]string{"host": "evil.example"}}, wantErr: `header "host" may not be set`},
		{name: "empty grant", grant: provider.Grant{Plugin: "p"}, call: provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/"}, wantErr: "is not granted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Requester.Request(context.Background(), tt.grant, tt.call)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != provider.KindDenied || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want denied %q", err, tt.wantErr)
			}
		})
	}
	if n := l.EC2.Requests() + l.Azure.Requests() + l.Azure.TokenRequests() + l.OCI.Requests(); n != 0 {
		t.Errorf("%d requests left the machine for denied calls", n)
	}
}

func TestRequestFaults(t *testing.T) {
	l := providertest.NewLab(t)
	l.Requester.Timeout = 300 * time.Millisecond
	l.Requester.MaxResponse = 4096
	assign := provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-a", "10.0.0.60")}
	getNIC := provider.Call{ProfileRef: "azure-lab", Method: "GET", Path: armNIC + "nic-1", Query: url.Values{"api-version": {providertest.ARMAPIVersion}}}
	list := provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/privateIps", Query: url.Values{"vnicId": {"ocid1.vnic.oc1..v"}}}
	tests := []struct {
		name       string
		inject     func(...providertest.Fault)
		fault      providertest.Fault
		grant      string
		call       provider.Call
		wantKind   string
		wantReason string
	}{
		{name: "ec2 503 throttled", inject: l.EC2.Inject, fault: providertest.Fault{Status: 503, Code: "RequestLimitExceeded"}, grant: "aws", call: assign, wantKind: provider.KindRetryable, wantReason: "answered 503"},
		{name: "ec2 throttling code on 400", inject: l.EC2.Inject, fault: providertest.Fault{Status: 400, Code: "RequestLimitExceeded"}, grant: "aws", call: assign, wantKind: provider.KindRetryable, wantReason: "answered 400"},
		{name: "ec2 500", inject: l.EC2.Inject, fault: providertest.Fault{Status: 500}, grant: "aws", call: assign, wantKind: provider.KindRetryable, wantReason: "answered 500: injected fault"},
		{name: "ec2 garbage 200", inject: l.EC2.Inject, fault: providertest.Fault{Raw: "<html>not xml"}, grant: "aws", call: assign, wantKind: provider.KindFinal, wantReason: "answer is not EC2 XML"},
		{name: "ec2 hangs", inject: l.EC2.Inject, fault: providertest.Fault{Hang: true}, grant: "aws", call: assign, wantKind: provider.KindRetryable, wantReason: "no answer within 300ms"},
		{name: "arm 429", inject: l.Azure.Inject, fault: providertest.Fault{Status: 429}, grant: "azure", call: getNIC, wantKind: provider.KindRetryable, wantReason: "answered 429"},
		{name: "arm garbage 502", inject: l.Azure.Inject, fault: providertest.Fault{Status: 502, Raw: "bad gateway"}, grant: "azure", call: getNIC, wantKind: provider.KindRetryable, wantReason: "not JSON"},
		{name: "arm 403", inject: l.Azure.Inject, fault: providertest.Fault{Status: 403, Code: "AuthorizationFailed"}, grant: "azure", call: getNIC, wantKind: provider.KindFinal, wantReason: "answered 403"},
		{name: "oci answer too large", inject: l.OCI.Inject, fault: providertest.Fault{Raw: "[" + strings.Repeat(`"x",`, 2000) + `"x"]`}, grant: "oci", call: list, wantKind: provider.KindFinal, wantReason: "larger than 4096 bytes"},
		{name: "oci garbage 200", inject: l.OCI.Inject, fault: providertest.Fault{Raw: "{truncated"}, grant: "oci", call: list, wantKind: provider.KindFinal, wantReason: "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.inject(tt.fault)
			resp, err := l.Requester.Request(context.Background(), l.Grants[tt.grant], tt.call)
			l.NoSecret(t, fmt.Sprintf("%+v %v", resp, err))
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != tt.wantKind || !strings.Contains(pe.Reason, tt.wantReason) {
				t.Fatalf("err = %v, want %s containing %q", err, tt.wantKind, tt.wantReason)
			}
			if provider.Retryable(err) != (tt.wantKind == provider.KindRetryable) {
				t.Errorf("Retryable = %v", provider.Retryable(err))
			}
		})
	}
	// After the faults the fakes still serve.
	if _, err := l.Requester.Request(context.Background(), l.Grants["aws"], assign); err != nil {
		t.Errorf("after faults: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name    string
		p       provider.Profile
		want    string
		wantErr string
	}{
		{name: "aws region", p: provider.Profile{Name: "a", Provider: "aws", Region: "eu-central-1"}, want: "https://ec2.eu-central-1.amazonaws.com"},
		{name: "azure", p: provider.Profile{Name: "a", Provider: "azure"}, want: "https://management.azure.com"},
		{name: "oci region", p: provider.Profile{Name: "a", Provider: "oci", Region: "eu-frankfurt-1"}, want: "https://iaas.eu-frankfurt-1.oraclecloud.com"},
		{name: "loopback http override", p: provider.Profile{Name: "a", Provider: "aws", Endpoint: "http://127.0.0.1:8080"}, want: "http://127.0.0.1:8080"},
		{name: "http elsewhere refused", p: provider.Profile{Name: "a", Provider: "aws", Endpoint: "http://ec2.example.com"}, wantErr: "http is allowed only to a loopback address"},
		{name: "path refused", p: provider.Profile{Name: "a", Provider: "aws", Endpoint: "https://ec2.example.com/x"}, wantErr: "without path"},
		{name: "aws without region", p: provider.Profile{Name: "a", Provider: "aws"}, wantErr: "spec.region is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.p.BaseURL()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Errorf("got %v, %v; want %s", u, err, tt.want)
			}
		})
	}
}

// TestRequestRefetchesRejectedCredential: a credentials file holds a wrong secret, the
// provider refuses it, the operator corrects the file under the same access key id. With
// Profile.Invalidate the next call reads the file again and signs with the new secret
// (this also caught the SDK signer reusing the key derived from the old secret).
func TestRequestRefetchesRejectedCredential(t *testing.T) {
	for _, invalidate := range []bool{false, true} {
		t.Run(fmt.Sprintf("invalidate=%v", invalidate), func(t *testing.T) {
			fake := providertest.NewEC2(t, providertest.EC2Options{Region: "eu-central-1", AccessKeyID: "AKIAROTATED", SecretAccessKey: awsSecret,
				NICs: map[string][]string{"eni-a": nil}})
			credFile := filepath.Join(t.TempDir(), "aws.json")
			write := func(secret string) {
				doc := fmt.Sprintf(`{"AccessKeyId":"AKIAROTATED","SecretAccessKey":%q}`, secret)
				if err := os.WriteFile(credFile, []byte(doc), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("the-old-secret-before-rotation")
			src, err := credential.New(credential.Config{Provider: "aws", Mode: credential.ModeFile, File: credFile}, credential.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cached := &credential.Cached{Source: src}
			signer, err := sign.New("aws", cached, sign.Options{Region: "eu-central-1"})
			if err != nil {
				t.Fatal(err)
			}
			p := provider.Profile{Name: "aws-lab", Provider: "aws", Region: "eu-central-1", Endpoint: fake.URL, Signer: signer}
			if invalidate {
				p.Invalidate = cached.Invalidate
			}
			u, _ := url.Parse(fake.URL)
			r := &provider.Requester{Profiles: func(string) (provider.Profile, bool) { return p, true }}
			g := provider.Grant{Plugin: "p", ProfileRefs: []string{"aws-lab"}, Hosts: []string{u.Host}, Methods: []string{"POST"}, PathPrefixes: []string{"/"}}
			call := provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-a", "10.0.0.80")}
			_, err = r.Request(context.Background(), g, call)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Code != "SignatureDoesNotMatch" || pe.Kind != provider.KindFinal {
				t.Fatalf("old secret: %v", err)
			}
			write(awsSecret) // the secret is corrected on disk
			_, err = r.Request(context.Background(), g, call)
			if invalidate && err != nil {
				t.Errorf("after rotation with invalidation: %v", err)
			}
			if !invalidate && err == nil {
				t.Errorf("without invalidation the cached old secret should still be used")
			}
		})
	}
}
