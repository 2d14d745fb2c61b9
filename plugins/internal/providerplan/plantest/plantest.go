// Package plantest is the golden-file test every provider planner plugin runs: the
// request in testdata/plan-request.json, planned natively with the plugin's Provider,
// must give testdata/plan-result.json (go test -update rewrites it).
package plantest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/plugins/internal/providerplan"
)

var update = flag.Bool("update", false, "rewrite testdata/plan-result.json")

// Golden runs pv's plan hook on testdata/plan-request.json and compares the indented
// result with testdata/plan-result.json.
func Golden(t *testing.T, pv providerplan.Provider) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", "plan-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req abi.Request
	if err := json.Unmarshal(in, &req); err != nil {
		t.Fatalf("testdata/plan-request.json: %v", err)
	}
	res, err := pv.Handle(&req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "plan-result.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plan result differs from %s (go test -update rewrites it after review):\n%s", golden, got)
	}
}
