package dynamic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

// reasonErr is a check error naming its own rejection reason.
type reasonErr struct{ reason string }

func (e reasonErr) Error() string        { return "overlaps " + e.reason }
func (e reasonErr) RejectReason() string { return e.reason }

func TestPropose(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	base := Config{Policies: []*schemas.DynamicOverridePolicy{allowClaims},
		Subscriptions: map[string]Subscription{"claims": {Group: "lab"}}}
	del := func(name string) abi.Directive {
		d := abi.Directive{Op: OpDelete, Reason: "gone"}
		d.Target.Kind, d.Target.Name = "RemoteAddressClaim", name
		return d
	}
	stored := Part{Source: "EventSubscription/claims", Kind: "RemoteAddressClaim", Name: "onprem-10-88-60-5", Generation: 4, CreatedAt: now.Add(-time.Hour)}
	tests := []struct {
		name       string
		cfg        func(Config) Config
		resources  []json.RawMessage
		directives []abi.Directive
		want       []string // "op kind/name gen" of the parts, then "reject target reason", then "withdraw name"
	}{
		{
			name:      "create, and update of a stored part",
			resources: []json.RawMessage{claimJSON("onprem-10-88-60-9", "10.88.60.9", ""), claimJSON("onprem-10-88-60-5", "10.88.60.5", "")},
			want:      []string{"create RemoteAddressClaim/onprem-10-88-60-9 1", "update RemoteAddressClaim/onprem-10-88-60-5 5"},
		},
		{
			name:      "the same resource twice: the later one replaces the earlier",
			resources: []json.RawMessage{claimJSON("onprem-10-88-60-9", "10.88.60.9", ""), claimJSON("onprem-10-88-60-9", "10.88.60.10", "")},
			want:      []string{"update RemoteAddressClaim/onprem-10-88-60-9 2"},
		},
		{
			name: "undecodable, kind not allowed, static conflict",
			cfg: func(c Config) Config {
				c.Static = map[string]bool{"RemoteAddressClaim/onprem-10-88-60-9": true}
				return c
			},
			resources: []json.RawMessage{json.RawMessage(`{"kind":`), json.RawMessage(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"OverlayPeer","metadata":{"name":"x"},"spec":{"role":"cloud","underlay":{"type":"gre","interface":"gre0"},"remote":{"address":"10.255.9.2"}}}`), claimJSON("onprem-10-88-60-9", "10.88.60.9", "")},
			want:      []string{"reject (undecodable resource) invalid", "reject OverlayPeer/x kind_not_allowed", "reject RemoteAddressClaim/onprem-10-88-60-9 static_conflict"},
		},
		{
			name:      "no policy: denied",
			cfg:       func(c Config) Config { c.Policies = nil; return c },
			resources: []json.RawMessage{claimJSON("onprem-10-88-60-9", "10.88.60.9", "")},
			want:      []string{"reject RemoteAddressClaim/onprem-10-88-60-9 policy_denied"},
		},
		{
			name:      "SkipPolicy: no policy and no static check",
			cfg:       func(c Config) Config { c.Policies, c.SkipPolicy = nil, true; return c },
			resources: []json.RawMessage{claimJSON("onprem-10-88-60-9", "10.88.60.9", "")},
			want:      []string{"create RemoteAddressClaim/onprem-10-88-60-9 1"},
		},
		{
			name: "semantic check: default and named reasons",
			cfg: func(c Config) Config {
				c.Check = func(o schemas.Object) error {
					if o.GetMeta().Annotations[AnnotationSource] != "EventSubscription/claims" {
						return errors.New("check ran before stamping")
					}
					switch o.GetName() {
					case "onprem-10-88-60-1":
						return errors.New("bad")
					case "onprem-10-88-60-2":
						return fmt.Errorf("wrapped: %w", reasonErr{"address_in_use"})
					}
					return nil
				}
				return c
			},
			resources: []json.RawMessage{claimJSON("onprem-10-88-60-1", "10.88.60.1", ""), claimJSON("onprem-10-88-60-2", "10.88.60.2", ""), claimJSON("onprem-10-88-60-3", "10.88.60.3", "")},
			want:      []string{"create RemoteAddressClaim/onprem-10-88-60-3 1", "reject RemoteAddressClaim/onprem-10-88-60-1 check_failed", "reject RemoteAddressClaim/onprem-10-88-60-2 address_in_use"},
		},
		{
			name:       "directives: withdraw stored and in-result parts, skip unknown, refuse other ops",
			resources:  []json.RawMessage{claimJSON("onprem-10-88-60-9", "10.88.60.9", "")},
			directives: []abi.Directive{del("onprem-10-88-60-5"), del("onprem-10-88-60-9"), del("nope"), {Op: "patch"}},
			want:       []string{"reject / invalid", "withdraw onprem-10-88-60-5", "withdraw onprem-10-88-60-9"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			prev := func(kind, name string) (Part, bool) {
				if kind == stored.Kind && name == stored.Name {
					return stored, true
				}
				return Part{}, false
			}
			r := subscribe.Result{Resources: tt.resources, Doc: &abi.Result{}}
			r.Doc.Status.Directives = tt.directives
			out := Propose(cfg, batch(ev("ev1", "10.88.60.9")), r, now, prev)
			var got []string
			for _, p := range out.Parts {
				got = append(got, fmt.Sprintf("%s %s/%s %d", p.Operation, p.Part.Kind, p.Part.Name, p.Part.Generation))
				if !p.Part.ExpiresAt.Equal(now.Add(DefaultTTL)) || p.Part.Document.Spec.Source != "EventSubscription/claims" {
					t.Errorf("part %+v", p.Part)
				}
				if p.Operation == OpUpdate && p.Part.Name == stored.Name && !p.Part.CreatedAt.Equal(stored.CreatedAt) {
					t.Errorf("update lost createdAt: %v", p.Part.CreatedAt)
				}
			}
			for _, x := range out.Rejections {
				if x.Detail == "" {
					t.Errorf("rejection without detail: %+v", x)
				}
				got = append(got, "reject "+x.Target+" "+x.Reason)
			}
			for _, w := range out.Withdrawals {
				got = append(got, "withdraw "+w.Ref.Name)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestOriginEvent(t *testing.T) {
	rec := func(id, subject, addr string) subscribe.Record {
		return subscribe.Record{ID: id, Group: "lab", Subject: subject, Payload: map[string]string{"address": addr}}
	}
	events := []subscribe.Record{rec("a", "10.0.0.1", ""), rec("b", "x", " 10.0.0.2/32 "), rec("c", "10.0.0.3", ""), rec("d", "other", "")}
	tests := []struct {
		name, claim, annotation, want string
	}{
		{name: "named by annotation", claim: "10.0.0.3", annotation: "a", want: "a"},
		{name: "subject in spec", claim: "10.0.0.1", want: "a"},
		{name: "trimmed payload address without prefix length", claim: "10.0.0.2", want: "b"},
		{name: "spec value with prefix length", claim: "10.0.0.3/32", want: "c"},
		{name: "no match: newest", claim: "10.9.9.9", want: "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := claimJSON("x", tt.claim, "")
			obj, err := schemas.DecodeObject(raw)
			if err != nil {
				t.Fatal(err)
			}
			if tt.annotation != "" {
				obj.GetMeta().Annotations = map[string]string{AnnotationEventID: tt.annotation}
			}
			if got := OriginEvent(events, obj, raw).ID; got != tt.want {
				t.Errorf("origin = %q, want %q", got, tt.want)
			}
		})
	}
	if got := OriginEvent(nil, nil, nil); got.ID != "" {
		t.Errorf("empty batch: %+v", got)
	}
}
