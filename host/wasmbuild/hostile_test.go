package wasmbuild_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/fakehost"
	"routerd.net/routerd/host/wasmbuild"
)

// These tests build every plugin under testdata/plugins and check that each misbehaves
// exactly as advertised, on the bare Extism go-sdk, so the host's tests can rely on them.

func load(t *testing.T, rel string, m extism.Manifest, fh *fakehost.Host) *extism.Plugin {
	t.Helper()
	m.Wasm = []extism.Wasm{extism.WasmFile{Path: wasmbuild.ForTest(t, rel)}}
	ctx := context.Background()
	var funcs []extism.HostFunction
	if fh != nil {
		ctx, funcs = fh.Context(ctx), fh.Functions()
	}
	p, err := extism.NewPlugin(ctx, m, extism.PluginConfig{EnableWasi: true}, funcs)
	if err != nil {
		t.Fatalf("load %s: %v", rel, err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	return p
}

func request(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerDryRun}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// denyAll serves every routerd host function as one that answers capability_denied.
func denyAll() *fakehost.Host {
	return fakehost.New(func(fn string, _ []byte) any {
		return abi.Response{Error: abi.NewError(abi.ErrCodeCapabilityDenied, fn+" is not granted to this plugin")}
	})
}

func TestHostilePlugins(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{name: "loop", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/loop", extism.Manifest{Timeout: 200}, nil)
			start := time.Now()
			if _, _, err := p.Call("on_events", request(t)); err == nil {
				t.Fatal("endless loop returned without error")
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("deadline of 200ms took %v to fire", took)
			}
		}},
		{name: "loop with calls", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/loop", extism.Manifest{Timeout: 200}, nil)
			if _, _, err := p.Call("plan", request(t)); err == nil {
				t.Fatal("endless loop returned without error")
			}
		}},
		{name: "oom", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/oom", extism.Manifest{Memory: &extism.ManifestMemory{MaxPages: 512}}, nil)
			if _, _, err := p.Call("on_events", request(t)); err == nil {
				t.Fatal("unbounded allocation under a 32 MiB cap returned without error")
			}
		}},
		{name: "trap", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/trap", extism.Manifest{}, nil)
			rc, _, err := p.Call("plan", request(t))
			if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), "plugin_panic: panic in plan: assignment to entry in nil map") {
				t.Fatalf("plan: rc=%d err=%v; want a recovered plugin_panic", rc, err)
			}
			if _, _, err := p.Call("on_events", request(t)); err == nil {
				t.Fatal("runtime crash returned without error")
			}
		}},
		{name: "badjson", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/badjson", extism.Manifest{}, nil)
			for _, hook := range abi.Hooks() {
				rc, out, err := p.Call(string(hook), request(t))
				if rc != 0 || err != nil {
					t.Fatalf("%s: rc=%d err=%v", hook, rc, err)
				}
				if _, err := abi.DecodeResult(out); !errors.Is(err, abi.ErrInvalidDocument) {
					t.Errorf("%s output %q decoded: %v", hook, out, err)
				}
			}
		}},
		{name: "huge", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/huge", extism.Manifest{Memory: &extism.ManifestMemory{MaxPages: 1024}}, nil)
			rc, out, err := p.Call("plan", request(t))
			if rc != 0 || err != nil || len(out) != 2<<20 {
				t.Fatalf("plan: rc=%d err=%v len=%d; want 2 MiB", rc, err, len(out))
			}
			if _, err := abi.DecodeResult(out); err != nil {
				t.Fatalf("plan output is not a valid result: %v", err)
			}
			if _, _, err := p.Call("on_events", request(t)); err == nil {
				t.Fatal("100 MB output under a 64 MiB memory cap returned without error")
			}
		}},
		{name: "ungranted", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/ungranted", extism.Manifest{}, denyAll())
			for hook, fn := range map[abi.Hook]string{abi.HookOnEvents: abi.FuncEventEmit, abi.HookPlan: abi.FuncKVSet, abi.HookExecute: abi.FuncProviderRequest} {
				rc, _, err := p.Call(string(hook), request(t))
				want := "capability_denied: " + fn + " is not granted"
				if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("%s: rc=%d err=%v; want %q", hook, rc, err, want)
				}
			}
		}},
		{name: "abiv2", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/abiv2", extism.Manifest{}, nil)
			_, out, err := p.Call(abi.ExportManifest, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := abi.DecodeManifest(out); !errors.Is(err, abi.ErrIncompatibleVersion) {
				t.Fatalf("manifest %s: %v; want ErrIncompatibleVersion", out, err)
			}
		}},
		{name: "notwasm", check: func(t *testing.T) {
			root, err := wasmbuild.RepoRoot()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(root, "testdata", "plugins", "notwasm", "notwasm.wasm")
			data, err := os.ReadFile(path)
			if err != nil || bytes.HasPrefix(data, []byte("\x00asm")) {
				t.Fatalf("%s must exist and not be Wasm: %v", path, err)
			}
			m := extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: path}}}
			if p, err := extism.NewPlugin(context.Background(), m, extism.PluginConfig{EnableWasi: true}, nil); err == nil {
				p.Close(context.Background())
				t.Fatal("a text file loaded as a Wasm module")
			}
		}},
		{name: "noexports", check: func(t *testing.T) {
			p := load(t, "testdata/plugins/noexports", extism.Manifest{}, nil)
			for _, name := range []string{abi.ExportManifest, abi.ExportCall, string(abi.HookOnEvents)} {
				if p.FunctionExists(name) {
					t.Errorf("noexports exports %s", name)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// TestSubprocessClaimMatchesWasmPlugin runs the native subprocess baseline on the dry-run
// example events and compares its output with the Wasm plugin's golden result.
func TestSubprocessClaimMatchesWasmPlugin(t *testing.T) {
	bin := wasmbuild.NativeForTest(t, "testdata/plugins/subprocess-claim")
	root, err := wasmbuild.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "testdata", "events", "observed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var events []abi.Event
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		BatchID: "b1", Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerEventSubscription, Topic: "claims"},
			Now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Events: events}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("subprocess-claim: %v", err)
	}
	var got, want any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join(root, "plugins", "event-to-remote-claim", "testdata", "observed.result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("subprocess output differs from the Wasm plugin's golden result:\n%s", out)
	}

	bad := exec.Command(bin)
	bad.Stdin = strings.NewReader(`{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v2.0"}`)
	if msg, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(msg), "incompatible ABI major version") {
		t.Fatalf("v2 request: err=%v output=%s", err, msg)
	}
}
