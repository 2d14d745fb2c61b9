// Package sign authenticates provider API requests on the host with a credential from
// package credential, using each provider's own SDK for the cryptography:
//
//   - aws: Signature Version 4 (aws-sdk-go-v2 aws/signer/v4);
//   - azure: a bearer token for client credentials (azidentity ClientSecretCredential,
//     whose authority host is configurable), or a ready access token from the credential;
//   - oci: the OCI HTTP signature (oci-go-sdk v65 common.DefaultRequestSigner).
//
// Errors never contain a secret.
package sign

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/oracle/oci-go-sdk/v65/common"

	"routerd.net/routerd/host/capability/provider/credential"
)

// Defaults of Options.
const (
	// DefaultAWSService is the SigV4 service name of the EC2 API.
	DefaultAWSService = "ec2"
	// DefaultAzureScope is the token scope of Azure Resource Manager.
	DefaultAzureScope = "https://management.azure.com/.default"
)

// Signer authenticates one request in place. body is the request body (the request's
// Body must hold the same bytes; signers that hash it use body).
type Signer interface {
	Sign(ctx context.Context, req *http.Request, body []byte) error
}

// Options configure a signer.
type Options struct {
	// Region is the AWS region (required for aws).
	Region string
	// Service is the AWS SigV4 service name (default DefaultAWSService).
	Service string
	// AzureAuthorityHost is the Microsoft Entra authority base URL (default: Azure
	// public cloud). Tests point it at a fake token endpoint.
	AzureAuthorityHost string
	// AzureScope is the token scope (default DefaultAzureScope).
	AzureScope string
	// AzureTransport sends token requests (default: azcore's). Tests pass the fake's
	// TLS client.
	AzureTransport policy.Transporter
	// Now is the clock for SigV4 (default time.Now).
	Now func() time.Time
}

// New returns the signer of provider, taking credentials from src.
//
// # Errors
//
// An unknown provider, or aws without a region.
func New(provider string, src credential.Source, opts Options) (Signer, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch provider {
	case credential.ProviderAWS:
		if opts.Region == "" {
			return nil, errors.New("sign: aws needs a region (CloudProviderProfile spec.region)")
		}
		if opts.Service == "" {
			opts.Service = DefaultAWSService
		}
		return &awsSigner{src: src, opts: opts}, nil
	case credential.ProviderAzure:
		if opts.AzureScope == "" {
			opts.AzureScope = DefaultAzureScope
		}
		return &azureSigner{src: src, opts: opts}, nil
	case credential.ProviderOCI:
		return &ociSigner{src: src, now: opts.Now}, nil
	}
	return nil, fmt.Errorf("sign: provider %q: want aws, azure or oci", provider)
}

// credentialOf fetches the credential and checks that it is for provider.
func credentialOf(ctx context.Context, src credential.Source, provider string) (credential.Credential, error) {
	c, err := src.Credential(ctx)
	if err != nil {
		return c, err
	}
	ok := (provider == credential.ProviderAWS && c.AWS != nil) ||
		(provider == credential.ProviderAzure && c.Azure != nil) ||
		(provider == credential.ProviderOCI && c.OCI != nil)
	if !ok {
		return c, fmt.Errorf("sign: %s is not an %s credential", c, provider)
	}
	return c, nil
}

// awsSigner signs with SigV4.
type awsSigner struct {
	src  credential.Source
	opts Options

	mu     sync.Mutex
	secret [sha256.Size]byte // hash of the key the signer was made for
	signer *v4.Signer
}

// signerFor returns a v4 signer for the secret key. The SDK's signer caches derived
// signing keys by access key id and day only, so a secret corrected under the same key
// id (a fixed typo in a credentials file) would keep being signed with the old one
// until midnight UTC; a new secret therefore gets a new signer.
func (s *awsSigner) signerFor(secret string) *v4.Signer {
	sum := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signer == nil || sum != s.secret {
		s.signer, s.secret = v4.NewSigner(), sum
	}
	return s.signer
}

// Sign adds X-Amz-Date, X-Amz-Security-Token (temporary keys) and Authorization.
func (s *awsSigner) Sign(ctx context.Context, req *http.Request, body []byte) error {
	c, err := credentialOf(ctx, s.src, credential.ProviderAWS)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: c.AWS.AccessKeyID, SecretAccessKey: c.AWS.SecretAccessKey,
		SessionToken: c.AWS.SessionToken, Source: "routerd", CanExpire: !c.Expires.IsZero(), Expires: c.Expires}
	if err := s.signerFor(c.AWS.SecretAccessKey).SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), s.opts.Service, s.opts.Region, s.opts.Now().UTC()); err != nil {
		return fmt.Errorf("sign: aws sigv4: %w", err)
	}
	return nil
}

// azureSigner adds a bearer token.
type azureSigner struct {
	src  credential.Source
	opts Options

	mu   sync.Mutex
	key  string // tenant/client/secret hash of cred
	cred *azidentity.ClientSecretCredential
}

// Sign adds "Authorization: Bearer <token>".
func (s *azureSigner) Sign(ctx context.Context, req *http.Request, body []byte) error {
	c, err := credentialOf(ctx, s.src, credential.ProviderAzure)
	if err != nil {
		return err
	}
	token := c.Azure.AccessToken
	if token == "" {
		cred, err := s.clientSecret(c.Azure)
		if err != nil {
			return err
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.opts.AzureScope}})
		if err != nil {
			return fmt.Errorf("sign: azure token for client %s in tenant %s: %s", c.Azure.ClientID, c.Azure.TenantID, azureReason(err))
		}
		token = tok.Token
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return nil
}

// clientSecret returns the ClientSecretCredential of a (reusing the last one while the
// credential is unchanged, so that its token cache works).
func (s *azureSigner) clientSecret(a *credential.Azure) (*azidentity.ClientSecretCredential, error) {
	sum := sha256.Sum256([]byte(a.TenantID + "\x00" + a.ClientID + "\x00" + a.ClientSecret))
	key := string(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cred != nil && s.key == key {
		return s.cred, nil
	}
	o := &azidentity.ClientSecretCredentialOptions{}
	if s.opts.AzureAuthorityHost != "" {
		o.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: s.opts.AzureAuthorityHost}
		o.DisableInstanceDiscovery = true
	}
	if s.opts.AzureTransport != nil {
		o.Transport = s.opts.AzureTransport
	}
	o.Retry.MaxRetries = -1 // the caller maps and retries provider errors
	cred, err := azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, a.ClientSecret, o)
	if err != nil {
		return nil, fmt.Errorf("sign: azure client credentials for client %s: %s", a.ClientID, azureReason(err))
	}
	s.cred, s.key = cred, key
	return cred, nil
}

// azureReason is the first line of an azidentity error, which names the failing
// endpoint and status; the response body it quotes further down is left out.
func azureReason(err error) string {
	msg := err.Error()
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("token endpoint answered %d %s", re.StatusCode, re.ErrorCode)
	}
	var ae *azidentity.AuthenticationFailedError
	if errors.As(err, &ae) && ae.RawResponse != nil {
		return fmt.Sprintf("token endpoint %s answered %s", ae.RawResponse.Request.URL.Host, ae.RawResponse.Status)
	}
	first, _, _ := strings.Cut(msg, "\n")
	return first
}

// ociSigner signs with the OCI HTTP signature.
type ociSigner struct {
	src credential.Source
	now func() time.Time

	mu     sync.Mutex
	keyFor [sha256.Size]byte // hash of the PEM and passphrase key was parsed from
	key    *rsa.PrivateKey
}

// privateKey parses the credential's PEM key, reusing the last parse while the key and
// passphrase are unchanged.
func (s *ociSigner) privateKey(o *credential.OCI) (*rsa.PrivateKey, error) {
	sum := sha256.Sum256([]byte(o.PrivateKey + "\x00" + o.Passphrase))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil && sum == s.keyFor {
		return s.key, nil
	}
	var pass []byte
	if o.Passphrase != "" {
		pass = []byte(o.Passphrase)
	}
	key, err := common.PrivateKeyFromBytesWithPassword([]byte(o.PrivateKey), pass)
	if err != nil {
		return nil, err
	}
	s.key, s.keyFor = key, sum
	return key, nil
}

// ociKey is a common.KeyProvider over one credential.
type ociKey struct {
	key *rsa.PrivateKey
	id  string
}

func (k ociKey) PrivateRSAKey() (*rsa.PrivateKey, error) { return k.key, nil }
func (k ociKey) KeyID() (string, error)                  { return k.id, nil }

// Sign adds date, x-content-sha256 (with a body) and the Authorization signature.
func (s *ociSigner) Sign(ctx context.Context, req *http.Request, body []byte) error {
	c, err := credentialOf(ctx, s.src, credential.ProviderOCI)
	if err != nil {
		return err
	}
	key, err := s.privateKey(c.OCI)
	if err != nil {
		// The SDK's message does not quote the key.
		return fmt.Errorf("sign: oci private key of %s cannot be read (wrong passphrase or not an RSA PEM key)", c)
	}
	kp := ociKey{key: key, id: c.OCI.Tenancy + "/" + c.OCI.User + "/" + c.OCI.Fingerprint}
	// The SDK's client sets Date before signing; the signature covers it.
	req.Header.Set("Date", s.now().UTC().Format(http.TimeFormat))
	if req.ContentLength == 0 && len(body) > 0 {
		req.ContentLength = int64(len(body))
	}
	if err := common.DefaultRequestSigner(kp).Sign(req); err != nil {
		return fmt.Errorf("sign: oci: %w", err)
	}
	return nil
}
