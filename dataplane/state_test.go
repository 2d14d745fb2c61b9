package dataplane

import (
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      State
		want    string
		wantErr string
	}{
		{
			name: "defaults and masking",
			in: State{Routes: []Route{
				{Dst: netip.MustParsePrefix("10.0.0.77/24"), Dev: "wg0"},
				{Dst: netip.MustParsePrefix("2001:db8::/64"), Dev: "wg0", Table: 10},
			}},
			want: "route 10.0.0.0/24 dev wg0 table main metric 0 proto routerd\nroute 2001:db8::/64 dev wg0 table 10 metric 1024 proto routerd\n",
		},
		{
			name: "identical duplicates merge",
			in: State{ProxyNeighbors: []ProxyNeighbor{
				{Addr: netip.MustParseAddr("10.0.0.5"), Dev: "eth0", From: "a"},
				{Addr: netip.MustParseAddr("10.0.0.5"), Dev: "eth0", From: "b"},
			}},
			want: "proxy-neighbor 10.0.0.5 dev eth0 proto routerd\n",
		},
		{
			name: "conflicting claims",
			in: State{Routes: []Route{
				{Dst: netip.MustParsePrefix("10.0.0.5/32"), Dev: "wg0", From: "RemoteAddressClaim/a"},
				{Dst: netip.MustParsePrefix("10.0.0.5/32"), Dev: "wg1", From: "RemoteAddressClaim/b"},
			}},
			wantErr: "conflict",
		},
		{
			name:    "bad interface name",
			in:      State{Addresses: []Address{{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Dev: "an-interface-name-too-long"}}},
			wantErr: "invalid address",
		},
		{
			name:    "family mismatch",
			in:      State{Routes: []Route{{Dst: netip.MustParsePrefix("10.0.0.0/8"), Dev: "wg0", Via: netip.MustParseAddr("fe80::1")}}},
			wantErr: "another address family",
		},
		{
			name:    "mss out of range",
			in:      State{MSSRules: []MSSRule{{Dev: "wg0", MSS: 100}}},
			wantErr: "outside 536..65495",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestDiffJSON(t *testing.T) {
	cur := State{Routes: []Route{{Dst: netip.MustParsePrefix("10.0.0.5/32"), Dev: "wg0"}}}
	want := State{Routes: []Route{{Dst: netip.MustParsePrefix("10.0.0.5/32"), Dev: "wg1", From: "RemoteAddressClaim/x"}}}
	d, err := Compute(cur, want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	const exp = `[{"op":"replace","kind":"route","key":"route 10.0.0.5/32 table main metric 0","object":"route 10.0.0.5/32 dev wg1 table main metric 0 proto routerd","previous":"route 10.0.0.5/32 dev wg0 table main metric 0 proto routerd","from":"RemoteAddressClaim/x"}]`
	if string(b) != exp {
		t.Errorf("json:\n%s\nwant\n%s", b, exp)
	}
	empty, _ := json.Marshal(Diff{})
	if string(empty) != "[]" {
		t.Errorf("empty diff json = %s, want []", empty)
	}
}

// TestNoHostImport keeps the boundary: the dataplane never depends on the plugin host.
func TestNoHostImport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "routerd.net/routerd/dataplane/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "routerd.net/routerd/host" || strings.HasPrefix(dep, "routerd.net/routerd/host/") ||
			strings.HasPrefix(dep, "github.com/tetratelabs/wazero") || strings.HasPrefix(dep, "github.com/extism/") {
			t.Errorf("dataplane depends on %s", dep)
		}
	}
}

// TestPackageDocs requires a package comment in every dataplane package.
func TestPackageDocs(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "routerd.net/routerd/dataplane/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "\t")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no package comment", pkg)
		}
	}
}
