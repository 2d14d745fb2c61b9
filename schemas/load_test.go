package schemas

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadDirFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml":           groupDoc,
		"b.json":           `{"apiVersion":"federation.routerd.net/v1alpha1","kind":"EventPeer","metadata":{"name":"b"},"spec":{"groupRef":"sam","nodeName":"router-b"}}`,
		".hidden.yaml":     "not: [valid",
		"notes.txt":        "not: [valid",
		"sub/ignored.yaml": "not: [valid",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(p, content); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Len() != 2 || len(cfg.EventGroups()) != 1 || len(cfg.EventPeers()) != 1 {
		t.Fatalf("config = %v", cfg)
	}
	if file, line := cfg.Origin("EventPeer", "b"); file != filepath.Join(dir, "b.json") || line != 1 {
		t.Errorf("Origin = %s:%d", file, line)
	}
	if file, _ := cfg.Origin("EventPeer", "nope"); file != "" {
		t.Errorf("Origin of a missing resource = %q", file)
	}
	if cfg.String() != "1 EventGroup, 1 EventPeer" {
		t.Errorf("String() = %q", cfg.String())
	}
	// The same files by name give the same config.
	cfg2, err := LoadFiles(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Objects(), cfg2.Objects()) {
		t.Error("LoadFiles and LoadDir differ")
	}
	// A missing path is a problem of that path; other paths are still loaded and checked.
	_, err = LoadFiles(filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "b.json"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read: no such file or directory") ||
		!strings.Contains(err.Error(), `no EventGroup named "sam"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestAccessors checks that each typed accessor returns the Kind's resources sorted.
func TestAccessors(t *testing.T) {
	cfg, err := LoadDir("../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	names := func(objs any) []string {
		v := reflect.ValueOf(objs)
		out := []string{}
		for i := range v.Len() {
			out = append(out, v.Index(i).Interface().(Object).GetName())
		}
		return out
	}
	tests := []struct {
		name string
		got  any
		want []string
	}{
		{name: "EventGroups", got: cfg.EventGroups(), want: []string{"sam"}},
		{name: "EventPeers", got: cfg.EventPeers(), want: []string{"router-b", "router-c"}},
		{name: "EventSubscriptions", got: cfg.EventSubscriptions(), want: []string{"claims-from-peers", "echo-debug"}},
		{name: "FederationSLOs", got: cfg.FederationSLOs(), want: []string{"sam-slo"}},
		{name: "Plugins", got: cfg.Plugins(), want: []string{"aws-secondary-ip", "echo", "event-to-remote-claim"}},
		{name: "OverlayPeers", got: cfg.OverlayPeers(), want: []string{"aws-edge", "aws-tokyo", "azure-edge", "oci-edge", "onprem-main"}},
		{name: "HybridRoutes", got: cfg.HybridRoutes(), want: []string{"aws-vpc"}},
		{name: "AddressMobilityDomains", got: cfg.AddressMobilityDomains(), want: []string{"lab", "lab-v4"}},
		{name: "RemoteAddressClaims", got: cfg.RemoteAddressClaims(), want: []string{"cloud-10-88-70-20", "onprem-10-88-60-9"}},
		{name: "CloudProviderProfiles", got: cfg.CloudProviderProfiles(), want: []string{"aws-tokyo", "azure-japaneast", "example-provider", "oci-tokyo"}},
		{name: "ProviderActionPolicies", got: cfg.ProviderActionPolicies(), want: []string{"default"}},
		{name: "MSSClamps", got: cfg.MSSClamps(), want: []string{"overlay"}},
		{name: "DynamicConfigParts", got: cfg.DynamicConfigParts(), want: []string{"claims-from-peers-01"}},
		{name: "DynamicOverridePolicies", got: cfg.DynamicOverridePolicies(), want: []string{"claims"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.got); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if len(tests) != len(Kinds()) {
		t.Fatalf("%d accessors tested, %d Kinds registered", len(tests), len(Kinds()))
	}
	part := cfg.DynamicConfigParts()[0]
	claim, ok := part.Spec.Resources[0].Object.(*RemoteAddressClaim)
	if !ok || claim.Spec.OwnerSide != "onprem" || claim.Spec.Delivery.PeerRef != "onprem-main" {
		t.Fatalf("embedded claim = %+v (defaults applied?)", part.Spec.Resources[0].Object)
	}
}
