package schemas_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/plugins/event-to-remote-claim/claim"
	"routerd.net/routerd/schemas"
)

// bundledPluginOutput returns the resources the bundled event-to-remote-claim plugin
// proposes for testdata/events/observed.json. The plugin's Wasm module runs the same
// claim package (plugins/event-to-remote-claim checks that module and package agree).
func bundledPluginOutput(t *testing.T) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile("../testdata/events/observed.json")
	if err != nil {
		t.Fatal(err)
	}
	var events []abi.Event
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	req := &abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest}
	req.Spec.Now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	req.Spec.Events = events
	res := claim.Build(req)
	if len(res.Status.Resources) == 0 {
		t.Fatal("the plugin proposed no resources")
	}
	return res.Status.Resources
}

// TestPluginOutputParity decodes every document the bundled plugin outputs and encodes
// it again: the result must be the same JSON, field for field, including the explicit
// capture.configureOSAddress: false.
func TestPluginOutputParity(t *testing.T) {
	for _, doc := range bundledPluginOutput(t) {
		obj, err := schemas.DecodeObject(doc)
		if err != nil {
			t.Fatalf("DecodeObject(%s): %v", doc, err)
		}
		t.Run(obj.GetName(), func(t *testing.T) {
			back, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(doc, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(back, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decode then encode changed the plugin's document:\nplugin: %s\nstored: %s", doc, back)
			}
		})
	}
}

// TestClaimCaptureBooleans checks that explicit true and false survive decode and encode
// and that the accessors read unset as false.
func TestClaimCaptureBooleans(t *testing.T) {
	tests := []struct {
		name    string
		capture string
		want    string // capture as encoded
		os, arp bool
	}{
		{name: "unset", capture: `{"type":"proxy-arp","interface":"eth0"}`, want: `{"type":"proxy-arp","interface":"eth0"}`},
		{name: "explicit false", capture: `{"type":"proxy-arp","interface":"eth0","configureOSAddress":false,"gratuitousARP":false}`, want: `{"type":"proxy-arp","configureOSAddress":false,"interface":"eth0","gratuitousARP":false}`},
		{name: "true", capture: `{"type":"proxy-arp","interface":"eth0","configureOSAddress":true,"gratuitousARP":true}`, want: `{"type":"proxy-arp","configureOSAddress":true,"interface":"eth0","gratuitousARP":true}`, os: true, arp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":"c"},"spec":{"domainRef":"lab","address":"10.88.0.9","capture":` + tt.capture + `}}`
			obj, err := schemas.DecodeObject([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			cp := obj.(*schemas.RemoteAddressClaim).Spec.Capture
			if cp.ConfiguresOSAddress() != tt.os || cp.SendsGratuitousARP() != tt.arp {
				t.Errorf("ConfiguresOSAddress() = %v, SendsGratuitousARP() = %v", cp.ConfiguresOSAddress(), cp.SendsGratuitousARP())
			}
			got, err := json.Marshal(cp)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("capture encodes as %s, want %s", got, tt.want)
			}
		})
	}
}
