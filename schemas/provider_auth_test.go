package schemas

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestProviderAuth checks the CloudProviderProfile auth modes: routerd v1alpha1's
// external-command with the command as a string, the list form, and one field per mode.
func TestProviderAuth(t *testing.T) {
	profile := func(auth string) string {
		return "apiVersion: hybrid.routerd.net/v1alpha1\nkind: CloudProviderProfile\nmetadata: {name: p}\nspec:\n  provider: aws\n  auth: " + auth + "\n"
	}
	tests := []struct {
		name    string
		doc     string
		want    ProviderAuth // when wantErr is ""
		wantErr string
	}{
		{name: "v1alpha1 external-command string", doc: profile(`{mode: external-command, command: "/usr/local/bin/routerd-cred --provider aws"}`),
			want: ProviderAuth{Mode: "external-command", Command: &CommandLine{Line: "/usr/local/bin/routerd-cred --provider aws"}}},
		{name: "external-command list", doc: profile(`{mode: external-command, command: [/usr/local/bin/routerd-cred, --provider, aws]}`),
			want: ProviderAuth{Mode: "external-command", Command: &CommandLine{Argv: []string{"/usr/local/bin/routerd-cred", "--provider", "aws"}}}},
		{name: "mode defaults to external-command with a command", doc: profile(`{command: /bin/cred}`),
			want: ProviderAuth{Mode: "external-command", Command: &CommandLine{Line: "/bin/cred"}}},
		{name: "mode defaults to instance", doc: profile(`{}`), want: ProviderAuth{Mode: "instance"}},
		{name: "file", doc: profile(`{mode: file, file: /etc/routerd/aws-credentials}`), want: ProviderAuth{Mode: "file", File: "/etc/routerd/aws-credentials"}},
		{name: "env", doc: profile(`{mode: env, env: AWS_}`), want: ProviderAuth{Mode: "env", Env: "AWS_"}},
		{name: "external-command without command", doc: profile(`{mode: external-command}`), wantErr: "spec.auth.command: missing: mode external-command runs this command"},
		{name: "empty command", doc: profile(`{mode: external-command, command: "  "}`), wantErr: "spec.auth.command: empty: want the program and its arguments"},
		{name: "empty list", doc: profile(`{mode: external-command, command: []}`), wantErr: "spec.auth.command: empty list"},
		{name: "empty argument", doc: profile(`{mode: external-command, command: [/bin/cred, ""]}`), wantErr: "spec.auth.command[1]: \"\" is not a valid argument"},
		{name: "command of another type", doc: profile(`{mode: external-command, command: {run: x}}`), wantErr: "spec.auth.command: want a command: a string"},
		{name: "file without file", doc: profile(`{mode: file}`), wantErr: "spec.auth.file: must not be empty; want a file path"},
		{name: "env prefix", doc: profile(`{mode: env, env: "AWS-"}`), wantErr: "spec.auth.env: \"AWS-\" is not valid: want an environment variable prefix like AWS_"},
		{name: "field of another mode", doc: profile(`{mode: file, file: /f, command: /bin/cred}`), wantErr: "spec.auth.command: not used by mode file"},
		{name: "instance with a file", doc: profile(`{mode: instance, file: /f}`), wantErr: "spec.auth.file: not used by mode instance"},
		{name: "unknown mode", doc: profile(`{mode: vault}`), wantErr: "spec.auth.mode: want one of external-command, file, env, instance"},
		{name: "no inline secrets", doc: profile(`{mode: env, env: AWS_, secretAccessKey: abc}`), wantErr: "spec.auth.secretAccessKey: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Decode("p.yaml", []byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.CloudProviderProfiles()[0]
			if !reflect.DeepEqual(p.Spec.Auth, tt.want) {
				t.Fatalf("auth = %+v, want %+v", p.Spec.Auth, tt.want)
			}
			// JSON keeps the form the command was written in and decodes back the same.
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeObject(b)
			if err != nil {
				t.Fatalf("DecodeObject(%s): %v", b, err)
			}
			if !reflect.DeepEqual(back.(*CloudProviderProfile).Spec.Auth, tt.want) {
				t.Fatalf("after JSON %s: auth = %+v", b, back.(*CloudProviderProfile).Spec.Auth)
			}
		})
	}
}

// TestProviderAuthV1Alpha1File loads a CloudProviderProfile as routerd v1alpha1 writes it
// (kind: Router form, external-command, an accountID field routerd v1alpha1 ignores).
func TestProviderAuthV1Alpha1File(t *testing.T) {
	cfg, err := LoadOptions{SkipUnknownKinds: true}.Load("../testdata/config/v1alpha1/router.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Get("CloudProviderProfile", "aws-main").(*CloudProviderProfile)
	if !ok {
		t.Fatalf("no CloudProviderProfile aws-main in %v", cfg)
	}
	if p.Spec.Auth.Mode != ProviderAuthExternalCommand || p.Spec.Auth.Command == nil || p.Spec.Auth.Command.Line != "/usr/local/libexec/routerd/aws-credential --profile lab" {
		t.Fatalf("auth = %+v", p.Spec.Auth)
	}
	found := false
	for _, w := range cfg.Warnings {
		found = found || (w.Kind == "CloudProviderProfile" && w.Path == "spec.accountID" && w.Code == WarnIgnoredField)
	}
	if !found {
		t.Fatalf("no ignored-field warning for spec.accountID: %+v", cfg.Warnings)
	}
}
