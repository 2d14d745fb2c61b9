package desired

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func load(t *testing.T, name string) *schemas.Config {
	t.Helper()
	cfg, err := schemas.LoadFiles(filepath.Join("testdata", name))
	if err != nil {
		var el *schemas.ErrorList
		if errors.As(err, &el) {
			t.Fatalf("load %s:\n%v", name, el)
		}
		t.Fatalf("load %s: %v", name, err)
	}
	return cfg
}

func TestFromConfigGolden(t *testing.T) {
	cfg := load(t, "hybrid.yaml")
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	res := FromConfig(cfg, Options{Now: now})
	state, err := res.State.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(state.String())
	for _, p := range res.Problems {
		b.WriteString("problem: " + p + "\n")
	}
	golden := filepath.Join("testdata", "hybrid.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("translation differs from %s:\n--- got\n%s--- want\n%s", golden, b.String(), want)
	}
	if strings.Contains(b.String(), "10.88.60.11") {
		t.Error("the expired dynamic part's claim was installed")
	}
	// Later, the live part has expired too: its claim is withdrawn.
	later := FromConfig(cfg, Options{Now: now.Add(3 * time.Hour)})
	if s := later.State; strings.Contains(s.String(), "10.88.60.10") {
		t.Errorf("claim of an expired part still desired:\n%s", s)
	}
	if d := Domains(cfg); len(d) != 1 || d[0].Name != "lab" || d[0].Prefix.String() != "10.88.0.0/16" {
		t.Errorf("Domains = %+v", d)
	}
}

func TestProblems(t *testing.T) {
	cfg := load(t, "hybrid.yaml")
	tests := []struct {
		name  string
		claim *schemas.RemoteAddressClaim
		want  string
	}{
		{
			name: "unknown peer",
			claim: &schemas.RemoteAddressClaim{Metadata: schemas.ObjectMeta{Name: "x"}, Spec: schemas.RemoteAddressClaimSpec{
				DomainRef: "lab", Address: "10.88.1.1", Delivery: &schemas.ClaimDelivery{PeerRef: "nowhere"}}},
			want: `RemoteAddressClaim/x: peerRef "nowhere": no such OverlayPeer`,
		},
		{
			name: "outside its domain",
			claim: &schemas.RemoteAddressClaim{Metadata: schemas.ObjectMeta{Name: "y"}, Spec: schemas.RemoteAddressClaimSpec{
				DomainRef: "lab", Address: "192.0.2.1"}},
			want: "RemoteAddressClaim/y: address 192.0.2.1 is outside domain lab (10.88.0.0/16)",
		},
		{
			name: "bad address",
			claim: &schemas.RemoteAddressClaim{Metadata: schemas.ObjectMeta{Name: "z"}, Spec: schemas.RemoteAddressClaimSpec{
				DomainRef: "lab", Address: "10.88.1"}},
			want: `RemoteAddressClaim/z: address "10.88.1"`,
		},
		{
			name: "unknown domain and no peer",
			claim: &schemas.RemoteAddressClaim{Metadata: schemas.ObjectMeta{Name: "w"}, Spec: schemas.RemoteAddressClaimSpec{
				DomainRef: "elsewhere", Address: "10.88.1.2"}},
			want: "RemoteAddressClaim/w: no delivery.peerRef and no peerRef on its domain",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := FromConfig(cfg, Options{Now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Claims: []*schemas.RemoteAddressClaim{tt.claim}})
			all := strings.Join(res.Problems, "\n")
			if !strings.Contains(all, tt.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", all, tt.want)
			}
		})
	}
}
