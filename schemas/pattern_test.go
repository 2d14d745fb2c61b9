package schemas

import (
	"strings"
	"testing"
)

func TestMatchName(t *testing.T) {
	tests := []struct {
		name, pattern, value string
		want                 bool
	}{
		{name: "literal", pattern: "claims", value: "claims", want: true},
		{name: "literal differs", pattern: "claims", value: "claims2"},
		{name: "empty matches nothing", pattern: "", value: ""},
		{name: "star", pattern: "*", value: "EventSubscription/claims", want: true},
		{name: "prefix", pattern: "onprem-*", value: "onprem-10-88-60-9", want: true},
		{name: "prefix other side", pattern: "onprem-*", value: "cloud-10-88-60-9"},
		{name: "question mark", pattern: "router-?", value: "router-b", want: true},
		{name: "class", pattern: "router-[ab]", value: "router-c"},
		{name: "negated class", pattern: "router-[^ab]", value: "router-c", want: true},
		{name: "range", pattern: "claims-[0-9]", value: "claims-7", want: true},
		{name: "escape", pattern: `a\*`, value: "a*", want: true},
		{name: "star stops at slash", pattern: "EventSubscription/*", value: "EventSubscription/claims", want: true},
		{name: "kind pattern", pattern: "*/claims", value: "Operator/claims", want: true},
		{name: "malformed never matches", pattern: "onprem-[", value: "onprem-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchName(tt.pattern, tt.value); got != tt.want {
				t.Fatalf("MatchName(%q, %q) = %v, want %v", tt.pattern, tt.value, got, tt.want)
			}
		})
	}
}

// policyWith returns a DynamicOverridePolicy document whose only rule has source and
// target.
func policyWith(source, target string) string {
	return "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicOverridePolicy\nmetadata: {name: p}\nspec:\n  allow:\n  - source: \"" + source + "\"\n    targets: [" + target + "]\n"
}

// TestOverridePatterns checks both sides of the policy patterns: every pattern config
// validation accepts is one MatchName uses (and matches the example), every pattern it
// rejects is one MatchName cannot handle or one that could never match.
func TestOverridePatterns(t *testing.T) {
	accepted := []struct {
		name, source, target string
		matchField           string // the pattern that must match example
		example              string
	}{
		{name: "name prefix", source: "Operator/alice", target: `{kind: RemoteAddressClaim, name: "onprem-*"}`, matchField: "onprem-*", example: "onprem-10-88-60-9"},
		{name: "name class", source: "Operator/alice", target: `{kind: HybridRoute, name: "dc-[ab]"}`, matchField: "dc-[ab]", example: "dc-b"},
		{name: "name question mark", source: "Operator/alice", target: `{kind: HybridRoute, name: "dc-?"}`, matchField: "dc-?", example: "dc-a"},
		{name: "every subscription", source: "EventSubscription/*", target: `{kind: RemoteAddressClaim}`, matchField: "EventSubscription/*", example: "EventSubscription/claims"},
		{name: "some subscriptions", source: "EventSubscription/claims-*", target: `{kind: RemoteAddressClaim}`, matchField: "EventSubscription/claims-*", example: "EventSubscription/claims-tokyo"},
		{name: "any source", source: "*", target: `{kind: RemoteAddressClaim}`, matchField: "*", example: "Operator/alice"},
		{name: "kind pattern", source: "Operator/alice", target: `{kind: "Remote*"}`, matchField: "Remote*", example: "RemoteAddressClaim"},
		{name: "apiVersion pattern", source: "Operator/alice", target: `{apiVersion: "hybrid.routerd.net/*", kind: HybridRoute}`, matchField: "hybrid.routerd.net/*", example: HybridAPIVersion},
	}
	for _, tt := range accepted {
		t.Run("accepted/"+tt.name, func(t *testing.T) {
			if _, err := Decode("p.yaml", []byte(policyWith(tt.source, tt.target))); err != nil {
				t.Fatalf("config validation rejects it: %v", err)
			}
			if err := CheckNamePattern(tt.matchField); err != nil {
				t.Fatalf("CheckNamePattern(%q): %v", tt.matchField, err)
			}
			if !MatchName(tt.matchField, tt.example) {
				t.Fatalf("MatchName(%q, %q) = false", tt.matchField, tt.example)
			}
		})
	}
	rejected := []struct {
		name, source, target string
		pattern              string // "" when the rejection is not about pattern syntax
		wantErr              string
	}{
		{name: "unclosed class in name", source: "EventSubscription/claims", target: `{kind: RemoteAddressClaim, name: "onprem-["}`, pattern: "onprem-[", wantErr: `spec.allow[0].targets[0].name: "onprem-[" is not a valid pattern`},
		{name: "trailing backslash", source: "EventSubscription/claims", target: `{kind: RemoteAddressClaim, name: "onprem-\\"}`, pattern: `onprem-\`, wantErr: "is not a valid pattern"},
		{name: "empty class", source: "EventSubscription/claims", target: `{kind: RemoteAddressClaim, name: "x[]"}`, pattern: "x[]", wantErr: "is not a valid pattern"},
		{name: "malformed source", source: "EventSubscription/claims-[", target: `{kind: RemoteAddressClaim}`, pattern: "claims-[", wantErr: `spec.allow[0].source: "claims-[" is not a valid pattern`},
		{name: "kind pattern matching no Kind", source: "EventSubscription/claims", target: `{kind: "Interface*"}`, wantErr: `kind "Interface*" (apiVersion "") matches no Kind routerd provides`},
		{name: "apiVersion pattern matching no Kind", source: "EventSubscription/claims", target: `{apiVersion: "net.*", kind: HybridRoute}`, wantErr: "matches no Kind routerd provides"},
		{name: "star does not cross a slash", source: "EventSubscription/claims", target: `{apiVersion: "hybrid.*", kind: HybridRoute}`, wantErr: `kind "HybridRoute" (apiVersion "hybrid.*") matches no Kind routerd provides`},
		{name: "not a name nor pattern", source: "EventSubscription/claims", target: `{kind: RemoteAddressClaim, name: "Onprem_1"}`, wantErr: `"Onprem_1" is not a valid name`},
		{name: "source without name", source: "EventSubscription", target: `{kind: RemoteAddressClaim}`, wantErr: "is not a source: want Kind/name"},
	}
	for _, tt := range rejected {
		t.Run("rejected/"+tt.name, func(t *testing.T) {
			_, err := Decode("p.yaml", []byte(policyWith(tt.source, tt.target)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.pattern == "" {
				return
			}
			if CheckNamePattern(tt.pattern) == nil {
				t.Fatalf("CheckNamePattern(%q) = nil, but validation rejects it", tt.pattern)
			}
			for _, name := range []string{"onprem-a", "claims-a", "x", "onprem-", ""} {
				if MatchName(tt.pattern, name) {
					t.Fatalf("MatchName(%q, %q) = true: the matcher handles a pattern validation rejects", tt.pattern, name)
				}
			}
		})
	}
}
