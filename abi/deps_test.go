package abi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeafPackage fails when abi imports the Wasm runtime, Extism or any routerd package:
// abi is shared by the host and by wasip1 guests and must stay a leaf.
func TestLeafPackage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH: cannot list dependencies")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "routerd.net/routerd/abi":
		case strings.HasPrefix(dep, "routerd.net/"),
			strings.Contains(dep, "tetratelabs/wazero"),
			strings.Contains(dep, "extism"),
			strings.Contains(dep, "."): // any non-standard-library module
			t.Errorf("abi must be a leaf package but depends on %s", dep)
		}
	}
}
