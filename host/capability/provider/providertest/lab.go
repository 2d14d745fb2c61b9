package providertest

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/credential"
	"routerd.net/routerd/host/capability/provider/sign"
)

// The Lab's secrets and paths.
const (
	LabAWSSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	LabAWSToken    = "IQoJb3JpZ2luX2VjEXAMPLESESSION"
	LabAzureSecret = "azure-client-secret-value-42"
	// LabARMNICs is the ARM path prefix of the lab's network interfaces.
	LabARMNICs = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Network/networkInterfaces/"
)

// Lab is the three fakes and a Requester whose profiles point at them: aws-lab (EC2,
// credential from a 0600 file), azure-lab (ARM, client credentials), oci-lab (OCI
// signing key), and aws-public (the real EC2 endpoint, for grant tests that must not
// send). Grants holds one grant per provider ("aws", "azure", "oci") that allows the
// fake's host, and Secrets every credential byte sequence, for leak checks.
type Lab struct {
	EC2       *EC2
	Azure     *Azure
	OCI       *OCI
	OCIKey    OCIKey
	Requester *provider.Requester
	Grants    map[string]provider.Grant
	Logs      *bytes.Buffer
	Secrets   []string
}

// NewLab starts the fakes (stopped with t) and builds the Requester.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	l := &Lab{Logs: &bytes.Buffer{}}
	l.EC2 = NewEC2(t, EC2Options{Region: "eu-central-1", AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: LabAWSSecret,
		SessionToken: LabAWSToken, NICs: map[string][]string{"eni-a": nil, "eni-b": {"10.0.0.20"}}})
	l.Azure = NewAzure(t, AzureOptions{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: LabAzureSecret,
		SubscriptionID: "sub-1", ResourceGroup: "rg-1", NICs: map[string][]string{"nic-1": {"10.1.0.4"}}})
	l.OCIKey = NewOCIKey(t)
	l.OCI = NewOCI(t, OCIOptions{Tenancy: "ocid1.tenancy.oc1..t", User: "ocid1.user.oc1..u", Key: l.OCIKey,
		VNICs: map[string][]string{"ocid1.vnic.oc1..v": nil}})
	l.Secrets = []string{LabAWSSecret, LabAWSToken, LabAzureSecret, "fake-arm-token-", strings.Split(l.OCIKey.PEM, "\n")[1]}

	// The AWS credential comes from a 0600 file, as in production, the others are static.
	dir := t.TempDir()
	credFile := filepath.Join(dir, "aws.json")
	doc := fmt.Sprintf(`{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":%q,"SessionToken":%q}`, LabAWSSecret, LabAWSToken)
	if err := os.WriteFile(credFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	awsSrc, err := credential.New(credential.Config{Provider: "aws", Mode: credential.ModeFile, File: credFile}, credential.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSigner := func(provider string, src credential.Source, o sign.Options) sign.Signer {
		s, err := sign.New(provider, src, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	profiles := map[string]provider.Profile{
		"aws-lab": {Name: "aws-lab", Provider: "aws", Region: "eu-central-1", Endpoint: l.EC2.URL,
			Signer: mustSigner("aws", &credential.Cached{Source: awsSrc}, sign.Options{Region: "eu-central-1"})},
		"azure-lab": {Name: "azure-lab", Provider: "azure", Endpoint: l.Azure.URL,
			Signer: mustSigner("azure", credential.Static(credential.Credential{Provider: "azure", Azure: &credential.Azure{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: LabAzureSecret}}),
				sign.Options{AzureAuthorityHost: l.Azure.AuthorityHost, AzureTransport: l.Azure.LoginClient})},
		"oci-lab": {Name: "oci-lab", Provider: "oci", Region: "eu-frankfurt-1", Endpoint: l.OCI.URL,
			Signer: mustSigner("oci", credential.Static(credential.Credential{Provider: "oci", OCI: &credential.OCI{Tenancy: "ocid1.tenancy.oc1..t",
				User: "ocid1.user.oc1..u", Fingerprint: l.OCIKey.Fingerprint, PrivateKey: l.OCIKey.PEM}}), sign.Options{})},
		"aws-public": {Name: "aws-public", Provider: "aws", Region: "eu-central-1", Signer: mustSigner("aws", awsSrc, sign.Options{Region: "eu-central-1"})},
	}
	host := func(u string) string { p, _ := url.Parse(u); return p.Host }
	l.Grants = map[string]provider.Grant{
		"aws":   {Plugin: "provider-aws", ProfileRefs: []string{"aws-lab", "aws-public"}, Hosts: []string{host(l.EC2.URL)}, Methods: []string{"POST"}, PathPrefixes: []string{"/"}},
		"azure": {Plugin: "provider-azure", ProfileRefs: []string{"azure-lab"}, Hosts: []string{host(l.Azure.URL)}, Methods: []string{"GET", "PUT"}, PathPrefixes: []string{LabARMNICs}},
		"oci":   {Plugin: "provider-oci", ProfileRefs: []string{"oci-lab"}, Hosts: []string{host(l.OCI.URL)}, Methods: []string{"GET", "POST", "DELETE"}, PathPrefixes: []string{"/20160918/privateIps"}},
	}
	l.Requester = &provider.Requester{
		Profiles: func(ref string) (provider.Profile, bool) { p, ok := profiles[ref]; return p, ok },
		Timeout:  2 * time.Second,
		Log:      slog.New(slog.NewTextHandler(l.Logs, nil)),
	}
	return l
}

// NoSecret fails t when any credential byte sequence is in what.
func (l *Lab) NoSecret(t testing.TB, what string) {
	t.Helper()
	for _, s := range l.Secrets {
		if strings.Contains(what, s) {
			t.Errorf("secret %.8s... leaked into %q", s, what)
		}
	}
}
