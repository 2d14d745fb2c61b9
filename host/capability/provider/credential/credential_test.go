package credential

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Secrets used by the tests: every error and every printed credential is checked for
// them.
const (
	awsSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
	awsToken    = "FQoGZXIvYXdzSESSIONTOKEN"
	azureSecret = "azure-client-secret-value-42"
	azureToken  = "eyJ0eXAiOiJKV1QiAZURETOKEN"
	ociKey      = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAOCIPRIVATEKEYBYTES\n-----END RSA PRIVATE KEY-----\n"
)

var secrets = []string{awsSecret, awsToken, azureSecret, azureToken, "OCIPRIVATEKEYBYTES"}

// noSecret fails when s contains any test secret.
func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret: %q", what, s)
		}
	}
}

const awsJSONDoc = `{"Version": 1, "AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "` + awsSecret + `", "SessionToken": "` + awsToken + `", "Expiration": "2030-01-02T03:04:05Z"}`

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		doc      string
		wantErr  string
		check    func(t *testing.T, c Credential)
	}{
		{name: "aws credential_process", provider: ProviderAWS, doc: awsJSONDoc, check: func(t *testing.T, c Credential) {
			if c.AWS == nil || c.AWS.AccessKeyID != "AKIAEXAMPLE" || c.AWS.SecretAccessKey != awsSecret || c.AWS.SessionToken != awsToken {
				t.Errorf("aws = %#v", c.AWS)
			}
			if !c.Expires.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("expires = %v", c.Expires)
			}
		}},
		{name: "aws imds Token field", provider: ProviderAWS, doc: `{"AccessKeyId":"ASIAX","SecretAccessKey":"` + awsSecret + `","Token":"` + awsToken + `"}`,
			check: func(t *testing.T, c Credential) {
				if c.AWS.SessionToken != awsToken {
					t.Errorf("session token not taken from Token")
				}
			}},
		{name: "aws missing secret", provider: ProviderAWS, doc: `{"AccessKeyId":"AKIAX"}`, wantErr: "lacks SecretAccessKey"},
		{name: "aws wrong version", provider: ProviderAWS, doc: `{"Version":2,"AccessKeyId":"AKIAX","SecretAccessKey":"` + awsSecret + `"}`, wantErr: "only Version 1"},
		{name: "aws bad expiration", provider: ProviderAWS, doc: `{"AccessKeyId":"AKIAX","SecretAccessKey":"` + awsSecret + `","Expiration":"soon"}`, wantErr: "Expiration is not an RFC 3339"},
		{name: "not json quotes no byte", provider: ProviderAWS, doc: `AccessKeyId=AKIAX SecretAccessKey=` + awsSecret, wantErr: "output is not JSON (syntax error at byte 1)"},
		{name: "wrong type names field", provider: ProviderAWS, doc: `{"AccessKeyId":"AKIAX","SecretAccessKey":5}`, wantErr: "field SecretAccessKey has the wrong JSON type"},
		{name: "azure client credentials", provider: ProviderAzure, doc: `{"tenantId":"t1","clientId":"c1","clientSecret":"` + azureSecret + `"}`, check: func(t *testing.T, c Credential) {
			if c.Azure == nil || c.Azure.ClientSecret != azureSecret || c.Azure.TenantID != "t1" {
				t.Errorf("azure = %#v", c.Azure)
			}
		}},
		{name: "azure access token", provider: ProviderAzure, doc: `{"accessToken":"` + azureToken + `","expires_on":1900000000}`, check: func(t *testing.T, c Credential) {
			if c.Azure.AccessToken != azureToken || c.Expires.Unix() != 1900000000 {
				t.Errorf("azure = %#v expires %v", c.Azure, c.Expires)
			}
		}},
		{name: "azure missing secret", provider: ProviderAzure, doc: `{"tenantId":"t1","clientId":"c1"}`, wantErr: "lacks clientSecret (or give accessToken)"},
		{name: "oci key", provider: ProviderOCI, doc: fmt.Sprintf(`{"tenancy":"ocid1.tenancy.oc1..a","user":"ocid1.user.oc1..b","fingerprint":"aa:bb","privateKey":%q}`, ociKey),
			check: func(t *testing.T, c Credential) {
				if c.OCI == nil || c.OCI.PrivateKey != ociKey || c.OCI.Fingerprint != "aa:bb" {
					t.Errorf("oci = %#v", c.OCI)
				}
			}},
		{name: "oci key not pem", provider: ProviderOCI, doc: `{"tenancy":"a","user":"b","fingerprint":"c","privateKey":"OCIPRIVATEKEYBYTES"}`, wantErr: "not a PEM block"},
		{name: "unknown provider", provider: "gcp", doc: `{}`, wantErr: `unknown provider "gcp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.provider, []byte(tt.doc), "test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				noSecret(t, "error", err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				noSecret(t, verb, fmt.Sprintf(verb, c))
				noSecret(t, verb+" of pointer parts", fmt.Sprintf(verb, []any{c.AWS, c.Azure, c.OCI}))
			}
		})
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	docFile := filepath.Join(dir, "doc.json")
	if err := os.WriteFile(docFile, []byte(awsJSONDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cmd     Command
		timeout time.Duration
		wantErr string
	}{
		// The v1alpha1 form: one string, run by sh -c (pipes and quotes work).
		{name: "shell string", cmd: Command{Shell: "cat '" + docFile + "' | cat"}},
		{name: "argv list", cmd: Command{Argv: []string{"/bin/cat", docFile}}},
		{name: "exit status with stderr", cmd: Command{Shell: "echo 'token expired, run aws sso login' >&2; exit 3"}, wantErr: "failed (exit status 3): token expired, run aws sso login"},
		{name: "bad credential does not leak stdout", cmd: Command{Shell: "echo 'SecretAccessKey=" + awsSecret + "'"}, wantErr: "output is not JSON"},
		{name: "missing field does not leak", cmd: Command{Shell: `echo '{"SecretAccessKey":"` + awsSecret + `"}'`}, wantErr: "lacks AccessKeyId"},
		{name: "timeout kills the shell's children", cmd: Command{Shell: "sleep 60; echo {}"}, timeout: 300 * time.Millisecond, wantErr: "did not finish within 300ms"},
		{name: "output bounded", cmd: Command{Shell: "head -c 100000 /dev/zero"}, wantErr: "printed more than 65536 bytes"},
		{name: "no such program", cmd: Command{Argv: []string{filepath.Join(dir, "missing")}}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(Config{Provider: ProviderAWS, Mode: ModeExternalCommand, Command: tt.cmd, Timeout: tt.timeout}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c, err := src.Credential(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				noSecret(t, "error", err.Error())
				if took := time.Since(start); took > 10*time.Second {
					t.Errorf("took %v: the timeout did not stop the command", took)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AWS.SecretAccessKey != awsSecret {
				t.Errorf("credential = %v", c)
			}
		})
	}
}

func TestCommandUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    Command
		wantErr bool
	}{
		{name: "string", json: `"aws configure export-credentials --format process"`, want: Command{Shell: "aws configure export-credentials --format process"}},
		{name: "list", json: `["/usr/bin/vault-cred","aws"]`, want: Command{Argv: []string{"/usr/bin/vault-cred", "aws"}}},
		{name: "number", json: `5`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Command
			err := c.UnmarshalJSON([]byte(tt.json))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tt.wantErr && (c.Shell != tt.want.Shell || strings.Join(c.Argv, "|") != strings.Join(tt.want.Argv, "|")) {
				t.Errorf("got %#v, want %#v", c, tt.want)
			}
		})
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	me := os.Geteuid()
	other := me + 1
	tests := []struct {
		name    string
		path    string
		uid     int
		wantErr []string
	}{
		{name: "0600 ok", path: write("ok.json", 0o600, awsJSONDoc), uid: me},
		{name: "0400 ok", path: write("ro.json", 0o400, awsJSONDoc), uid: me},
		{name: "group readable", path: write("open.json", 0o640, awsJSONDoc), uid: me, wantErr: []string{"open.json has mode 0640", "chmod 600 " + filepath.Join(dir, "open.json")}},
		{name: "world readable", path: write("world.json", 0o644, awsJSONDoc), uid: me, wantErr: []string{"chmod 600"}},
		{name: "other owner", path: write("owned.json", 0o600, awsJSONDoc), uid: other, wantErr: []string{fmt.Sprintf("not by routerd's uid %d", other), "chown"}},
		{name: "missing", path: filepath.Join(dir, "none.json"), uid: me, wantErr: []string{"none.json", "no such file"}},
		{name: "not json", path: write("bad.json", 0o600, `{"aws_secret_access_key": "`+awsSecret), uid: me, wantErr: []string{"credentials file " + filepath.Join(dir, "bad.json"), "not JSON"}},
		{name: "aws shared credentials ini", path: write("credentials", 0o600, "# comment\n[other]\naws_access_key_id = AKIAOTHER\n\n[default]\naws_access_key_id = AKIAINI\naws_secret_access_key = "+awsSecret+"\n"), uid: me},
		{name: "ini profile missing", path: write("cred-noprof", 0o600, "[other]\naws_access_key_id = AKIAX\naws_secret_access_key = "+awsSecret+"\n"), uid: me, wantErr: []string{"no [default] section", "auth.awsProfile"}},
		{name: "ini key missing", path: write("cred-nokey", 0o600, "[default]\naws_secret_access_key = "+awsSecret+"\n"), uid: me, wantErr: []string{"section [default] lacks aws_access_key_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := tt.uid
			src, err := New(Config{Provider: ProviderAWS, Mode: ModeFile, File: tt.path}, Options{UID: &uid})
			if err != nil {
				t.Fatal(err)
			}
			c, err := src.Credential(context.Background())
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want %q", err, w)
					}
				}
				noSecret(t, "error", err.Error())
				return
			}
			if err != nil || c.AWS.SecretAccessKey != awsSecret {
				t.Fatalf("credential %v, %v", c, err)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	vars := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": awsSecret,
		"MY_SECRET":    "other-secret",
		"AZ_TENANT_ID": "t", "AZ_CLIENT_ID": "c", "AZ_CLIENT_SECRET": azureSecret,
		"PARTIAL_TENANCY": "x",
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	tests := []struct {
		name    string
		cfg     Config
		want    string // the secret expected
		wantErr string
	}{
		{name: "aws prefix", cfg: Config{Provider: ProviderAWS, EnvPrefix: "AWS_"}, want: awsSecret},
		{name: "aws override", cfg: Config{Provider: ProviderAWS, EnvPrefix: "AWS_", Env: map[string]string{"SecretAccessKey": "MY_SECRET"}}, want: "other-secret"},
		{name: "azure", cfg: Config{Provider: ProviderAzure, EnvPrefix: "AZ_"}, want: azureSecret},
		{name: "oci partial names variables", cfg: Config{Provider: ProviderOCI, EnvPrefix: "PARTIAL_"},
			wantErr: "lacks user, fingerprint, privateKey (variables read: PARTIAL_FINGERPRINT, PARTIAL_PASSPHRASE, PARTIAL_PRIVATE_KEY, PARTIAL_TENANCY, PARTIAL_USER)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Mode = ModeEnv
			src, err := New(tt.cfg, Options{LookupEnv: lookup})
			if err != nil {
				t.Fatal(err)
			}
			c, err := src.Credential(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if c.AWS != nil {
				got = c.AWS.SecretAccessKey
			} else if c.Azure != nil {
				got = c.Azure.ClientSecret
			}
			if got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
		})
	}
}

// imds is a fake instance metadata service: AWS IMDSv2 and Azure managed identity.
func imds(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "imds-token")
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if r.Header.Get("X-aws-ec2-metadata-token") != "imds-token" {
				http.Error(w, "", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/", authed(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "router-role\n")
	}))
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/router-role", authed(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":%q,"Token":%q,"Expiration":"2030-01-01T00:00:00Z"}`, awsSecret, awsToken)
	}))
	mux.HandleFunc("GET /metadata/identity/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Metadata") != "true" || r.URL.Query().Get("resource") != AzureManagementResource {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"expires_on":"1900000000","client_id":"mi-client"}`, azureToken)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestInstance(t *testing.T) {
	srv, _ := imds(t)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusNotFound) }))
	t.Cleanup(dead.Close)
	tests := []struct {
		name     string
		provider string
		endpoint string
		wantErr  string
		check    func(t *testing.T, c Credential)
	}{
		{name: "aws imdsv2", provider: ProviderAWS, endpoint: srv.URL, check: func(t *testing.T, c Credential) {
			if c.AWS.AccessKeyID != "ASIAIMDS" || c.AWS.SessionToken != awsToken || c.Expires.Year() != 2030 {
				t.Errorf("aws = %v", c)
			}
		}},
		{name: "azure managed identity", provider: ProviderAzure, endpoint: srv.URL + "/", check: func(t *testing.T, c Credential) {
			if c.Azure.AccessToken != azureToken || c.Expires.Unix() != 1900000000 {
				t.Errorf("azure = %v", c)
			}
		}},
		{name: "not a cloud instance", provider: ProviderAWS, endpoint: dead.URL, wantErr: "answered 404 Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(Config{Provider: tt.provider, Mode: ModeInstance, Endpoint: tt.endpoint}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := src.Credential(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "unknown mode", cfg: Config{Provider: ProviderAWS, Mode: "vault"}, wantErr: `auth.mode "vault": want external-command, file, env or instance`},
		{name: "command missing", cfg: Config{Provider: ProviderAWS, Mode: ModeExternalCommand}, wantErr: "needs auth.command"},
		{name: "file missing", cfg: Config{Provider: ProviderAWS, Mode: ModeFile}, wantErr: "needs a file path"},
		{name: "oci instance", cfg: Config{Provider: ProviderOCI, Mode: ModeInstance}, wantErr: "not supported for oci"},
		{name: "gcp", cfg: Config{Provider: "gcp", Mode: ModeEnv}, wantErr: `provider "gcp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, Options{}); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// countingSource returns a credential expiring at exp, counting calls; fail makes it
// fail.
type countingSource struct {
	calls int
	exp   time.Time
	fail  bool
}

func (s *countingSource) Credential(context.Context) (Credential, error) {
	s.calls++
	if s.fail {
		return Credential{}, errors.New("source down")
	}
	return Credential{Provider: ProviderAWS, AWS: &AWS{AccessKeyID: fmt.Sprint("AKIA", s.calls)}, Expires: s.exp}, nil
}

func TestCached(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	tests := []struct {
		name      string
		exp       time.Time
		steps     []time.Duration // advance the clock, then call
		wantCalls []int           // source calls after each step
	}{
		{name: "reused until refresh-before-expiry", exp: t0.Add(time.Hour),
			steps: []time.Duration{0, 30 * time.Minute, 24 * time.Minute, time.Minute}, wantCalls: []int{1, 1, 1, 2}},
		{name: "no expiry uses ttl", steps: []time.Duration{0, 14 * time.Minute, time.Minute}, wantCalls: []int{1, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = t0
			src := &countingSource{exp: tt.exp}
			c := &Cached{Source: src, Now: clock}
			for i, d := range tt.steps {
				now = now.Add(d)
				if _, err := c.Credential(context.Background()); err != nil {
					t.Fatal(err)
				}
				if src.calls != tt.wantCalls[i] {
					t.Errorf("step %d: %d source calls, want %d", i, src.calls, tt.wantCalls[i])
				}
			}
		})
	}
	t.Run("concurrent callers share one fetch", func(t *testing.T) {
		now = t0
		src := &countingSource{exp: t0.Add(time.Hour)}
		c := &Cached{Source: src, Now: clock}
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := c.Credential(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if src.calls != 1 {
			t.Errorf("%d source calls for 16 concurrent callers", src.calls)
		}
	})
	t.Run("errors not cached, invalidate refetches", func(t *testing.T) {
		now = t0
		src := &countingSource{fail: true}
		c := &Cached{Source: src, Now: clock}
		for range 2 {
			if _, err := c.Credential(context.Background()); err == nil {
				t.Fatal("no error")
			}
		}
		src.fail = false
		if _, err := c.Credential(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.Invalidate()
		if _, err := c.Credential(context.Background()); err != nil || src.calls != 4 {
			t.Errorf("calls = %d, err %v", src.calls, err)
		}
	})
}

func TestFileAWSProfile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "credentials")
	ini := "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = default-secret\n\n[profile router]\naws_access_key_id = AKIAROUTER\naws_secret_access_key = " + awsSecret + "\naws_session_token = " + awsToken + "\n"
	if err := os.WriteFile(p, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := New(Config{Provider: ProviderAWS, Mode: ModeFile, File: p, AWSProfile: "router"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.Credential(context.Background())
	if err != nil || c.AWS.AccessKeyID != "AKIAROUTER" || c.AWS.SecretAccessKey != awsSecret || c.AWS.SessionToken != awsToken {
		t.Fatalf("%v, %v", c, err)
	}
}
