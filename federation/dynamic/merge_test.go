package dynamic_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/schemas"
)

func loadHybrid(t *testing.T) *schemas.Config {
	t.Helper()
	cfg, err := schemas.LoadFiles(filepath.Join("..", "..", "dataplane", "desired", "testdata", "hybrid.yaml"))
	if err != nil {
		var el *schemas.ErrorList
		if errors.As(err, &el) {
			t.Fatalf("load hybrid.yaml:\n%v", el)
		}
		t.Fatal(err)
	}
	return cfg
}

func testClaim(name, addr string) *schemas.RemoteAddressClaim {
	// No ownerSide and no delivery.mode: schemas defaults would fill them in.
	return &schemas.RemoteAddressClaim{
		TypeMeta: schemas.TypeMeta{APIVersion: "hybrid.routerd.net/v1alpha1", Kind: "RemoteAddressClaim"},
		Metadata: schemas.ObjectMeta{Name: name},
		Spec:     schemas.RemoteAddressClaimSpec{DomainRef: "lab", Address: addr, Delivery: &schemas.ClaimDelivery{PeerRef: "onprem-main"}},
	}
}

func testPeer(name, dev, addr string) *schemas.OverlayPeer {
	p := &schemas.OverlayPeer{TypeMeta: schemas.TypeMeta{APIVersion: "hybrid.routerd.net/v1alpha1", Kind: "OverlayPeer"},
		Metadata: schemas.ObjectMeta{Name: name}}
	p.Spec.Role = "cloud"
	p.Spec.Underlay.Type, p.Spec.Underlay.Interface, p.Spec.Underlay.Address = "wireguard", dev, addr
	p.Spec.Remote.Address = "10.254.0.2"
	return p
}

func testPart(o schemas.Object, now, expires time.Time) dynamic.Part {
	return dynamic.Part{
		Source: "EventSubscription/claims", Kind: o.GetKind(), Name: o.GetName(), ExpiresAt: expires, UpdatedAt: now,
		Document: &schemas.DynamicConfigPart{Spec: schemas.DynamicConfigPartSpec{Resources: []schemas.Resource{{Object: o}}}},
	}
}

// snapshot is the JSON of every object, to detect modifications.
func snapshot(t *testing.T, objs []schemas.Object) []string {
	t.Helper()
	out := make([]string, len(objs))
	for i, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

func TestMergeConfig(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		parts     []dynamic.Part
		copied    bool // the merged config must be a copy (not the static one)
		want      []string
		absent    []string
		conflicts int
	}{
		{
			name:  "live part adds a claim",
			parts: []dynamic.Part{testPart(testClaim("onprem-10-88-60-77", "10.88.60.77"), now, now.Add(time.Hour))},
			want:  []string{"route 10.88.60.77/32 via 10.255.0.2 dev wg-hybrid table main metric 100"},
		},
		{
			name:   "expired part adds nothing",
			parts:  []dynamic.Part{testPart(testClaim("onprem-10-88-60-78", "10.88.60.78"), now, now.Add(-time.Minute))},
			absent: []string{"10.88.60.78"},
		},
		{
			name:      "static claim wins over a part of the same name",
			parts:     []dynamic.Part{testPart(testClaim("onprem-10-88-60-9", "10.88.60.79"), now, now.Add(time.Hour))},
			want:      []string{"route 10.88.60.9/32"},
			absent:    []string{"10.88.60.79"},
			conflicts: 1,
		},
		{
			name: "a part of another Kind: merged into a validated copy",
			parts: []dynamic.Part{
				testPart(testPeer("extra", "wg-extra", "10.254.0.1/30"), now, now.Add(time.Hour)),
				testPart(testClaim("onprem-10-88-60-80", "10.88.60.80"), now, now.Add(time.Hour)),
			},
			copied: true,
			want:   []string{"address 10.254.0.1/30 dev wg-extra", "route 10.88.60.80/32"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadHybrid(t)
			static := cfg.Objects()
			beforeStatic := snapshot(t, static)
			var partObjs []schemas.Object
			for _, p := range tt.parts {
				partObjs = append(partObjs, p.Resource())
			}
			beforeParts := snapshot(t, partObjs)

			m := dynamic.MergeConfig(cfg, tt.parts, now)

			if got := snapshot(t, cfg.Objects()); strings.Join(got, "\n") != strings.Join(beforeStatic, "\n") {
				t.Errorf("the static configuration was modified by the merge")
			}
			if got := snapshot(t, partObjs); strings.Join(got, "\n") != strings.Join(beforeParts, "\n") {
				t.Errorf("the parts' resources were modified by the merge:\n%s\nwas\n%s", strings.Join(got, "\n"), strings.Join(beforeParts, "\n"))
			}
			if tt.copied {
				if m.Config == cfg {
					t.Fatalf("merged config is the static one, want a copy (problems %q)", m.Problems)
				}
				shared := map[schemas.Object]bool{}
				for _, o := range append(static, partObjs...) {
					shared[o] = true
				}
				for _, o := range m.Config.Objects() {
					if shared[o] {
						t.Errorf("merged config shares %s/%s with the static config or a part", o.GetKind(), o.GetName())
					}
				}
			}
			res := desired.FromConfig(m.Config, desired.Options{Now: now, Claims: m.Claims})
			s := res.State.String()
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("state lacks %q:\n%s", w, s)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(s, a) {
					t.Errorf("state holds %q:\n%s", a, s)
				}
			}
			if len(m.Conflicts) != tt.conflicts {
				t.Errorf("conflicts = %+v, want %d", m.Conflicts, tt.conflicts)
			}
			if len(m.Problems)+len(res.Problems) != 0 {
				t.Errorf("problems: %q %q", m.Problems, res.Problems)
			}
		})
	}
}
