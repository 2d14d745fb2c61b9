package host

import (
	"reflect"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/schemas"
)

func TestSpecsFromConfig(t *testing.T) {
	cfg, err := schemas.LoadFiles("../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string]Spec{}
	for _, s := range SpecsFromConfig(cfg) {
		specs[s.Name] = s
	}
	tests := []struct {
		name string
		want Spec
	}{
		{name: "event-to-remote-claim", want: Spec{
			Name: "event-to-remote-claim", Module: "event-to-remote-claim.wasm", Hooks: []abi.Hook{abi.HookOnEvents},
			Capabilities: []string{"propose.dynamicConfig"},
			Grants:       capability.Grants{Log: true, Now: true, ConfigGet: capability.ConfigGetGrant{Kinds: []string{"AddressMobilityDomain", "OverlayPeer"}}},
			Limits:       Limits{MemoryMiB: 32, Timeout: 500 * time.Millisecond, MaxOutputBytes: 262144, MaxConcurrency: 2, WarmInstances: 1},
		}},
		{name: "echo", want: Spec{
			Name: "echo", Module: "echo.wasm", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Hooks: []abi.Hook{abi.HookOnEvents, abi.HookPlan}, Capabilities: []string{},
			Grants: capability.Grants{Log: true, KV: true, EventEmit: capability.EventEmitGrant{Types: []string{"routerd.debug.echo"}}},
			// schemas fills the limit defaults; the original spec.timeout becomes limits.timeout.
			Limits: Limits{MemoryMiB: 64, Timeout: time.Second, MaxOutputBytes: 1 << 20, MaxConcurrency: 4, WarmInstances: 2},
		}},
		{name: "aws-secondary-ip", want: Spec{
			Name: "aws-secondary-ip", Module: "aws-secondary-ip.wasm", Hooks: []abi.Hook{abi.HookPlan, abi.HookExecute},
			Capabilities: []string{"observe.cloud", "propose.providerAction", "execute.providerAction"},
			Env:          map[string]string{"AWS_REGION": "ap-northeast-1"},
			Grants: capability.Grants{Log: true,
				ProviderRequest: capability.ProviderRequestGrant{Hosts: []string{"ec2.ap-northeast-1.amazonaws.com"}, ProfileRefs: []string{"example-provider"},
					Methods: []string{"GET", "POST", "PUT", "DELETE"}, PathPrefixes: []string{"/"}},
				WASI: capability.WASIGrant{Env: true, Files: []capability.FileGrant{{HostPath: "/etc/routerd/aws-ca.pem", GuestPath: "/etc/ssl/ca.pem", ReadOnly: true}}}},
			Limits: Limits{MemoryMiB: 64, Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20, MaxConcurrency: 4, WarmInstances: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := specs[tt.name]
			if !ok {
				t.Fatalf("no spec %s in %v", tt.name, specs)
			}
			if len(got.Capabilities) == 0 && len(tt.want.Capabilities) == 0 {
				got.Capabilities, tt.want.Capabilities = nil, nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("spec\n got %+v\nwant %+v", got, tt.want)
			}
			if _, err := got.normalize(); err != nil {
				t.Fatalf("normalize: %v", err)
			}
		})
	}
}

func TestContextResources(t *testing.T) {
	cfg, err := schemas.LoadFiles("../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		refs []schemas.ResourceRef
		want int
	}{
		{name: "every resource of a kind", refs: []schemas.ResourceRef{{Kind: "Plugin"}}, want: 3},
		{name: "one by name", refs: []schemas.ResourceRef{{Kind: "Plugin", Name: "echo"}}, want: 1},
		{name: "wrong apiVersion", refs: []schemas.ResourceRef{{APIVersion: "x/v1", Kind: "Plugin"}}, want: 0},
		{name: "none", refs: nil, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContextResources(cfg, tt.refs)
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d resources (%v), want %d", len(got), err, tt.want)
			}
		})
	}
}
