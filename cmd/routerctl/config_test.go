package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"routerd.net/routerd/schemas"
)

// runConfigCtl runs routerctl in-process with args and returns stdout and the exit code
// run() would return.
func runConfigCtl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := runCtl(t, "", args...)
	return r.stdout + r.err, r.code
}

func TestConfigValidateExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     int
		contains string
	}{
		{name: "valid directory", args: []string{"config", "validate", "../../testdata/config/valid"}, want: exitOK, contains: "valid: 27 resources"},
		{name: "valid files together", args: []string{"config", "validate", "../../testdata/config/valid/00-federation.yaml", "../../testdata/config/valid/10-plugins.yaml", "../../testdata/config/valid/20-hybrid-router.yaml"}, want: exitOK, contains: "valid:"},
		{name: "one file alone misses its references", args: []string{"config", "validate", "../../testdata/config/valid/00-federation.yaml"}, want: exitFailed, contains: `no Plugin named "echo"`},
		{name: "missing path", args: []string{"config", "validate", "no/such/dir"}, want: exitFailed, contains: "no/such/dir: cannot read: no such file or directory"},
		{name: "no path", args: []string{"config", "validate"}, want: exitUsage},
		{name: "bad output format", args: []string{"config", "validate", "-o", "xml", "../../testdata/config/valid"}, want: exitUsage},
		{name: "unknown flag", args: []string{"config", "validate", "--strict", "x"}, want: exitUsage},
		{name: "skip unknown kinds", args: []string{"config", "validate", "--skip-unknown-kinds", "../../testdata/config/invalid/unimplemented-kind.yaml"}, want: exitOK, contains: "warning: Interface/lan: skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runConfigCtl(t, tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.want, out)
			}
			if !strings.Contains(out, tt.contains) {
				t.Fatalf("output does not contain %q:\n%s", tt.contains, out)
			}
		})
	}
}

// TestConfigValidateInvalidExamples runs config validate on each file of
// testdata/config/invalid, which starts with "# expect: <substring of the output>".
func TestConfigValidateInvalidExamples(t *testing.T) {
	files, err := filepath.Glob("../../testdata/config/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("%d invalid examples, want at least 15", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := bufio.NewReader(fh).ReadString('\n')
			fh.Close()
			want, ok := strings.CutPrefix(strings.TrimSpace(first), "# expect: ")
			if !ok || want == "" {
				t.Fatalf("first line %q is not '# expect: <message>'", first)
			}
			out, code := runConfigCtl(t, "config", "validate", f)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d; output:\n%s", code, exitFailed, out)
			}
			if !strings.Contains(out, want) {
				t.Fatalf("output does not contain %q:\n%s", want, out)
			}
			if !strings.Contains(out, "invalid: ") {
				t.Fatalf("no summary line:\n%s", out)
			}
		})
	}
}

func TestConfigValidateJSON(t *testing.T) {
	out, code := runConfigCtl(t, "config", "validate", "-o", "json", "../../testdata/config/invalid/unknown-field.yaml")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	var problems []schemas.Problem
	if err := json.Unmarshal([]byte(out), &problems); err != nil {
		t.Fatalf("output is not a JSON list of problems: %v\n%s", err, out)
	}
	want := schemas.Problem{
		File: "../../testdata/config/invalid/unknown-field.yaml", Line: 13, Document: 1,
		Kind: "EventPeer", Name: "router-b", Path: "spec.colour", Severity: schemas.SeverityError,
	}
	if len(problems) != 1 {
		t.Fatalf("got %d problems, want 1: %+v", len(problems), problems)
	}
	got := problems[0]
	got.Message = ""
	if got != want {
		t.Fatalf("problem = %+v, want %+v", got, want)
	}

	out, code = runConfigCtl(t, "config", "validate", "-o", "json", "../../testdata/config/valid")
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("valid config: exit %d, output %q; want 0 and []", code, out)
	}
}

// TestConfigValidateWarnings checks that warnings are printed and keep exit code 0, in
// table and JSON output, and that a failed load still prints them.
func TestConfigValidateWarnings(t *testing.T) {
	const router = "../../testdata/config/v1alpha1/router.yaml"
	out, code := runConfigCtl(t, "config", "validate", "--skip-unknown-kinds", router)
	if code != exitOK {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{
		"router.yaml:14: warning: EventGroup/sam: spec.auth: group sam has no auth: add spec.auth.secretFile",
		"router.yaml:22: warning: AddressMobilityDomain/lab: spec.colour: unknown field ignored",
		"router.yaml:34: warning: Interface/lan: skipped: routerd v1alpha1 Kind Interface is not provided by this routerd",
		"valid: 3 resources (1 EventGroup, 1 AddressMobilityDomain, 1 CloudProviderProfile), 4 warnings",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}

	out, code = runConfigCtl(t, "config", "validate", "-o", "json", "--skip-unknown-kinds", router)
	var problems []schemas.Problem
	if err := json.Unmarshal([]byte(out), &problems); err != nil || code != exitOK {
		t.Fatalf("exit %d, output %v:\n%s", code, err, out)
	}
	codes := map[string]string{}
	for _, p := range problems {
		if p.Severity != schemas.SeverityWarning {
			t.Errorf("problem %+v is not a warning", p)
		}
		codes[p.Kind] = p.Code
	}
	want := map[string]string{"EventGroup": schemas.WarnGroupWithoutAuth, "AddressMobilityDomain": schemas.WarnIgnoredField, "Interface": schemas.WarnSkippedKind}
	for k, c := range want {
		if codes[k] != c {
			t.Errorf("warning code of %s = %q, want %q", k, codes[k], c)
		}
	}

	// Without --skip-unknown-kinds the Interface is an error; the warnings are still shown.
	out, code = runConfigCtl(t, "config", "validate", router)
	if code != exitFailed || !strings.Contains(out, "warning: EventGroup/sam") ||
		!strings.Contains(out, "Interface/lan: routerd v1alpha1 Kind Interface is not provided by this routerd") ||
		!strings.Contains(out, "invalid: 1 problem, 3 warnings") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
