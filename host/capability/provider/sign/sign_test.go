package sign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/host/capability/provider/credential"
	"routerd.net/routerd/host/capability/provider/providertest"
	"routerd.net/routerd/host/capability/provider/sign"
)

const (
	awsSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	azureSecret = "azure-client-secret-value-42"
)

// send signs a request with s and sends it, returning status and body. tamper, when
// set, changes the request after signing.
func send(t *testing.T, s sign.Signer, method, u string, hdr map[string]string, body []byte, tamper func(*http.Request, *[]byte)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if err := s.Sign(context.Background(), req, body); err != nil {
		t.Fatalf("sign: %v", err)
	}
	if tamper != nil {
		tamper(req, &body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAWS(t *testing.T) {
	fake := providertest.NewEC2(t, providertest.EC2Options{Region: "ap-northeast-1", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: awsSecret,
		SessionToken: "session-token-1", NICs: map[string][]string{"eni-1": nil}})
	good := credential.Credential{Provider: "aws", AWS: &credential.AWS{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: awsSecret, SessionToken: "session-token-1"}}
	wrongSecret := good
	wrongSecret.AWS = &credential.AWS{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "not-the-secret", SessionToken: "session-token-1"}
	form := url.Values{"Action": {"AssignPrivateIpAddresses"}, "Version": {providertest.EC2Version}, "NetworkInterfaceId": {"eni-1"}, "PrivateIpAddress.1": {"10.0.0.9"}}.Encode()
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
	tests := []struct {
		name     string
		cred     credential.Credential
		region   string
		now      time.Time
		tamper   func(*http.Request, *[]byte)
		wantCode int
		wantBody string
	}{
		{name: "signed request accepted", cred: good, region: "ap-northeast-1", wantCode: 200, wantBody: "<requestId>ec2-"},
		{name: "wrong secret", cred: wrongSecret, region: "ap-northeast-1", wantCode: 403, wantBody: "<Code>SignatureDoesNotMatch</Code>"},
		{name: "wrong region", cred: good, region: "us-east-1", wantCode: 401, wantBody: "<Code>AuthFailure</Code>"},
		{name: "body changed after signing", cred: good, region: "ap-northeast-1", wantCode: 403, wantBody: "SignatureDoesNotMatch",
			tamper: func(r *http.Request, b *[]byte) { *b = bytes.Replace(*b, []byte("10.0.0.9"), []byte("10.0.0.8"), 1) }},
		{name: "header changed after signing", cred: good, region: "ap-northeast-1", wantCode: 403, wantBody: "SignatureDoesNotMatch",
			tamper: func(r *http.Request, b *[]byte) { r.Header.Set("Content-Type", "text/plain") }},
		{name: "stale signature", cred: good, region: "ap-northeast-1", now: time.Now().Add(-time.Hour), wantCode: 400, wantBody: "RequestExpired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := sign.Options{Region: tt.region}
			if !tt.now.IsZero() {
				opts.Now = func() time.Time { return tt.now }
			}
			s, err := sign.New("aws", credential.Static(tt.cred), opts)
			if err != nil {
				t.Fatal(err)
			}
			code, body := send(t, s, "POST", fake.URL+"/", hdr, []byte(form), tt.tamper)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	if got := fake.Addresses("eni-1"); len(got) != 1 || got[0] != "10.0.0.9" {
		t.Errorf("eni-1 has %v after one accepted assign", got)
	}
}

func TestAzure(t *testing.T) {
	fake := providertest.NewAzure(t, providertest.AzureOptions{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: azureSecret,
		SubscriptionID: "sub-1", ResourceGroup: "rg-1", NICs: map[string][]string{"nic-1": {"10.1.0.4"}}})
	nicURL := fake.URL + "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/networkInterfaces/nic-1?api-version=" + providertest.ARMAPIVersion
	tests := []struct {
		name     string
		cred     credential.Credential
		wantCode int
		wantBody string
		signErr  string
	}{
		{name: "client credentials token accepted", cred: credential.Credential{Provider: "azure", Azure: &credential.Azure{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: azureSecret}},
			wantCode: 200, wantBody: `"privateIPAddress":"10.1.0.4"`},
		{name: "wrong client secret", cred: credential.Credential{Provider: "azure", Azure: &credential.Azure{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "nope"}},
			signErr: "azure token for client client-1 in tenant tenant-1"},
		{name: "token not issued by the endpoint", cred: credential.Credential{Provider: "azure", Azure: &credential.Azure{AccessToken: "forged"}},
			wantCode: 401, wantBody: `"code":"InvalidAuthenticationToken"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sign.New("azure", credential.Static(tt.cred), sign.Options{AzureAuthorityHost: fake.AuthorityHost, AzureTransport: fake.LoginClient})
			if err != nil {
				t.Fatal(err)
			}
			if tt.signErr != "" {
				req, _ := http.NewRequest("GET", nicURL, nil)
				err := s.Sign(context.Background(), req, nil)
				if err == nil || !strings.Contains(err.Error(), tt.signErr) {
					t.Fatalf("sign err = %v, want %q", err, tt.signErr)
				}
				if strings.Contains(err.Error(), "nope") || strings.Contains(err.Error(), azureSecret) {
					t.Errorf("error contains the secret: %v", err)
				}
				return
			}
			code, body := send(t, s, "GET", nicURL, nil, nil, nil)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	t.Run("token reused", func(t *testing.T) {
		s, _ := sign.New("azure", credential.Static(credential.Credential{Provider: "azure", Azure: &credential.Azure{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: azureSecret}}),
			sign.Options{AzureAuthorityHost: fake.AuthorityHost, AzureTransport: fake.LoginClient})
		before := fake.TokenRequests()
		for range 3 {
			if code, body := send(t, s, "GET", nicURL, nil, nil, nil); code != 200 {
				t.Fatalf("%d %s", code, body)
			}
		}
		// Discovery plus one token request; later calls use azidentity's cache.
		if n := fake.TokenRequests() - before; n > 2 {
			t.Errorf("%d token endpoint requests for 3 calls", n)
		}
	})
}

func TestOCI(t *testing.T) {
	key := providertest.NewOCIKey(t)
	other := providertest.NewOCIKey(t)
	fake := providertest.NewOCI(t, providertest.OCIOptions{Tenancy: "ocid1.tenancy.oc1..t", User: "ocid1.user.oc1..u", Key: key,
		VNICs: map[string][]string{"ocid1.vnic.oc1..v": nil}})
	cred := func(k providertest.OCIKey, fp string) credential.Credential {
		return credential.Credential{Provider: "oci", OCI: &credential.OCI{Tenancy: "ocid1.tenancy.oc1..t", User: "ocid1.user.oc1..u", Fingerprint: fp, PrivateKey: k.PEM}}
	}
	body, _ := json.Marshal(map[string]string{"vnicId": "ocid1.vnic.oc1..v", "ipAddress": "10.2.0.7"})
	hdr := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name     string
		cred     credential.Credential
		method   string
		path     string
		body     []byte
		tamper   func(*http.Request, *[]byte)
		wantCode int
		wantBody string
	}{
		{name: "create signed", cred: cred(key, key.Fingerprint), method: "POST", path: "/20160918/privateIps", body: body, wantCode: 200, wantBody: `"ipAddress":"10.2.0.7"`},
		{name: "list signed", cred: cred(key, key.Fingerprint), method: "GET", path: "/20160918/privateIps?vnicId=ocid1.vnic.oc1..v", wantCode: 200, wantBody: `"10.2.0.7"`},
		{name: "wrong key", cred: cred(other, key.Fingerprint), method: "GET", path: "/20160918/privateIps?vnicId=ocid1.vnic.oc1..v", wantCode: 401, wantBody: `"code":"NotAuthenticated"`},
		{name: "wrong fingerprint", cred: cred(key, other.Fingerprint), method: "GET", path: "/20160918/privateIps?vnicId=x", wantCode: 401, wantBody: "keyId"},
		{name: "body changed after signing", cred: cred(key, key.Fingerprint), method: "POST", path: "/20160918/privateIps", body: body, wantCode: 401, wantBody: "x-content-sha256",
			tamper: func(r *http.Request, b *[]byte) { *b = bytes.Replace(*b, []byte("10.2.0.7"), []byte("10.2.0.8"), 1) }},
		{name: "query changed after signing", cred: cred(key, key.Fingerprint), method: "GET", path: "/20160918/privateIps?vnicId=a", wantCode: 401, wantBody: "(signature)",
			tamper: func(r *http.Request, b *[]byte) { r.URL.RawQuery = "vnicId=b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sign.New("oci", credential.Static(tt.cred), sign.Options{})
			if err != nil {
				t.Fatal(err)
			}
			code, got := send(t, s, tt.method, fake.URL+tt.path, hdr, tt.body, tt.tamper)
			if code != tt.wantCode || !strings.Contains(got, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", code, got, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name, provider string
		opts           sign.Options
		wantErr        string
	}{
		{name: "aws without region", provider: "aws", wantErr: "spec.region"},
		{name: "gcp", provider: "gcp", wantErr: `provider "gcp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sign.New(tt.provider, credential.Static(credential.Credential{}), tt.opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	t.Run("credential of another provider", func(t *testing.T) {
		s, _ := sign.New("oci", credential.Static(credential.Credential{Provider: "aws", AWS: &credential.AWS{AccessKeyID: "AKIAX", SecretAccessKey: awsSecret}}), sign.Options{})
		req, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
		err := s.Sign(context.Background(), req, nil)
		if err == nil || !strings.Contains(err.Error(), "is not an oci credential") || strings.Contains(err.Error(), awsSecret) {
			t.Errorf("err = %v", err)
		}
	})
}
