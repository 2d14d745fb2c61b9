package dynamic

import (
	"reflect"
	"testing"
	"time"

	"routerd.net/routerd/schemas"
)

func TestConfigFrom(t *testing.T) {
	cfg, err := schemas.LoadDir("../../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	c := ConfigFrom(cfg)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "policies", got: len(c.Policies), want: len(cfg.DynamicOverridePolicies())},
		{name: "resolution", got: c.Resolution(), want: StaticWins},
		{name: "subscription with output", got: c.Subscriptions["claims-from-peers"],
			want: Subscription{Group: "sam", AllowedKinds: []string{"RemoteAddressClaim"}, DefaultTTL: 30 * time.Minute}},
		{name: "subscription without output gets the default", got: c.Subscriptions["echo-debug"].AllowedKinds, want: []string{"RemoteAddressClaim"}},
		{name: "static claim", got: c.Static["RemoteAddressClaim/onprem-10-88-60-9"], want: true},
		{name: "no such static", got: c.Static["RemoteAddressClaim/nope"], want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}
