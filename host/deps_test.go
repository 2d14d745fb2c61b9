package host_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestHostDoesNotImportFederation fails when a host package (or its tests) depends on
// federation, dataplane or cmd, directly or through another package: the host runs
// plugins; the daemon connects it to the federation (subscriptions, events, the store).
func TestHostDoesNotImportFederation(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH: cannot list dependencies")
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -test ./...: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "routerd.net/routerd/host") {
		t.Fatalf("go list returned no host packages: %q", out)
	}
	for _, dep := range deps {
		for _, forbidden := range []string{"routerd.net/routerd/federation", "routerd.net/routerd/dataplane", "routerd.net/routerd/cmd"} {
			if dep == forbidden || strings.HasPrefix(dep, forbidden+"/") {
				t.Errorf("host depends on %s (forbidden: %s); the daemon connects the host to it instead", dep, forbidden)
			}
		}
	}
}
