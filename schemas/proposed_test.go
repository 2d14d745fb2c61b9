package schemas

import (
	"errors"
	"strings"
	"testing"
)

// decodeOne decodes one resource document or fails the test.
func decodeOne(t *testing.T, doc string) Object {
	t.Helper()
	o, err := DecodeObject([]byte(doc))
	if err != nil {
		t.Fatalf("DecodeObject(%s): %v", doc, err)
	}
	return o
}

func claimDoc(name, domain, address string) string {
	return "apiVersion: hybrid.routerd.net/v1alpha1\nkind: RemoteAddressClaim\nmetadata: {name: " + name + "}\n" +
		"spec: {domainRef: " + domain + ", address: \"" + address + "\", delivery: {peerRef: dc}}\n"
}

func partDoc(name string, resources ...string) string {
	doc := "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicConfigPart\nmetadata: {name: " + name + "}\nspec:\n  source: EventSubscription/claims\n  resources:\n"
	for _, r := range resources {
		doc += "  - " + strings.ReplaceAll(strings.TrimSuffix(r, "\n"), "\n", "\n    ") + "\n"
	}
	return doc
}

// badClaim returns a claim of domain lab whose address is not an IP address.
func badClaim(name string) Object {
	c := New("RemoteAddressClaim").(*RemoteAddressClaim)
	c.Metadata.Name = name
	c.Spec.DomainRef, c.Spec.Address = "lab", "10.88.0.999"
	return c
}

// TestCheckProposed checks proposed objects against the static config of refs_test.go's
// base (domain lab 10.88.0.0/16, overlay peer dc, group sam, ...) plus live objects.
func TestCheckProposed(t *testing.T) {
	static, err := Decode("static.yaml", []byte(base+"apiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b1}\nspec: {groupRef: sam, nodeName: router-b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	liveDomain := "apiVersion: hybrid.routerd.net/v1alpha1\nkind: AddressMobilityDomain\nmetadata: {name: lab2}\nspec: {prefix: 10.99.0.0/16}\n"
	tests := []struct {
		name       string
		static     *Config
		live       []string
		proposed   string
		obj        func() Object // built in Go instead of proposed (DecodeObject refuses what is semantically invalid)
		wantReason string        // "" means accepted
		wantErr    string
	}{
		{name: "valid claim", static: static, proposed: claimDoc("onprem-10-88-60-9", "lab", "10.88.60.9")},
		{name: "claim outside its domain", static: static, proposed: claimDoc("onprem-10-99-0-5", "lab", "10.99.0.5"),
			wantReason: ProposedReference, wantErr: "RemoteAddressClaim/onprem-10-99-0-5: spec.address: 10.99.0.5 is outside the prefix 10.88.0.0/16 of domain lab"},
		{name: "unknown domain", static: static, proposed: claimDoc("c", "lab9", "10.88.0.5"),
			wantReason: ProposedReference, wantErr: `spec.domainRef: no AddressMobilityDomain named "lab9"; known: lab`},
		{name: "unknown delivery peer", static: static, proposed: strings.Replace(claimDoc("c", "lab", "10.88.0.5"), "peerRef: dc", "peerRef: gone", 1),
			wantReason: ProposedReference, wantErr: `spec.delivery.peerRef: no OverlayPeer named "gone"`},
		{name: "invalid address", static: static, obj: func() Object { return badClaim("c") },
			wantReason: ProposedSemantic, wantErr: `RemoteAddressClaim/c: spec.address: "10.88.0.999" is not an IP address`},
		{name: "domain that is only live", static: static, live: []string{liveDomain}, proposed: claimDoc("c", "lab2", "10.99.0.5")},
		{name: "domain in a live part", static: static, live: []string{partDoc("p1", liveDomain)}, proposed: claimDoc("c", "lab2", "10.99.0.5")},
		{name: "conflict with a live claim", static: static, live: []string{claimDoc("c", "lab", "10.88.0.5")}, proposed: claimDoc("c", "lab", "10.88.0.6"),
			wantReason: ProposedConflict, wantErr: "RemoteAddressClaim/c: metadata.name: RemoteAddressClaim/c is already live from another dynamic part"},
		{name: "conflict with a claim in a live part", static: static, live: []string{partDoc("p1", claimDoc("c", "lab", "10.88.0.5"))}, proposed: claimDoc("c", "lab", "10.88.0.6"),
			wantReason: ProposedConflict, wantErr: "is already live"},
		{name: "peer for a node that has one", static: static, proposed: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b2}\nspec: {groupRef: sam, nodeName: router-b}\n",
			wantReason: ProposedReference, wantErr: `EventPeer/b2: spec.nodeName: node "router-b" is already the peer b1 of group sam`},
		{name: "part carrying a claim outside its domain", static: static, proposed: partDoc("p2", claimDoc("onprem-10-99-0-5", "lab", "10.99.0.5")),
			wantReason: ProposedReference, wantErr: "proposed DynamicConfigPart/p2 rejected (reference): RemoteAddressClaim/onprem-10-99-0-5: spec.address: 10.99.0.5 is outside the prefix"},
		{name: "part carrying a bad claim", static: static, obj: func() Object {
			p := New("DynamicConfigPart").(*DynamicConfigPart)
			p.Metadata.Name, p.Spec.Source = "p2", "EventSubscription/claims"
			p.Spec.Resources = []Resource{{Object: badClaim("c")}}
			return p
		},
			wantReason: ProposedSemantic, wantErr: `DynamicConfigPart/p2: spec.resources[0].spec.address: "10.88.0.999" is not an IP address`},
		{name: "no static config", proposed: claimDoc("c", "lab", "10.88.0.5"),
			wantReason: ProposedReference, wantErr: `no AddressMobilityDomain named "lab" (there are no AddressMobilityDomain resources)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var live []Object
			for _, l := range tt.live {
				live = append(live, decodeOne(t, l))
			}
			var proposed Object
			if tt.obj != nil {
				proposed = tt.obj()
			} else {
				proposed = decodeOne(t, tt.proposed)
			}
			err := CheckProposed(tt.static, live, proposed)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var pe *ProposedError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ProposedError", err)
			}
			if pe.Reason != tt.wantReason || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("reason %q, err = %v\nwant reason %q and %q", pe.Reason, err, tt.wantReason, tt.wantErr)
			}
		})
	}
}

// TestCheckProposedSameChecksAsLoad checks that a proposed claim and the same claim in a
// config file fail with the same message: both run the same per-Kind checks.
func TestCheckProposedSameChecksAsLoad(t *testing.T) {
	static, err := Decode("static.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		claimDoc("c", "lab", "10.99.0.5"),
		claimDoc("c", "lab9", "10.88.0.5"),
		claimDoc("c", "lab", "10.88.0.0/8"),
	} {
		_, loadErr := Decode("t.yaml", []byte(base+doc))
		var el *ErrorList
		if !errors.As(loadErr, &el) || len(el.Problems) != 1 {
			t.Fatalf("loading %s: %v, want one problem", doc, loadErr)
		}
		var pe *ProposedError
		if !errors.As(CheckProposed(static, nil, decodeOne(t, doc)), &pe) || len(pe.Problems) != 1 {
			t.Fatalf("CheckProposed(%s) = %v, want one problem", doc, pe)
		}
		if got, want := pe.Problems[0].Message, el.Problems[0].Message; got != want || pe.Problems[0].Path != el.Problems[0].Path {
			t.Errorf("proposed: %s: %s\nloaded:   %s: %s", pe.Problems[0].Path, got, el.Problems[0].Path, want)
		}
	}
}
