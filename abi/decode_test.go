package abi

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

var manifestCases = []struct {
	name    string
	in      string
	wantErr error
}{
	{name: "minimal", in: `{"name":"echo","version":"1.0.0","abi":"routerd.plugin/v1","hooks":["on_events"]}`},
	{name: "full", in: `{"name":"claim","version":"0.1","abi":"routerd.plugin/v1.3","hooks":["on_events","plan","execute"],"capabilities":["propose.dynamicConfig","log"],"description":"x","future":{"a":1}}`},
	{name: "abi v2", in: `{"name":"x","version":"1","abi":"routerd.plugin/v2","hooks":["plan"]}`, wantErr: ErrIncompatibleVersion},
	{name: "abi missing", in: `{"name":"x","version":"1","hooks":["plan"]}`, wantErr: ErrMalformedVersion},
	{name: "no hooks", in: `{"name":"x","version":"1","abi":"routerd.plugin/v1","hooks":[]}`, wantErr: ErrInvalidDocument},
	{name: "unknown hook", in: `{"name":"x","version":"1","abi":"routerd.plugin/v1","hooks":["main"]}`, wantErr: ErrInvalidDocument},
	{name: "duplicate hook", in: `{"name":"x","version":"1","abi":"routerd.plugin/v1","hooks":["plan","plan"]}`, wantErr: ErrInvalidDocument},
	{name: "unknown capability", in: `{"name":"x","version":"1","abi":"routerd.plugin/v1","hooks":["plan"],"capabilities":["root"]}`, wantErr: ErrInvalidDocument},
	{name: "no name", in: `{"version":"1","abi":"routerd.plugin/v1","hooks":["plan"]}`, wantErr: ErrInvalidDocument},
	{name: "not json", in: `hello`, wantErr: ErrInvalidDocument},
	{name: "array", in: `[]`, wantErr: ErrInvalidDocument},
	{name: "trailing", in: `{"name":"x","version":"1","abi":"routerd.plugin/v1","hooks":["plan"]}]`, wantErr: ErrInvalidDocument},
	{name: "wrong type", in: `{"name":1}`, wantErr: ErrInvalidDocument},
}

func TestDecodeManifest(t *testing.T) {
	for _, tt := range manifestCases {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeManifest([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !m.HasHook(m.Hooks[0]) || m.HasHook("nope") {
				t.Error("HasHook broken")
			}
		})
	}
}

var requestCases = []struct {
	name    string
	in      string
	wantErr error
}{
	{name: "on_events", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","batchID":"b1","spec":{"trigger":{"type":"EventSubscription","topic":"claims"},"now":"2026-11-23T10:00:00Z","events":[{"id":"01J","group":"g","type":"routerd.client.ipv4.observed","subject":"10.0.0.1","payload":{"address":"10.0.0.1/32"}}],"context":{"resources":[{"kind":"X"}]}}}`},
	{name: "newer minor with unknown fields", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.4","spec":{"trigger":{"type":"Plan"},"context":{},"newField":[1,2]}}`},
	{name: "execute", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","spec":{"trigger":{"type":"Execute"},"context":{},"actionPlan":{"name":"p","provider":"aws","action":"assign-secondary-ip"}}}`},
	{name: "major 2", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v2.0","spec":{}}`, wantErr: ErrIncompatibleVersion},
	{name: "wrong kind", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginResult","abi":"routerd.plugin/v1.0","spec":{}}`, wantErr: ErrInvalidDocument},
	{name: "bad now", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","spec":{"now":"yesterday"}}`, wantErr: ErrInvalidDocument},
	{name: "payload not strings", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a":1}}]}}`, wantErr: ErrInvalidDocument},
}

func TestDecodeRequest(t *testing.T) {
	for _, tt := range requestCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.in))
			if tt.wantErr == nil && err != nil {
				t.Fatalf("error = %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

var resultCases = []struct {
	name    string
	in      string
	wantErr error
}{
	{name: "claims", in: `{"status":{"observedAt":"2026-11-23T10:00:00Z","ttl":"30m","resources":[{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":"onprem-10-0-0-1"}}]}}`},
	{name: "empty status", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginResult","status":{}}`},
	{name: "plans", in: `{"status":{"actionPlans":[{"name":"p","provider":"aws","action":"assign","target":{"nic":"eni-1"},"preconditions":[{"name":"free"}],"undo":{"action":"unassign"}}]}}`},
	{name: "action results", in: `{"status":{"actionResults":[{"name":"p","outcome":"succeeded"}]}}`},
	{name: "bad outcome", in: `{"status":{"actionResults":[{"name":"p","outcome":"maybe"}]}}`, wantErr: ErrInvalidDocument},
	{name: "plan without action", in: `{"status":{"actionPlans":[{"name":"p","provider":"aws"}]}}`, wantErr: ErrInvalidDocument},
	{name: "resource not object", in: `{"status":{"resources":["x"]}}`, wantErr: ErrInvalidDocument},
	{name: "directive without target", in: `{"status":{"directives":[{"op":"delete"}]}}`, wantErr: ErrInvalidDocument},
	{name: "wrong kind", in: `{"kind":"PluginRequest","status":{}}`, wantErr: ErrInvalidDocument},
	{name: "truncated", in: `{"status":{"resources":[`, wantErr: ErrInvalidDocument},
	{name: "empty", in: ``, wantErr: ErrInvalidDocument},
}

func TestDecodeResult(t *testing.T) {
	for _, tt := range resultCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResult([]byte(tt.in))
			if tt.wantErr == nil && err != nil {
				t.Fatalf("error = %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestResultRoundTrip checks that the JSON field names survive encoding/json both ways.
func TestResultRoundTrip(t *testing.T) {
	in := Result{APIVersion: PluginAPIVersion, Kind: KindPluginResult, Status: ResultStatus{
		ObservedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		TTL:        "30m",
		Resources:  []json.RawMessage{json.RawMessage(`{"kind":"RemoteAddressClaim"}`)},
		Directives: []Directive{{Op: "delete", Target: ObjectRef{APIVersion: "a/v1", Kind: "K", Name: "n"}, Reason: "r"}},
		ActionPlans: []ActionPlan{{Name: "p", Provider: "aws", Action: "assign", Target: map[string]string{"nic": "eni"},
			IdempotencyKey: "k", Preconditions: []Precondition{{Name: "c", Expect: "free"}}, ExpectedEffects: []string{"e"},
			Undo: &ActionUndo{Action: "unassign"}}},
		ActionResults: []ActionResult{{Name: "p", Outcome: ActionSkipped}},
		Events:        []ResultEvent{{Type: "info", Message: "m", Attributes: map[string]string{"a": "b"}}},
	}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeResult(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*out, in) {
		t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", *out, in)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: they must never panic, and whatever
// DecodeResult accepts must re-encode to something it accepts again.
func FuzzDecode(f *testing.F) {
	for _, c := range manifestCases {
		f.Add([]byte(c.in))
	}
	for _, c := range requestCases {
		f.Add([]byte(c.in))
	}
	for _, c := range resultCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := DecodeManifest(data); err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("decoded manifest does not validate: %v", err)
			}
		}
		_, _ = DecodeRequest(data)
		r, err := DecodeResult(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encode accepted result: %v", err)
		}
		if _, err := DecodeResult(again); err != nil {
			t.Fatalf("re-decode of %s: %v", again, err)
		}
	})
}
