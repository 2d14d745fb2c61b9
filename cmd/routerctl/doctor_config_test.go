package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorConfig runs routerctl doctor config on config dirs written to a temp dir.
func TestDoctorConfig(t *testing.T) {
	const group = "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: sam}\nspec:\n  nodeName: router-a\n"
	tests := []struct {
		name   string
		config string
		want   int
		checks map[string]string // check name -> status
		detail string            // a detail line of some check
	}{
		{name: "valid", config: group + "  auth: {secretFile: /etc/routerd/sam.key}\n", want: exitOK,
			checks: map[string]string{"validate": checkPass, "group-auth": checkPass, "warnings": checkPass}},
		{name: "group without auth", config: group, want: exitFailed,
			checks: map[string]string{"validate": checkPass, "group-auth": checkFail, "warnings": checkPass},
			detail: "cfg.yaml:4: warning: EventGroup/sam: spec.auth: group sam has no auth: add spec.auth.secretFile"},
		{name: "invalid", config: group + "  auth: {secretFile: /s}\n  replayWindow: soon\n", want: exitFailed,
			checks: map[string]string{"validate": checkFail, "group-auth": checkPass, "warnings": checkPass},
			detail: `EventGroup/sam: spec.replayWindow: want a duration like 200ms, 30s, 5m or 1h30m, got "soon"`},
		{name: "invalid with a group without auth", config: group + "---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: AddressMobilityDomain\nmetadata: {name: lab}\nspec: {prefix: 10.0.0.1/8}\n", want: exitFailed,
			checks: map[string]string{"validate": checkFail, "group-auth": checkFail, "warnings": checkPass},
			detail: "group sam has no auth: add spec.auth.secretFile"},
		{name: "ignored field", config: "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec:\n  resources:\n  - apiVersion: hybrid.routerd.net/v1alpha1\n    kind: AddressMobilityDomain\n    metadata: {name: lab}\n    spec: {prefix: 10.0.0.0/8, colour: blue}\n", want: exitOK,
			checks: map[string]string{"validate": checkPass, "group-auth": checkPass, "warnings": checkPass},
			detail: "spec.colour: unknown field ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "cfg.yaml"), []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
			if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := runCLI(t, "doctor", "config", "--config-dir", dir, "--settings", settingsFile, "-o", "json")
			if code != tt.want {
				t.Fatalf("exit %d, want %d\n%s", code, tt.want, out)
			}
			var rep doctorReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			got := map[string]string{}
			var details []string
			for _, c := range rep.Checks {
				if c.Area != "config" {
					t.Errorf("check %s has area %q", c.Name, c.Area)
				}
				got[c.Name] = c.Status
				details = append(details, c.Details...)
			}
			for name, status := range tt.checks {
				if got[name] != status {
					t.Errorf("check %s = %q, want %q\n%s", name, got[name], status, out)
				}
			}
			if tt.detail != "" && !strings.Contains(strings.Join(details, "\n"), tt.detail) {
				t.Errorf("no detail contains %q:\n%s", tt.detail, out)
			}
		})
	}
}
