package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/host/wasmbuild"
	"routerd.net/routerd/plugins/event-to-remote-claim/claim"
	"routerd.net/routerd/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/observed.result.json")

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func ev(typ, subject string, payload map[string]string) abi.Event {
	return abi.Event{ID: "01JEV" + subject, Group: "edge", SourceNode: "router-a", Type: typ, Subject: subject, Payload: payload}
}

// claimJSON is the expected document for the given fields.
func claimJSON(name, domain, address, owner, provider, nic, peer string) map[string]any {
	return map[string]any{
		"apiVersion": "hybrid.routerd.net/v1alpha1",
		"kind":       "RemoteAddressClaim",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"domainRef": domain, "address": address, "ownerSide": owner,
			"capture": map[string]any{"type": "provider-secondary-ip", "providerRef": provider,
				"providerMode": "secondary-ip", "nicRef": nic, "configureOSAddress": false},
			"delivery": map[string]any{"peerRef": peer, "mode": "route", "tunnelInterface": "wg-hybrid"},
		},
	}
}

const observed = abi.EventTypeIPv4Observed

var cases = []struct {
	name   string
	events []abi.Event
	want   []map[string]any
}{
	{name: "payload address with defaults",
		events: []abi.Event{ev(observed, "ignored-subject", map[string]string{"address": "10.88.60.9/32", "domain": "lab"})},
		want:   []map[string]any{claimJSON("onprem-10-88-60-9", "lab", "10.88.60.9/32", "onprem", "example-provider", "example-nic-ref", "onprem-main")}},
	{name: "subject when payload address missing",
		events: []abi.Event{ev(observed, "10.0.0.7", map[string]string{"domain": "lab"})},
		want:   []map[string]any{claimJSON("onprem-10-0-0-7", "lab", "10.0.0.7", "onprem", "example-provider", "example-nic-ref", "onprem-main")}},
	{name: "subject when payload address blank",
		events: []abi.Event{ev(observed, " 10.0.0.8 ", map[string]string{"address": "   "})},
		want:   []map[string]any{claimJSON("onprem-10-0-0-8", "", "10.0.0.8", "onprem", "example-provider", "example-nic-ref", "onprem-main")}},
	{name: "no address at all", events: []abi.Event{ev(observed, "  ", map[string]string{"address": " "})}},
	{name: "other types ignored", events: []abi.Event{ev("routerd.peer.down", "10.0.0.9", nil), ev("routerd.client.ipv6.observed", "fe80::1", nil)}},
	{name: "all payload overrides trimmed",
		events: []abi.Event{ev(observed, "x", map[string]string{"address": " 10.1.2.3 ", "ownerSide": " cloud ", "domain": " d ",
			"providerRef": " aws-tokyo ", "nicRef": " eni-1 ", "peerRef": " aws-edge "})},
		want: []map[string]any{claimJSON("cloud-10-1-2-3", "d", "10.1.2.3", "cloud", "aws-tokyo", "eni-1", "aws-edge")}},
	{name: "blank overrides fall back to defaults",
		events: []abi.Event{ev(observed, "10.1.2.4", map[string]string{"ownerSide": " ", "providerRef": "", "nicRef": "\t", "peerRef": " "})},
		want:   []map[string]any{claimJSON("onprem-10-1-2-4", "", "10.1.2.4", "onprem", "example-provider", "example-nic-ref", "onprem-main")}},
	{name: "ipv6 colons become dashes and are trimmed",
		events: []abi.Event{ev(observed, "::ffff:10.0.0.1/128", nil)},
		want:   []map[string]any{claimJSON("onprem-ffff-10-0-0-1", "", "::ffff:10.0.0.1/128", "onprem", "example-provider", "example-nic-ref", "onprem-main")}},
	{name: "name falls back to addr",
		events: []abi.Event{ev(observed, "/32", nil)},
		want:   []map[string]any{claimJSON("onprem-addr", "", "/32", "onprem", "example-provider", "example-nic-ref", "onprem-main")}},
	{name: "duplicate address: last wins at first position",
		events: []abi.Event{
			ev(observed, "10.0.0.1", map[string]string{"peerRef": "old"}),
			ev(observed, "10.0.0.2", nil),
			ev(observed, "10.0.0.1", map[string]string{"peerRef": "new"}),
		},
		want: []map[string]any{
			claimJSON("onprem-10-0-0-1", "", "10.0.0.1", "onprem", "example-provider", "example-nic-ref", "new"),
			claimJSON("onprem-10-0-0-2", "", "10.0.0.2", "onprem", "example-provider", "example-nic-ref", "onprem-main"),
		}},
	{name: "same address on both sides gives two claims",
		events: []abi.Event{ev(observed, "10.0.0.1", nil), ev(observed, "10.0.0.1", map[string]string{"ownerSide": "cloud"})},
		want: []map[string]any{
			claimJSON("onprem-10-0-0-1", "", "10.0.0.1", "onprem", "example-provider", "example-nic-ref", "onprem-main"),
			claimJSON("cloud-10-0-0-1", "", "10.0.0.1", "cloud", "example-provider", "example-nic-ref", "onprem-main"),
		}},
	{name: "empty batch"},
}

func request(events []abi.Event) *abi.Request {
	return &abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		BatchID: "b1", Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerEventSubscription, Topic: "claims"}, Now: now, Events: events}}
}

// checkResult decodes out as a PluginResult and compares it with want.
func checkResult(t *testing.T, out []byte, want []map[string]any) {
	t.Helper()
	res, err := abi.DecodeResult(out)
	if err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if res.Status.TTL != "30m" || !res.Status.ObservedAt.Equal(now) {
		t.Errorf("ttl=%q observedAt=%v; want 30m and %v", res.Status.TTL, res.Status.ObservedAt, now)
	}
	if len(res.Status.Resources) != len(want) {
		t.Fatalf("%d resources, want %d: %s", len(res.Status.Resources), len(want), out)
	}
	for i, raw := range res.Status.Resources {
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("resource %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("resource %d:\n got %v\nwant %v", i, got, want[i])
		}
	}
}

// TestClaimsNative runs the logic natively, directly and through the guest SDK's codec
// (guest.Invoke is the exact dispatch path of the Wasm exports).
func TestClaimsNative(t *testing.T) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			req := request(tt.events)
			direct, err := json.Marshal(claim.Build(req))
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, direct, tt.want)

			in, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			out, err := guest.Invoke(abi.HookIDOnEvents, in)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, out, tt.want)
		})
	}
}

// TestClaimsWasm runs the same cases through the built module on the Extism go-sdk.
func TestClaimsWasm(t *testing.T) {
	path := wasmbuild.ForTest(t, "plugins/event-to-remote-claim")
	ctx := context.Background()
	p, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: path}}}, extism.PluginConfig{EnableWasi: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	rc, out, err := p.Call(abi.ExportManifest, nil)
	if err != nil || rc != 0 {
		t.Fatalf("manifest: rc=%d err=%v", rc, err)
	}
	m, err := abi.DecodeManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest
	want.ABI = abi.ManifestVersion
	if !reflect.DeepEqual(*m, want) {
		t.Fatalf("manifest = %+v, want %+v", *m, want)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			in, err := json.Marshal(request(tt.events))
			if err != nil {
				t.Fatal(err)
			}
			rc, out, err := p.Call(string(abi.HookOnEvents), in)
			if err != nil || rc != 0 {
				t.Fatalf("on_events: rc=%d err=%v", rc, err)
			}
			checkResult(t, out, tt.want)
		})
	}
	if rc, _, err := p.Call(string(abi.HookPlan), []byte("{}")); rc != 1 || err == nil {
		t.Fatalf("the plugin registers no plan handler, yet plan returned rc=%d err=%v", rc, err)
	}
}

// TestObservedEventsGolden runs testdata/events/observed.json (the dry-run example)
// and compares the result with testdata/observed.result.json.
func TestObservedEventsGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", "observed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var events []abi.Event
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(request(events))
	if err != nil {
		t.Fatal(err)
	}
	out, err := guest.Invoke(abi.HookIDOnEvents, in)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	pretty, _ := json.MarshalIndent(got, "", "  ")
	golden := filepath.Join("testdata", "observed.result.json")
	if *update {
		if err := os.WriteFile(golden, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantData, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want any
	if err := json.Unmarshal(wantData, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("result differs from %s:\n%s", golden, pretty)
	}
	res, err := abi.DecodeResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Status.Resources); n != 9 {
		t.Fatalf("%d claims from observed.json, want 9 (10 events, one of another type)", n)
	}
	// Every claim must be a valid RemoteAddressClaim for the config layer.
	for i, doc := range res.Status.Resources {
		obj, err := schemas.DecodeObject(doc)
		if err != nil {
			t.Errorf("claim %d is not a valid resource: %v\n%s", i, err, doc)
			continue
		}
		if obj.GetKind() != claim.Kind || obj.GetAPIVersion() != claim.APIVersion {
			t.Errorf("claim %d decoded as %s %s", i, obj.GetAPIVersion(), obj.GetKind())
		}
	}
}
