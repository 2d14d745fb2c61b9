package dataplane_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependenciesFlowOneWay fails when a dataplane package (or its tests) depends on
// federation, host or cmd, directly or through another package: the dataplane takes
// already-merged objects and returns observations; the daemon does the rest.
func TestDependenciesFlowOneWay(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH: cannot list dependencies")
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -test ./...: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || !slices.Contains(deps, "routerd.net/routerd/dataplane/desired") {
		t.Fatalf("go list returned no dataplane packages: %q", out)
	}
	for _, dep := range deps {
		for _, forbidden := range []string{"routerd.net/routerd/federation", "routerd.net/routerd/host", "routerd.net/routerd/cmd"} {
			if dep == forbidden || strings.HasPrefix(dep, forbidden+"/") {
				t.Errorf("dataplane depends on %s (forbidden: %s); pass merged objects in and observations out instead", dep, forbidden)
			}
		}
	}
}
