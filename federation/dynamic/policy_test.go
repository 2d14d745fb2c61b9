package dynamic

import (
	"reflect"
	"strings"
	"testing"

	"routerd.net/routerd/schemas"
)

func policy(name string, allow ...schemas.OverrideAllow) *schemas.DynamicOverridePolicy {
	p := &schemas.DynamicOverridePolicy{}
	p.APIVersion, p.Kind = schemas.ConfigAPIVersion, "DynamicOverridePolicy"
	p.Metadata.Name = name
	p.Spec.Allow = allow
	return p
}

func claimRef(name string) schemas.ResourceRef {
	return schemas.ResourceRef{APIVersion: schemas.HybridAPIVersion, Kind: "RemoteAddressClaim", Name: name}
}

func TestEvaluate(t *testing.T) {
	anyClaim := schemas.OverrideAllow{Source: "EventSubscription/*", Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim"}}}
	tests := []struct {
		name     string
		policies []*schemas.DynamicOverridePolicy
		p        Proposal
		allowed  bool
		reason   string
	}{
		{name: "no policy denies", p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a")},
			reason: "no DynamicOverridePolicy allows source EventSubscription/claims"},
		{name: "wildcard source, any name", policies: []*schemas.DynamicOverridePolicy{policy("p", anyClaim)},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a")}, allowed: true},
		{name: "update allowed by default", policies: []*schemas.DynamicOverridePolicy{policy("p", anyClaim)},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpUpdate, Target: claimRef("a")}, allowed: true},
		{name: "delete not allowed by default", policies: []*schemas.DynamicOverridePolicy{policy("p", anyClaim)},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpDelete, Target: claimRef("a")}, reason: "p#0 does not allow delete"},
		{name: "other source", policies: []*schemas.DynamicOverridePolicy{policy("p", schemas.OverrideAllow{
			Source: "EventSubscription/other", Targets: anyClaim.Targets})},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a")}, reason: "no DynamicOverridePolicy"},
		{name: "other kind", policies: []*schemas.DynamicOverridePolicy{policy("p", anyClaim)},
			p:      Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: schemas.ResourceRef{Kind: "HybridRoute", Name: "r"}},
			reason: "p#0 does not list target HybridRoute/r"},
		{name: "name pattern", policies: []*schemas.DynamicOverridePolicy{policy("p", schemas.OverrideAllow{
			Source: "EventSubscription/claims", Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim", Name: "onprem-*"}}})},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("onprem-10-0-0-1")}, allowed: true},
		{name: "name pattern miss", policies: []*schemas.DynamicOverridePolicy{policy("p", schemas.OverrideAllow{
			Source: "EventSubscription/claims", Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim", Name: "onprem-*"}}})},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("cloud-10-0-0-1")}, reason: "does not list target"},
		{name: "apiVersion mismatch", policies: []*schemas.DynamicOverridePolicy{policy("p", schemas.OverrideAllow{
			Source: "*", Targets: []schemas.ResourceRef{{APIVersion: "hybrid.routerd.net/v2", Kind: "RemoteAddressClaim"}}})},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a")}, reason: "does not list target"},
		{name: "fields covered", policies: []*schemas.DynamicOverridePolicy{policy("p", schemas.OverrideAllow{
			Source: "*", Targets: anyClaim.Targets, Fields: []string{"spec.address", "spec.delivery.*"}})},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a"),
				Fields: []string{"spec.address", "spec.delivery.mode", "spec.delivery.peerRef"}}, allowed: true},
		{name: "field not covered", policies: []*schemas.DynamicOverridePolicy{policy("p", schemas.OverrideAllow{
			Source: "*", Targets: anyClaim.Targets, Fields: []string{"spec.address"}})},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a"),
				Fields: []string{"spec.address", "spec.capture.type"}}, reason: "p#0 does not allow field spec.capture.type"},
		{name: "second rule allows", policies: []*schemas.DynamicOverridePolicy{
			policy("narrow", schemas.OverrideAllow{Source: "*", Targets: anyClaim.Targets, Fields: []string{"spec.address"}}),
			policy("wide", anyClaim)},
			p: Proposal{Source: "EventSubscription/claims", Operation: OpCreate, Target: claimRef("a"),
				Fields: []string{"spec.capture.type"}}, allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.policies, tt.p)
			if d.Allowed != tt.allowed {
				t.Fatalf("Allowed = %v (%s), want %v", d.Allowed, d.Reason, tt.allowed)
			}
			if !tt.allowed && !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("reason %q, want it to contain %q", d.Reason, tt.reason)
			}
			if tt.allowed && d.Policy == "" {
				t.Fatal("allowed without naming the policy")
			}
		})
	}
}

func TestSpecFields(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "nested", doc: `{"spec":{"address":"10.0.0.1","capture":{"type":"x","nicRef":"n"},"list":[1]}}`,
			want: []string{"spec.address", "spec.capture.nicRef", "spec.capture.type", "spec.list"}},
		{name: "no spec", doc: `{"kind":"X"}`, want: nil},
		{name: "empty object is a leaf", doc: `{"spec":{"a":{}}}`, want: []string{"spec.a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SpecFields([]byte(tt.doc))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("SpecFields = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
	if _, err := SpecFields([]byte(`nope`)); err == nil {
		t.Fatal("garbage accepted")
	}
}
