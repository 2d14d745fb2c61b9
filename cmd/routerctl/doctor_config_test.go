package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		// secret is written to sam.key with secretMode (none when empty; "dir" makes
		// sam.key a directory).
		secret     string
		secretMode os.FileMode
	}{
		{name: "valid", config: group + "  auth: {secretFile: sam.key}\n", want: exitOK, secret: "0123456789abcdef0123", secretMode: 0o600,
			checks: map[string]string{"validate": checkOK, "group-auth": checkOK, "warnings": checkOK, "secrets": checkOK, "references": checkOK}},
		{name: "secret readable by others", config: group + "  auth: {secretFile: sam.key}\n", want: exitFailed, secret: "0123456789abcdef0123", secretMode: 0o644,
			checks: map[string]string{"validate": checkOK, "secrets": checkWarn}, detail: "has mode 0644: other users can read the secret; chmod 600"},
		{name: "secret missing", config: group + "  auth: {secretFile: sam.key}\n", want: exitDoctorFail,
			checks: map[string]string{"validate": checkOK, "secrets": checkFail}, detail: "EventGroup/sam spec.auth.secretFile: "},
		{name: "secret is a directory", config: group + "  auth:\n    keys: [{id: k1, secretFile: sam.key}]\n", want: exitDoctorFail, secret: "dir",
			checks: map[string]string{"validate": checkOK, "secrets": checkFail}, detail: "EventGroup/sam spec.auth.keys[0].secretFile: "},
		{name: "secret is a FIFO (reading would block)", config: group + "  auth: {secretFile: sam.key}\n", want: exitDoctorFail, secret: "fifo",
			checks: map[string]string{"validate": checkOK, "secrets": checkFail}, detail: "is not a regular file"},
		{name: "secret unreadable", config: group + "  auth: {secretFile: sam.key}\n", want: exitDoctorFail, secret: "unreadable",
			checks: map[string]string{"validate": checkOK, "secrets": checkFail}, detail: "permission denied"},
		{name: "secret too short", config: group + "  auth: {secretFile: sam.key}\n", want: exitDoctorFail, secret: "short", secretMode: 0o600,
			checks: map[string]string{"secrets": checkFail}, detail: "secret shorter than 16 bytes"},
		{name: "reference to a missing peer", config: group + "  auth: {secretFile: sam.key}\n---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: HybridRoute\nmetadata: {name: r}\nspec: {peerRef: nowhere, destinationCIDRs: [10.9.0.0/16]}\n",
			want: exitDoctorFail, secret: "0123456789abcdef0123", secretMode: 0o600, checks: map[string]string{"validate": checkFail}, detail: `spec.peerRef: no OverlayPeer named "nowhere"`},
		{name: "reference the dataplane cannot build", config: group + "  auth: {secretFile: sam.key}\n---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: OverlayPeer\nmetadata: {name: p}\nspec:\n  role: onprem\n  underlay: {type: route, address: 169.254.30.1/30}\n  remote: {address: 169.254.30.2}\n---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: HybridRoute\nmetadata: {name: r}\nspec: {peerRef: p, destinationCIDRs: [10.9.0.0/16]}\n",
			want: exitDoctorFail, secret: "0123456789abcdef0123", secretMode: 0o600, checks: map[string]string{"validate": checkOK, "references": checkFail}, detail: "OverlayPeer p has no underlay.interface to route through"},
		{name: "group without auth", config: group, want: exitDoctorFail,
			checks: map[string]string{"validate": checkOK, "group-auth": checkFail, "warnings": checkOK},
			detail: "cfg.yaml:4: warning: EventGroup/sam: spec.auth: group sam has no auth: add spec.auth.secretFile"},
		{name: "invalid", config: group + "  auth: {secretFile: /s}\n  replayWindow: soon\n", want: exitDoctorFail,
			checks: map[string]string{"validate": checkFail, "group-auth": checkOK, "warnings": checkOK},
			detail: `EventGroup/sam: spec.replayWindow: want a duration like 200ms, 30s, 5m or 1h30m, got "soon"`},
		{name: "invalid with a group without auth", config: group + "---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: AddressMobilityDomain\nmetadata: {name: lab}\nspec: {prefix: 10.0.0.1/8}\n", want: exitDoctorFail,
			checks: map[string]string{"validate": checkFail, "group-auth": checkFail, "warnings": checkOK},
			detail: "group sam has no auth: add spec.auth.secretFile"},
		{name: "ignored field", config: "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec:\n  resources:\n  - apiVersion: hybrid.routerd.net/v1alpha1\n    kind: AddressMobilityDomain\n    metadata: {name: lab}\n    spec: {prefix: 10.0.0.0/8, colour: blue}\n", want: exitFailed,
			checks: map[string]string{"validate": checkOK, "group-auth": checkOK, "warnings": checkWarn},
			detail: "spec.colour: unknown field ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "cfg.yaml"), []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			switch tt.secret {
			case "":
			case "dir":
				if err := os.Mkdir(filepath.Join(dir, "sam.key"), 0o700); err != nil {
					t.Fatal(err)
				}
			case "fifo":
				if err := syscall.Mkfifo(filepath.Join(dir, "sam.key"), 0o600); err != nil {
					t.Fatal(err)
				}
			case "unreadable":
				if os.Geteuid() == 0 {
					t.Skip("root reads any file")
				}
				if err := os.WriteFile(filepath.Join(dir, "sam.key"), []byte("0123456789abcdef0123"), 0); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(filepath.Join(dir, "sam.key"), []byte(tt.secret), tt.secretMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, "sam.key"), tt.secretMode); err != nil {
					t.Fatal(err)
				}
			}
			settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
			if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := runCLI(t, "doctor", "config", "--config-dir", dir, "--settings", settingsFile, "-o", "json")
			if tt.secret == "fifo" {
				// The federation area reads the secrets too: it must name the FIFO, not block on it.
				fcode, fout := runCLI(t, "doctor", "federation", "--config-dir", dir, "--state-dir", t.TempDir(), "--settings", settingsFile, "-o", "json")
				if fcode != exitDoctorFail || !strings.Contains(fout, "is not a regular file") {
					t.Errorf("doctor federation with a FIFO secret: exit %d\n%s", fcode, fout)
				}
			}
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
