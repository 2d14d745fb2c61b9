// Package credential loads cloud provider credentials for the host, never for a plugin:
// the host signs provider requests with them (package sign) and no credential ever
// reaches guest memory, a log line, an error message or the audit log.
//
// A Source yields a Credential from one of four places (Config.Mode):
//
//   - external-command: run a command (a shell string run with "sh -c", as routerd
//     v1alpha1 configs write it, or an argv list) with a timeout and read the JSON
//     credential it prints on stdout (bounded);
//   - file: read the same JSON (for aws also the AWS shared credentials INI format)
//     from a file that must be mode 0600 and owned by the daemon's user;
//   - env: read named environment variables;
//   - instance: ask the cloud's instance metadata endpoint (AWS IMDSv2, Azure managed
//     identity; the base URL is configurable so tests use 127.0.0.1).
//
// Cached wraps a Source and reuses a credential until shortly before it expires.
//
// The JSON a command or file prints is, per provider:
//
//	aws:   {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
//	       (the AWS credential_process format)
//	azure: {"tenantId", "clientId", "clientSecret"} or {"accessToken", "expiresOn"}
//	oci:   {"tenancy", "user", "fingerprint", "privateKey" (PEM), "passphrase"}
package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Providers the package knows.
const (
	ProviderAWS   = "aws"
	ProviderAzure = "azure"
	ProviderOCI   = "oci"
)

// Modes of Config.Mode.
const (
	ModeExternalCommand = "external-command"
	ModeFile            = "file"
	ModeEnv             = "env"
	ModeInstance        = "instance"
)

// Credential is one provider's credential. Exactly one of AWS, Azure and OCI is set,
// matching Provider. Its String and LogValue methods never print a secret.
type Credential struct {
	// Provider is aws, azure or oci.
	Provider string
	// AWS is set for provider aws.
	AWS *AWS
	// Azure is set for provider azure.
	Azure *Azure
	// OCI is set for provider oci.
	OCI *OCI
	// Expires is when the credential stops working (zero: unknown).
	Expires time.Time
	// Source says where it came from ("external-command", "file /path", ...), for
	// messages.
	Source string
}

// AWS is an AWS access key, optionally temporary (SessionToken).
type AWS struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Azure is either a service principal's client credentials (TenantID, ClientID,
// ClientSecret) or a ready access token (AccessToken).
type Azure struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	AccessToken  string
}

// OCI is an OCI API signing key: the tenancy and user OCIDs, the key's fingerprint and
// the PEM private key (with its passphrase when encrypted).
type OCI struct {
	Tenancy     string
	User        string
	Fingerprint string
	PrivateKey  string
	Passphrase  string
}

// String describes the credential without any secret.
func (c Credential) String() string {
	id := ""
	switch {
	case c.AWS != nil:
		id = "access key " + redactID(c.AWS.AccessKeyID)
	case c.Azure != nil && c.Azure.AccessToken != "":
		id = "access token"
	case c.Azure != nil:
		id = "client " + c.Azure.ClientID
	case c.OCI != nil:
		id = "key " + c.OCI.Fingerprint
	}
	s := fmt.Sprintf("%s credential (%s) from %s", c.Provider, id, c.Source)
	if !c.Expires.IsZero() {
		s += ", expires " + c.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// GoString is String, so that %#v prints no secret either.
func (c Credential) GoString() string { return c.String() }

// LogValue is String, for slog.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String hides the secret key.
func (a AWS) String() string { return "AWS{" + redactID(a.AccessKeyID) + "}" }

// GoString hides the secret key.
func (a AWS) GoString() string { return a.String() }

// String hides the secret and token.
func (a Azure) String() string { return "Azure{client " + a.ClientID + "}" }

// GoString hides the secret and token.
func (a Azure) GoString() string { return a.String() }

// String hides the private key.
func (o OCI) String() string { return "OCI{key " + o.Fingerprint + "}" }

// GoString hides the private key.
func (o OCI) GoString() string { return o.String() }

// redactID keeps the first four characters of an access key id (the key type, AKIA or
// ASIA), which is enough to tell keys apart in a message and not enough to use one.
func redactID(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return id[:4] + "****"
}

// Source yields credentials.
type Source interface {
	// Credential returns a credential, or an error that names where it looked and the
	// fix, and never contains a secret.
	Credential(ctx context.Context) (Credential, error)
}

// ErrInvalid marks a credential that was found but is unusable (missing field, not
// JSON, wrong provider).
var ErrInvalid = errors.New("invalid credential")

// awsJSON is the AWS credential_process output (and the IMDS role document, which names
// the token Token).
type awsJSON struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	SessionToken    string `json:"SessionToken"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
}

// azureJSON is client credentials or an access token (az account get-access-token
// prints accessToken, expiresOn and expires_on).
type azureJSON struct {
	TenantID     string          `json:"tenantId"`
	ClientID     string          `json:"clientId"`
	ClientSecret string          `json:"clientSecret"`
	AccessToken  string          `json:"accessToken"`
	ExpiresOn    string          `json:"expiresOn"`
	ExpiresOnNum json.RawMessage `json:"expires_on"`
}

// ociJSON is an API signing key.
type ociJSON struct {
	Tenancy     string `json:"tenancy"`
	User        string `json:"user"`
	Fingerprint string `json:"fingerprint"`
	PrivateKey  string `json:"privateKey"`
	Passphrase  string `json:"passphrase"`
}

// Parse reads the JSON credential of provider from data; from names the origin in
// errors ("command ...", "file ..."). Errors never quote data.
func Parse(provider string, data []byte, from string) (Credential, error) {
	c := Credential{Provider: provider, Source: from}
	decode := func(v any) error {
		if err := json.Unmarshal(data, v); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("%w: %s: output is not JSON (syntax error at byte %d); it must print one JSON object, see docs/providers.md",
					ErrInvalid, from, se.Offset)
			}
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return fmt.Errorf("%w: %s: field %s has the wrong JSON type (want %s)", ErrInvalid, from, te.Field, te.Type)
			}
			return fmt.Errorf("%w: %s: output is not one JSON object; see docs/providers.md", ErrInvalid, from)
		}
		return nil
	}
	missing := func(fields ...string) error {
		return fmt.Errorf("%w: %s: %s credential lacks %s", ErrInvalid, from, provider, strings.Join(fields, ", "))
	}
	switch provider {
	case ProviderAWS:
		var j awsJSON
		if err := decode(&j); err != nil {
			return c, err
		}
		if j.Version != 0 && j.Version != 1 {
			return c, fmt.Errorf("%w: %s: AWS credential Version %d; only Version 1 is known", ErrInvalid, from, j.Version)
		}
		var miss []string
		if j.AccessKeyID == "" {
			miss = append(miss, "AccessKeyId")
		}
		if j.SecretAccessKey == "" {
			miss = append(miss, "SecretAccessKey")
		}
		if miss != nil {
			return c, missing(miss...)
		}
		if j.SessionToken == "" {
			j.SessionToken = j.Token
		}
		c.AWS = &AWS{AccessKeyID: j.AccessKeyID, SecretAccessKey: j.SecretAccessKey, SessionToken: j.SessionToken}
		if j.Expiration != "" {
			t, err := time.Parse(time.RFC3339, j.Expiration)
			if err != nil {
				return c, fmt.Errorf("%w: %s: Expiration is not an RFC 3339 time", ErrInvalid, from)
			}
			c.Expires = t
		}
	case ProviderAzure:
		var j azureJSON
		if err := decode(&j); err != nil {
			return c, err
		}
		switch {
		case j.AccessToken != "":
			c.Azure = &Azure{AccessToken: j.AccessToken, TenantID: j.TenantID, ClientID: j.ClientID}
			exp, err := azureExpiry(j)
			if err != nil {
				return c, fmt.Errorf("%w: %s: %v", ErrInvalid, from, err)
			}
			c.Expires = exp
		default:
			var miss []string
			for _, f := range []struct{ name, v string }{{"tenantId", j.TenantID}, {"clientId", j.ClientID}, {"clientSecret", j.ClientSecret}} {
				if f.v == "" {
					miss = append(miss, f.name)
				}
			}
			if miss != nil {
				return c, fmt.Errorf("%w: %s: azure credential lacks %s (or give accessToken)", ErrInvalid, from, strings.Join(miss, ", "))
			}
			c.Azure = &Azure{TenantID: j.TenantID, ClientID: j.ClientID, ClientSecret: j.ClientSecret}
		}
	case ProviderOCI:
		var j ociJSON
		if err := decode(&j); err != nil {
			return c, err
		}
		var miss []string
		for _, f := range []struct{ name, v string }{{"tenancy", j.Tenancy}, {"user", j.User}, {"fingerprint", j.Fingerprint}, {"privateKey", j.PrivateKey}} {
			if f.v == "" {
				miss = append(miss, f.name)
			}
		}
		if miss != nil {
			return c, missing(miss...)
		}
		if !strings.Contains(j.PrivateKey, "-----BEGIN") {
			return c, fmt.Errorf("%w: %s: oci privateKey is not a PEM block (it must start with -----BEGIN)", ErrInvalid, from)
		}
		c.OCI = &OCI{Tenancy: j.Tenancy, User: j.User, Fingerprint: j.Fingerprint, PrivateKey: j.PrivateKey, Passphrase: j.Passphrase}
	default:
		return c, fmt.Errorf("%w: %s: unknown provider %q; want aws, azure or oci", ErrInvalid, from, provider)
	}
	return c, nil
}

// azureExpiry reads expiresOn (RFC 3339, or the az CLI's "2006-01-02 15:04:05.000000"
// local time) or expires_on (Unix seconds, number or string).
func azureExpiry(j azureJSON) (time.Time, error) {
	if len(j.ExpiresOnNum) > 0 {
		var n json.Number
		s := strings.Trim(string(j.ExpiresOnNum), `"`)
		n = json.Number(s)
		sec, err := n.Int64()
		if err != nil {
			return time.Time{}, errors.New("expires_on is not Unix seconds")
		}
		return time.Unix(sec, 0), nil
	}
	if j.ExpiresOn == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999"} {
		if t, err := time.ParseInLocation(layout, j.ExpiresOn, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("expiresOn is neither RFC 3339 nor \"2006-01-02 15:04:05.000000\"")
}
