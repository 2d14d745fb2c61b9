package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Defaults of Config.
const (
	// DefaultCommandTimeout bounds an external command.
	DefaultCommandTimeout = 10 * time.Second
	// DefaultMaxOutput bounds what a command may print (and a credentials file's size).
	DefaultMaxOutput = 64 << 10
	// DefaultInstanceTimeout bounds one instance metadata request.
	DefaultInstanceTimeout = 2 * time.Second
	// DefaultInstanceEndpoint is the link-local metadata address of AWS and Azure.
	DefaultInstanceEndpoint = "http://169.254.169.254"
	// AzureManagementResource is the resource an Azure managed identity token is for.
	AzureManagementResource = "https://management.azure.com/"
)

// Command is the command of mode external-command. In YAML/JSON it is either a string,
// run with "sh -c" exactly as routerd v1alpha1 runs it, or a list, run as argv without
// a shell.
type Command struct {
	// Shell is the string form (run with sh -c); empty when Argv is used.
	Shell string
	// Argv is the list form.
	Argv []string
}

// UnmarshalJSON accepts a string or a list of strings.
func (c *Command) UnmarshalJSON(b []byte) error {
	*c = Command{}
	if err := json.Unmarshal(b, &c.Shell); err == nil {
		return nil
	}
	if err := json.Unmarshal(b, &c.Argv); err != nil {
		return errors.New("command: want a string (run with sh -c) or a list of strings (argv)")
	}
	return nil
}

// MarshalJSON writes the form it was given.
func (c Command) MarshalJSON() ([]byte, error) {
	if c.Argv != nil {
		return json.Marshal(c.Argv)
	}
	return json.Marshal(c.Shell)
}

// IsZero reports an empty command.
func (c Command) IsZero() bool { return c.Shell == "" && len(c.Argv) == 0 }

// String is the command for messages (the shell string or the argv joined by spaces).
func (c Command) String() string {
	if c.Shell != "" {
		return c.Shell
	}
	return strings.Join(c.Argv, " ")
}

// Program is the command's first word, for messages (its arguments are never quoted:
// they may carry tokens).
func (c Command) Program() string {
	if len(c.Argv) > 0 {
		return c.Argv[0]
	}
	if f := strings.Fields(c.Shell); len(f) > 0 {
		return f[0]
	}
	return ""
}

// Config says where one profile's credential comes from. The host maps a
// CloudProviderProfile's spec.auth (and spec.provider) onto it.
type Config struct {
	// Provider is aws, azure or oci.
	Provider string `json:"provider"`
	// Mode is external-command, file, env or instance.
	Mode string `json:"mode"`
	// Command is run for mode external-command.
	Command Command `json:"command,omitzero"`
	// Timeout bounds the command or one metadata request (defaults above).
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxOutput bounds the command's stdout and the file's size (default
	// DefaultMaxOutput).
	MaxOutput int `json:"maxOutput,omitempty"`
	// File is the credentials file for mode file: the provider's JSON, or for aws also
	// the AWS shared credentials format (INI, see AWSProfile).
	File string `json:"file,omitempty"`
	// AWSProfile is the section of an AWS shared credentials file (default "default").
	AWSProfile string `json:"awsProfile,omitempty"`
	// EnvPrefix names the variables of mode env: PREFIX + the provider's names (see
	// EnvNames).
	EnvPrefix string `json:"envPrefix,omitempty"`
	// Env overrides single variable names of mode env: field → variable, for example
	// {"SecretAccessKey": "MY_SECRET"}.
	Env map[string]string `json:"env,omitempty"`
	// Endpoint is the instance metadata base URL for mode instance (default
	// DefaultInstanceEndpoint).
	Endpoint string `json:"endpoint,omitempty"`
	// Resource is the Azure resource a managed identity token is for (default
	// AzureManagementResource).
	Resource string `json:"resource,omitempty"`
}

// Options are what a Source needs from its host.
type Options struct {
	// HTTPClient serves mode instance (default: a client without proxy).
	HTTPClient *http.Client
	// LookupEnv reads the environment for mode env (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Environ is the command's environment (default os.Environ()).
	Environ []string
	// UID is the owner a credentials file must have (default os.Geteuid()).
	UID *int
}

// New returns the Source cfg describes.
//
// # Errors
//
// A config error naming the field and the fix (unknown mode or provider, missing
// command or file).
func New(cfg Config, opts Options) (Source, error) {
	switch cfg.Provider {
	case ProviderAWS, ProviderAzure, ProviderOCI:
	default:
		return nil, fmt.Errorf("credential: provider %q: want aws, azure or oci", cfg.Provider)
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.UID == nil {
		uid := os.Geteuid()
		opts.UID = &uid
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	switch cfg.Mode {
	case ModeExternalCommand:
		if cfg.Command.IsZero() {
			return nil, errors.New("credential: auth.mode external-command needs auth.command (a string run with sh -c, or a list)")
		}
		if cfg.Timeout <= 0 {
			cfg.Timeout = DefaultCommandTimeout
		}
		return &commandSource{cfg: cfg, env: opts.Environ}, nil
	case ModeFile:
		if cfg.File == "" {
			return nil, errors.New("credential: auth.mode file needs a file path (auth.credentialsFile)")
		}
		return &fileSource{cfg: cfg, uid: *opts.UID}, nil
	case ModeEnv:
		return &envSource{cfg: cfg, lookup: opts.LookupEnv}, nil
	case ModeInstance:
		if cfg.Provider == ProviderOCI {
			return nil, errors.New("credential: auth.mode instance is not supported for oci yet (instance principals); use external-command, file or env")
		}
		if cfg.Endpoint == "" {
			cfg.Endpoint = DefaultInstanceEndpoint
		}
		if _, err := url.Parse(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("credential: instance endpoint %q is not a URL", cfg.Endpoint)
		}
		if cfg.Timeout <= 0 {
			cfg.Timeout = DefaultInstanceTimeout
		}
		if cfg.Resource == "" {
			cfg.Resource = AzureManagementResource
		}
		return &instanceSource{cfg: cfg, client: opts.HTTPClient}, nil
	default:
		return nil, fmt.Errorf("credential: auth.mode %q: want external-command, file, env or instance", cfg.Mode)
	}
}

// commandSource runs a command.
type commandSource struct {
	cfg Config
	env []string
}

// limitBuffer keeps at most max bytes and remembers that more came.
type limitBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Credential runs the command and parses its stdout.
func (s *commandSource) Credential(ctx context.Context) (Credential, error) {
	// Messages name the program only: arguments may carry tokens.
	from := fmt.Sprintf("auth.command (program %s)", s.cfg.Command.Program())
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var cmd *exec.Cmd
	if s.cfg.Command.Shell != "" {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", s.cfg.Command.Shell)
	} else {
		cmd = exec.CommandContext(ctx, s.cfg.Command.Argv[0], s.cfg.Command.Argv[1:]...)
	}
	if s.env != nil {
		cmd.Env = s.env
	}
	// Own process group, so that a timeout kills what a shell started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	stdout := &limitBuffer{max: s.cfg.MaxOutput}
	stderr := &limitBuffer{max: 512}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return Credential{}, fmt.Errorf("credential: %s did not finish within %s; make it faster or raise the timeout", from, s.cfg.Timeout)
	case err != nil:
		// stderr is the command's own message; stdout (where a credential would be) is
		// never quoted.
		msg := strings.TrimSpace(stderr.buf.String())
		if msg != "" {
			msg = ": " + msg
		}
		return Credential{}, fmt.Errorf("credential: %s failed (%v)%s", from, err, msg)
	case stdout.overflow:
		return Credential{}, fmt.Errorf("credential: %s printed more than %d bytes; it must print one JSON credential", from, s.cfg.MaxOutput)
	}
	return Parse(s.cfg.Provider, stdout.buf.Bytes(), from)
}

// fileSource reads a credentials file.
type fileSource struct {
	cfg Config
	uid int
}

// Credential checks the file's mode and owner and parses it.
func (s *fileSource) Credential(ctx context.Context) (Credential, error) {
	from := "credentials file " + s.cfg.File
	f, err := os.Open(s.cfg.File)
	if err != nil {
		return Credential{}, fmt.Errorf("credential: %w", err)
	}
	defer f.Close()
	if err := CheckPrivateFile(f, s.uid); err != nil {
		return Credential{}, fmt.Errorf("credential: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(s.cfg.MaxOutput)+1))
	if err != nil {
		return Credential{}, fmt.Errorf("credential: read %s: %w", s.cfg.File, err)
	}
	if len(data) > s.cfg.MaxOutput {
		return Credential{}, fmt.Errorf("credential: %s is larger than %d bytes; it must hold one JSON credential", from, s.cfg.MaxOutput)
	}
	if s.cfg.Provider == ProviderAWS && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return parseAWSINI(data, s.cfg.AWSProfile, from)
	}
	return Parse(s.cfg.Provider, data, from)
}

// parseAWSINI reads one profile of an AWS shared credentials file (aws_access_key_id,
// aws_secret_access_key, aws_session_token). Errors name sections and keys, never values.
func parseAWSINI(data []byte, profile, from string) (Credential, error) {
	if profile == "" {
		profile = "default"
	}
	vals, found, section := map[string]string{}, false, ""
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(strings.TrimPrefix(line[1:len(line)-1], "profile "))
			found = found || section == profile
		case section == profile:
			if k, v, ok := strings.Cut(line, "="); ok {
				vals[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
	}
	if !found {
		return Credential{}, fmt.Errorf("%w: %s: no [%s] section; set auth.awsProfile or add the section", ErrInvalid, from, profile)
	}
	var miss []string
	for _, k := range []string{"aws_access_key_id", "aws_secret_access_key"} {
		if vals[k] == "" {
			miss = append(miss, k)
		}
	}
	if miss != nil {
		return Credential{}, fmt.Errorf("%w: %s: section [%s] lacks %s", ErrInvalid, from, profile, strings.Join(miss, ", "))
	}
	return Credential{Provider: ProviderAWS, Source: from, AWS: &AWS{AccessKeyID: vals["aws_access_key_id"],
		SecretAccessKey: vals["aws_secret_access_key"], SessionToken: vals["aws_session_token"]}}, nil
}

// CheckPrivateFile checks that an open file is a regular file of mode 0600 (or
// stricter) owned by uid. The error names the file and the fix.
func CheckPrivateFile(f *os.File, uid int) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o; a credentials file must be readable by its owner only: run chmod 600 %s", f.Name(), perm, f.Name())
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by routerd's uid %d: run chown %d %s", f.Name(), st.Uid, uid, uid, f.Name())
	}
	return nil
}

// EnvNames are the variable names of mode env, per provider, by credential field
// (after EnvPrefix; Config.Env overrides single names).
var EnvNames = map[string]map[string]string{
	ProviderAWS:   {"AccessKeyId": "ACCESS_KEY_ID", "SecretAccessKey": "SECRET_ACCESS_KEY", "SessionToken": "SESSION_TOKEN"},
	ProviderAzure: {"tenantId": "TENANT_ID", "clientId": "CLIENT_ID", "clientSecret": "CLIENT_SECRET"},
	ProviderOCI:   {"tenancy": "TENANCY", "user": "USER", "fingerprint": "FINGERPRINT", "privateKey": "PRIVATE_KEY", "passphrase": "PASSPHRASE"},
}

// envSource reads environment variables.
type envSource struct {
	cfg    Config
	lookup func(string) (string, bool)
}

// Credential assembles the provider's JSON from the variables and parses it, so the
// same checks apply as for a command or file.
func (s *envSource) Credential(ctx context.Context) (Credential, error) {
	doc := map[string]string{}
	var names []string
	for field, suffix := range EnvNames[s.cfg.Provider] {
		name := s.cfg.EnvPrefix + suffix
		if n, ok := s.cfg.Env[field]; ok {
			name = n
		}
		names = append(names, name)
		if v, ok := s.lookup(name); ok {
			doc[field] = v
		}
	}
	data, _ := json.Marshal(doc)
	c, err := Parse(s.cfg.Provider, data, "environment")
	if err != nil {
		return c, fmt.Errorf("%w (variables read: %s)", err, strings.Join(slices.Sorted(slices.Values(names)), ", "))
	}
	return c, nil
}

// instanceSource asks the instance metadata service.
type instanceSource struct {
	cfg    Config
	client *http.Client
}

// Credential fetches AWS role credentials (IMDSv2) or an Azure managed identity token.
func (s *instanceSource) Credential(ctx context.Context) (Credential, error) {
	base := strings.TrimRight(s.cfg.Endpoint, "/")
	switch s.cfg.Provider {
	case ProviderAWS:
		token, err := s.get(ctx, http.MethodPut, base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"})
		if err != nil {
			return Credential{}, err
		}
		hdr := map[string]string{"X-aws-ec2-metadata-token": string(token)}
		roles, err := s.get(ctx, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/", hdr)
		if err != nil {
			return Credential{}, err
		}
		role, _, _ := strings.Cut(strings.TrimSpace(string(roles)), "\n")
		if role == "" {
			return Credential{}, fmt.Errorf("credential: instance metadata at %s lists no IAM role; attach an instance profile to this instance", base)
		}
		doc, err := s.get(ctx, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/"+url.PathEscape(role), hdr)
		if err != nil {
			return Credential{}, err
		}
		return Parse(ProviderAWS, doc, "instance metadata role "+role)
	case ProviderAzure:
		q := url.Values{"api-version": {"2018-02-01"}, "resource": {s.cfg.Resource}}
		doc, err := s.get(ctx, http.MethodGet, base+"/metadata/identity/oauth2/token?"+q.Encode(), map[string]string{"Metadata": "true"})
		if err != nil {
			return Credential{}, err
		}
		var j struct {
			AccessToken string          `json:"access_token"`
			ExpiresOn   json.RawMessage `json:"expires_on"`
			ClientID    string          `json:"client_id"`
		}
		if json.Unmarshal(doc, &j) != nil || j.AccessToken == "" {
			return Credential{}, fmt.Errorf("%w: instance metadata at %s: answer is not a managed identity token", ErrInvalid, base)
		}
		exp, err := azureExpiry(azureJSON{ExpiresOnNum: j.ExpiresOn})
		if err != nil {
			return Credential{}, fmt.Errorf("%w: instance metadata at %s: %v", ErrInvalid, base, err)
		}
		return Credential{Provider: ProviderAzure, Azure: &Azure{AccessToken: j.AccessToken, ClientID: j.ClientID},
			Expires: exp, Source: "managed identity"}, nil
	}
	return Credential{}, fmt.Errorf("credential: instance mode does not support provider %s", s.cfg.Provider)
}

// get does one bounded metadata request. Errors name the URL without the query.
func (s *instanceSource) get(ctx context.Context, method, u string, hdr map[string]string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("credential: instance metadata request: %w", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	where, _, _ := strings.Cut(u, "?")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("credential: instance metadata %s did not answer within %s; is this a cloud instance? otherwise use auth.mode file or external-command", where, s.cfg.Timeout)
		}
		return nil, fmt.Errorf("credential: instance metadata %s: %v", where, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.cfg.MaxOutput)+1))
	if err != nil {
		return nil, fmt.Errorf("credential: instance metadata %s: read: %w", where, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("credential: instance metadata %s answered %s", where, resp.Status)
	}
	if len(body) > s.cfg.MaxOutput {
		return nil, fmt.Errorf("credential: instance metadata %s answered more than %d bytes", where, s.cfg.MaxOutput)
	}
	return body, nil
}
