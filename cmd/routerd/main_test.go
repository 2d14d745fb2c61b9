package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestExitCodes(t *testing.T) {
	invalid := t.TempDir()
	if err := os.WriteFile(filepath.Join(invalid, "bad.yaml"), []byte("apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: x}\nspec: {bogus: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "version", args: []string{"version"}, want: exitOK},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: exitUsage},
		{name: "unknown subcommand", args: []string{"nope"}, want: exitUsage},
		{name: "bad dataplane", args: []string{"run", "--dataplane", "nope", "--config-dir", "../../testdata/demo/router-a",
			"--state-dir", t.TempDir(), "--control-socket", filepath.Join(t.TempDir(), "s"), "--metrics-address", "", "--no-eventd",
			"--plugin-dir", t.TempDir()}, want: exitFailed},
		{name: "invalid config", args: []string{"run", "--config-dir", invalid, "--state-dir", t.TempDir(),
			"--metrics-address", "", "--no-eventd"}, want: exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(context.Background(), tt.args); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}
