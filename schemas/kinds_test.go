package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func TestRegistry(t *testing.T) {
	kinds := Kinds()
	want := map[string][]string{
		ConfigAPIVersion:     {"DynamicConfigPart", "DynamicOverridePolicy"},
		HybridAPIVersion:     {"AddressMobilityDomain", "CloudProviderProfile", "HybridRoute", "MSSClamp", "OverlayPeer", "ProviderActionPolicy", "RemoteAddressClaim"},
		FederationAPIVersion: {"EventGroup", "EventPeer", "EventSubscription", "FederationSLO"},
		PluginAPIVersion:     {"Plugin"},
	}
	got := map[string][]string{}
	for i, k := range kinds {
		got[k.APIVersion] = append(got[k.APIVersion], k.Kind)
		obj := k.New()
		if obj.GetKind() != k.Kind || obj.GetAPIVersion() != k.APIVersion {
			t.Errorf("%s: New() returns %s/%s", k.Kind, obj.GetAPIVersion(), obj.GetKind())
		}
		if i > 0 && kinds[i-1].APIVersion == k.APIVersion && kinds[i-1].Kind > k.Kind {
			t.Errorf("Kinds() not sorted at %s", k.Kind)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("registry = %v, want %v", got, want)
	}
}

func TestRegisterPanics(t *testing.T) {
	tests := []struct {
		name string
		info KindInfo
	}{
		{name: "duplicate", info: KindInfo{APIVersion: PluginAPIVersion, Kind: "Plugin", New: func() Object { return New("Plugin") }}},
		{name: "empty kind", info: KindInfo{APIVersion: PluginAPIVersion, New: func() Object { return New("Plugin") }}},
		{name: "New of another kind", info: KindInfo{APIVersion: PluginAPIVersion, Kind: "Other", New: func() Object { return New("Plugin") }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Register did not panic")
				}
			}()
			Register(tt.info)
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := LoadDir("../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	peer := cfg.Get("EventPeer", "router-c").(*EventPeer)
	if peer.Spec.Direction != "push" {
		t.Errorf("EventPeer direction = %q, want push", peer.Spec.Direction)
	}
	echo := cfg.Get("Plugin", "echo").(*Plugin)
	if echo.Spec.Limits.Timeout.Duration != time.Second || echo.Spec.Limits.MemoryMiB != 64 || echo.Spec.Limits.MaxOutputBytes != 1<<20 {
		t.Errorf("echo limits = %+v, want timeout 1s from spec.timeout, memory 64, output 1MiB", echo.Spec.Limits)
	}
	aws := cfg.Get("Plugin", "aws-secondary-ip").(*Plugin)
	if ro := aws.Spec.Grants.WASI.Files[0].ReadOnly; ro == nil || !*ro {
		t.Errorf("wasi file readOnly default = %v, want true", ro)
	}
	sub := cfg.Get("EventSubscription", "echo-debug").(*EventSubscription)
	if !reflect.DeepEqual(sub.Spec.Output.AllowedKinds, []string{"RemoteAddressClaim"}) {
		t.Errorf("allowedKinds default = %v", sub.Spec.Output.AllowedKinds)
	}
	g := cfg.EventGroups()[0]
	if g.Spec.Auth.Mode != "hmac" || g.Spec.Listen.Port != 19471 {
		t.Errorf("group = %+v", g.Spec)
	}

	var o EventGroup
	o.SetDefaults()
	o2 := o
	o2.SetDefaults()
	if !reflect.DeepEqual(o, o2) {
		t.Error("SetDefaults is not idempotent")
	}
	want := EventGroupSpec{
		Retention:    EventRetention{MaxEvents: 100000, MaxAge: Dur(168 * time.Hour)},
		Auth:         EventGroupAuth{Mode: "hmac"},
		Listen:       ListenConfig{Address: "127.0.0.1", Port: 9470},
		ReplayWindow: Dur(5 * time.Minute),
		Delivery: EventDelivery{BatchSize: 256, RetryBase: Dur(200 * time.Millisecond), RetryMax: Dur(5 * time.Second),
			FailAfter: Dur(24 * time.Hour), TTLRefreshBefore: Dur(2 * time.Minute), DefaultTTL: Dur(30 * time.Minute)},
		Transport: EventTransport{Type: "hmac-push"},
	}
	if !reflect.DeepEqual(o.Spec, want) {
		t.Errorf("EventGroup defaults = %+v\nwant %+v", o.Spec, want)
	}
}

// TestJSONRoundTrip marshals every valid resource to JSON and decodes it strictly again.
func TestJSONRoundTrip(t *testing.T) {
	cfg, err := LoadDir("../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cfg.Objects() {
		t.Run(o.GetKind()+"/"+o.GetName(), func(t *testing.T) {
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeObject(b)
			if err != nil {
				t.Fatalf("DecodeObject(%s): %v", b, err)
			}
			back.SetDefaults()
			if !reflect.DeepEqual(back, o) {
				b2, _ := json.Marshal(back)
				t.Fatalf("round trip differs:\n%s\n%s", b, b2)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		out     string
		wantErr bool
	}{
		{name: "minutes", in: `"5m"`, want: 5 * time.Minute, out: `"5m"`},
		{name: "milliseconds", in: `"200ms"`, want: 200 * time.Millisecond, out: `"200ms"`},
		{name: "hours and minutes", in: `"1h30m"`, want: 90 * time.Minute, out: `"1h30m"`},
		{name: "hours", in: `"24h"`, want: 24 * time.Hour, out: `"24h"`},
		{name: "negative", in: `"-5s"`, wantErr: true},
		{name: "number", in: `300`, wantErr: true},
		{name: "words", in: `"5 minutes"`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if d.Duration != tt.want {
				t.Fatalf("got %v, want %v", d.Duration, tt.want)
			}
			b, _ := json.Marshal(d)
			if string(b) != tt.out {
				t.Fatalf("marshal = %s, want %s", b, tt.out)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "json claim", in: `{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":"onprem-10-88-60-9"},"spec":{"domainRef":"lab","address":"10.88.60.9","ownerSide":"onprem","capture":{"type":"provider-secondary-ip","providerRef":"example-provider","providerMode":"secondary-ip","nicRef":"example-nic-ref","configureOSAddress":false},"delivery":{"peerRef":"onprem-main","mode":"route","tunnelInterface":"wg-hybrid"}}}`},
		{name: "yaml", in: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: AddressMobilityDomain\nmetadata: {name: lab}\nspec: {prefix: 10.88.0.0/16}\n"},
		{name: "unknown field", in: `{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"AddressMobilityDomain","metadata":{"name":"lab"},"spec":{"prefix":"10.88.0.0/16","x":1}}`, wantErr: "spec.x: unknown field"},
		{name: "two documents", in: "a: 1\n---\nb: 2\n", wantErr: "want exactly one resource document, got 2"},
		{name: "empty", in: "", wantErr: "want exactly one resource document, got 0"},
		{name: "semantic", in: `{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"AddressMobilityDomain","metadata":{"name":"lab"},"spec":{"prefix":"10.88.0.1/16"}}`, wantErr: "has host bits set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := DecodeObject([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil || obj == nil {
					t.Fatalf("DecodeObject: %v", err)
				}
				return
			}
			var el *ErrorList
			if !errors.As(err, &el) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want an *ErrorList containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	group := New("EventGroup").(*EventGroup)
	group.Metadata.Name = "sam"
	group.Spec.NodeName = "router-a"
	group.Spec.Auth.SecretFile = "/s"
	peer := New("EventPeer").(*EventPeer)
	peer.Metadata.Name = "b"
	peer.Spec = EventPeerSpec{GroupRef: "sam", NodeName: "router-b"}
	cfg, err := NewConfig(group, peer)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.EventPeersOf("sam")) != 1 || cfg.Get("EventGroup", "sam") != group || group.Spec.ReplayWindow.Duration != 5*time.Minute {
		t.Fatalf("config = %v", cfg)
	}

	orphan := New("EventPeer").(*EventPeer)
	orphan.Metadata.Name = "c"
	orphan.Spec = EventPeerSpec{GroupRef: "nope", NodeName: "router-c", Endpoint: "mailto:x"}
	_, err = NewConfig(group, orphan, &EventGroup{})
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("err = %v, want *ErrorList", err)
	}
	for _, want := range []string{"EventPeer/c: spec.endpoint:", `apiVersion "", kind "" is not a registered Kind`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

func TestValidate(t *testing.T) {
	amd := New("AddressMobilityDomain").(*AddressMobilityDomain)
	amd.Metadata.Name = "lab"
	amd.Spec.Prefix = "10.0.0.0/8"
	amd.SetDefaults()
	if err := Validate(amd); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	amd.Spec.Prefix = "10.0.0.0"
	if err := Validate(amd); err == nil || !strings.Contains(err.Error(), "AddressMobilityDomain/lab: spec.prefix:") {
		t.Fatalf("Validate = %v, want a spec.prefix problem", err)
	}
}
