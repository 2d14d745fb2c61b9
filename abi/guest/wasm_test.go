package guest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/fakehost"
	"routerd.net/routerd/host/wasmbuild"
)

// These tests run real modules built from source: plugins/echo and testdata/sdkcheck,
// through the Extism go-sdk (the Extism-style exports and the host functions) and through
// bare wazero (the fast path).

// fakeHost implements the routerd host functions for the tests.
type fakeHost struct {
	logs []abi.LogRequest
	kv   map[string][]byte
	now  time.Time
}

// host returns the fake host serving h's functions in both conventions.
func (h *fakeHost) host(t *testing.T) *fakehost.Host {
	return fakehost.New(func(fn string, b []byte) any {
		bad := func(err error) any {
			t.Errorf("%s: request %q: %v", fn, b, err)
			return abi.Response{Error: abi.NewError(abi.ErrCodeInvalidArgument, err.Error())}
		}
		switch fn {
		case abi.FuncLog:
			var r abi.LogRequest
			if err := json.Unmarshal(b, &r); err != nil {
				return bad(err)
			}
			h.logs = append(h.logs, r)
			return abi.Response{}
		case abi.FuncKVSet:
			var r abi.KVSetRequest
			if err := json.Unmarshal(b, &r); err != nil {
				return bad(err)
			}
			h.kv[r.Key] = r.Value
			return abi.Response{}
		case abi.FuncKVGet:
			var r abi.KVGetRequest
			if err := json.Unmarshal(b, &r); err != nil {
				return bad(err)
			}
			v, ok := h.kv[r.Key]
			return abi.KVGetResponse{Found: ok, Value: v}
		case abi.FuncNow:
			return abi.NowResponse{Now: h.now}
		case abi.FuncEventEmit:
			return abi.EmitResponse{Error: abi.NewError(abi.ErrCodeCapabilityDenied, "event_emit is not granted")}
		}
		return abi.Response{Error: abi.NewError(abi.ErrCodeUnsupported, fn+" is not faked")}
	})
}

func newExtismPlugin(t *testing.T, path string, fh *fakehost.Host) *extism.Plugin {
	t.Helper()
	ctx := context.Background()
	m := extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: path}}, Config: map[string]string{"mode": "test"}}
	p, err := extism.NewPlugin(fh.Context(ctx), m, extism.PluginConfig{EnableWasi: true}, fh.Functions())
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	return p
}

func sampleRequest() []byte {
	return []byte(`{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","batchID":"batch-7",
"spec":{"trigger":{"type":"EventSubscription","topic":"claims"},"now":"2026-11-23T10:00:00Z","dryRun":true,
"events":[{"id":"01JEV1","group":"edge","sourceNode":"node-a","type":"routerd.client.ipv4.observed","subject":"10.88.60.9",
"dedupeKey":"k1","payload":{"address":"10.88.60.9/32","note":"quote \" and \\ and \u00e9 <tag>"},"observedAt":"2026-11-23T09:59:58Z","expiresAt":"2026-11-23T10:29:58Z"}],
"context":{"resources":[{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"AddressMobilityDomain","metadata":{"name":"lab"},"spec":{"prefix":"10.88.60.0/24"}}]},
"actionPlan":{"name":"p1","provider":"aws","action":"assign-secondary-ip","target":{"nic":"eni-1"},"parameters":{"address":"10.88.60.9"},
"preconditions":[{"name":"unassigned","expect":"true"}],"expectedEffects":["address moves"],"undo":{"action":"unassign-secondary-ip"}},
"unknownFutureField":{"x":[1,2,3]}}}`)
}

// wantMirror is what sdkcheck's on_events returns for sampleRequest.
func wantMirror() abi.Result {
	return abi.Result{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginResult, Status: abi.ResultStatus{
		ObservedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		TTL:        "1m",
		Resources:  []json.RawMessage{json.RawMessage(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"AddressMobilityDomain","metadata":{"name":"lab"},"spec":{"prefix":"10.88.60.0/24"}}`)},
		Directives: []abi.Directive{{Op: "note", Target: abi.ObjectRef{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, Name: "batch-7"},
			Reason: "EventSubscription/claims dryRun=true"}},
		ActionPlans: []abi.ActionPlan{{Name: "p1", Provider: "aws", Action: "assign-secondary-ip", Target: map[string]string{"nic": "eni-1"},
			Parameters: map[string]string{"address": "10.88.60.9"}, Preconditions: []abi.Precondition{{Name: "unassigned", Expect: "true"}},
			ExpectedEffects: []string{"address moves"}, Undo: &abi.ActionUndo{Action: "unassign-secondary-ip"}}},
		Events: []abi.ResultEvent{{Type: "routerd.client.ipv4.observed", Message: "10.88.60.9", Attributes: map[string]string{
			"id": "01JEV1", "group": "edge", "sourceNode": "node-a", "dedupeKey": "k1",
			"observedAt": "2026-11-23T09:59:58Z", "expiresAt": "2026-11-23T10:29:58Z",
			"payload.address": "10.88.60.9/32", "payload.note": "quote \" and \\ and é <tag>"}}},
	}}
}

func checkMirror(t *testing.T, out []byte) {
	t.Helper()
	got, err := abi.DecodeResult(out)
	if err != nil {
		t.Fatalf("decode result %s: %v", out, err)
	}
	want := wantMirror()
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("result mismatch\n got %+v\nwant %+v\njson %s", *got, want, out)
	}
}

func TestExtismExports(t *testing.T) {
	path := wasmbuild.ForTest(t, "abi/guest/testdata/sdkcheck")
	host := &fakeHost{kv: map[string][]byte{}, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := newExtismPlugin(t, path, host.host(t))

	t.Run("manifest", func(t *testing.T) {
		rc, out, err := p.Call(abi.ExportManifest, nil)
		if err != nil || rc != 0 {
			t.Fatalf("rc=%d err=%v", rc, err)
		}
		m, err := abi.DecodeManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		want := abi.Manifest{Name: "sdkcheck", Version: "0.0.1", ABI: abi.ManifestVersion,
			Hooks:        []abi.Hook{abi.HookOnEvents, abi.HookPlan, abi.HookExecute},
			Capabilities: []abi.Capability{abi.CapLog, abi.CapKV, abi.CapNow, abi.CapEventEmit}}
		if !reflect.DeepEqual(*m, want) {
			t.Fatalf("manifest = %+v, want %+v", *m, want)
		}
	})
	t.Run("on_events mirrors the request", func(t *testing.T) {
		for i := 0; i < 3; i++ { // buffers are reused across calls
			rc, out, err := p.Call(string(abi.HookOnEvents), sampleRequest())
			if err != nil || rc != 0 {
				t.Fatalf("rc=%d err=%v", rc, err)
			}
			checkMirror(t, out)
		}
	})
	t.Run("panic becomes an error and the instance keeps serving", func(t *testing.T) {
		rc, _, err := p.Call(string(abi.HookPlan), sampleRequest())
		if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), "plugin_panic: panic in plan: deliberate panic in plan") {
			t.Fatalf("rc=%d err=%v; want plugin_panic", rc, err)
		}
		if rc, out, err := p.Call(string(abi.HookOnEvents), sampleRequest()); err != nil || rc != 0 {
			t.Fatalf("after panic: rc=%d err=%v", rc, err)
		} else {
			checkMirror(t, out)
		}
	})
	t.Run("abi v2 request refused", func(t *testing.T) {
		req := strings.Replace(string(sampleRequest()), "routerd.plugin/v1.0", "routerd.plugin/v2.0", 1)
		rc, _, err := p.Call(string(abi.HookOnEvents), []byte(req))
		if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), "abi_mismatch:") {
			t.Fatalf("rc=%d err=%v; want abi_mismatch", rc, err)
		}
	})
	t.Run("malformed request", func(t *testing.T) {
		rc, _, err := p.Call(string(abi.HookOnEvents), []byte(`{"spec":`))
		if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), "invalid_argument:") {
			t.Fatalf("rc=%d err=%v; want invalid_argument", rc, err)
		}
	})
	t.Run("host functions", func(t *testing.T) {
		var logs []string
		extism.SetLogLevel(extism.LogLevelInfo) // process-wide; off by default
		defer extism.SetLogLevel(extism.LogLevelOff)
		p.SetLogger(func(_ extism.LogLevel, msg string) { logs = append(logs, msg) })
		if _, _, err := p.Call(string(abi.HookExecute), sampleRequest()); err != nil { // first call: vars "x"
			t.Fatal(err)
		}
		rc, out, err := p.Call(string(abi.HookExecute), sampleRequest())
		if err != nil || rc != 0 {
			t.Fatalf("rc=%d err=%v", rc, err)
		}
		res, err := abi.DecodeResult(out)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]abi.ActionResult{}
		for _, r := range res.Status.ActionResults {
			got[r.Name] = r
		}
		checks := []struct {
			name    string
			outcome string
			attrs   map[string]string
			message string
		}{
			{name: "log", outcome: abi.ActionSucceeded},
			{name: "kv_set", outcome: abi.ActionSucceeded},
			{name: "kv_get", outcome: abi.ActionSucceeded, attrs: map[string]string{"value": "hi\x00there", "found": "true"}},
			{name: "kv_get_missing", outcome: abi.ActionSucceeded, attrs: map[string]string{"found": "false"}},
			{name: "now", outcome: abi.ActionSucceeded, attrs: map[string]string{"now": "2030-01-02T03:04:05Z"}},
			{name: "event_emit", outcome: abi.ActionFailed, attrs: map[string]string{"id": ""}, message: "capability_denied: event_emit is not granted"},
			{name: "config", outcome: abi.ActionSucceeded, attrs: map[string]string{"mode": "test", "found": "true", "missingFound": "false"}},
			{name: "vars", outcome: abi.ActionSucceeded, attrs: map[string]string{"calls": "xx"}},
		}
		for _, c := range checks {
			r, ok := got[c.name]
			if !ok {
				t.Errorf("%s: no result", c.name)
				continue
			}
			if r.Outcome != c.outcome || r.Message != c.message || (c.attrs != nil && !reflect.DeepEqual(r.Attributes, c.attrs)) {
				t.Errorf("%s = %+v; want outcome %s message %q attrs %v", c.name, r, c.outcome, c.message, c.attrs)
			}
		}
		if !slices.Contains(logs, "sdkcheck execute ran") {
			t.Errorf("Extism log lines = %q", logs)
		}
		if len(host.logs) != 2 || host.logs[0].Level != abi.LogWarn || host.logs[0].Message != "hello from sdkcheck" || host.logs[0].Attrs["batch"] != "batch-7" {
			t.Errorf("host logs = %+v", host.logs)
		}
	})
}

func TestEchoImportsNoHostFunctions(t *testing.T) {
	path := wasmbuild.ForTest(t, "plugins/echo")
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cm.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod == abi.HostModule || mod == abi.HostModuleDirect {
			t.Errorf("echo imports host function %s.%s it never calls", mod, name)
		}
	}
	exports := cm.ExportedFunctions()
	for _, name := range []string{abi.ExportManifest, abi.ExportBuffer, abi.ExportCall, "on_events", "plan", "execute", "_initialize"} {
		if _, ok := exports[name]; !ok {
			t.Errorf("echo does not export %s", name)
		}
	}
}

// fastModule instantiates a plugin on bare wazero with WASI and a stub Extism kernel whose
// functions fail if called (the fast path must not need them).
func fastModule(t *testing.T, path string) (api.Module, context.Context) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	stubs := map[string]wazero.HostModuleBuilder{}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		b, ok := stubs[mod]
		if !ok {
			b = rt.NewHostModuleBuilder(mod)
			stubs[mod] = b
		}
		fname := mod + "." + name
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			panic(fmt.Sprintf("fast path called %s", fname))
		}), f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	for mod, b := range stubs {
		if _, err := b.Instantiate(ctx); err != nil {
			t.Fatalf("stub %s: %v", mod, err)
		}
	}
	m, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	return m, ctx
}

// fastCall writes in into the guest buffer and runs routerd_call.
func fastCall(ctx context.Context, m api.Module, hook abi.HookID, in []byte) ([]byte, error) {
	res, err := m.ExportedFunction(abi.ExportBuffer).Call(ctx, uint64(len(in)))
	if err != nil {
		return nil, err
	}
	ptr := uint32(res[0])
	if !m.Memory().Write(ptr, in) {
		return nil, errors.New("buffer out of range")
	}
	res, err = m.ExportedFunction(abi.ExportCall).Call(ctx, uint64(hook), uint64(len(in)))
	if err != nil {
		return nil, err
	}
	p, n, failed := abi.DecodeCallResult(res[0])
	out, ok := m.Memory().Read(p, n)
	if !ok {
		return nil, fmt.Errorf("result [%#x,+%d) out of range", p, n)
	}
	if failed {
		return nil, errors.New(string(out))
	}
	return append([]byte(nil), out...), nil
}

func TestFastPath(t *testing.T) {
	t.Run("echo", func(t *testing.T) {
		m, ctx := fastModule(t, wasmbuild.ForTest(t, "plugins/echo"))
		for _, size := range []int{0, 1, 3072, 100000, 10} {
			in := []byte(strings.Repeat("x", size))
			for _, hook := range []abi.HookID{abi.HookIDOnEvents, abi.HookIDPlan, abi.HookIDExecute} {
				out, err := fastCall(ctx, m, hook, in)
				if err != nil || string(out) != string(in) {
					t.Fatalf("hook %s size %d: got %d bytes, err %v", hook, size, len(out), err)
				}
			}
		}
		out, err := fastCall(ctx, m, abi.HookIDManifest, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := abi.DecodeManifest(out); err != nil {
			t.Fatalf("manifest %s: %v", out, err)
		}
		if _, err := fastCall(ctx, m, abi.HookID(42), nil); err == nil || !strings.HasPrefix(err.Error(), "invalid_argument: unknown hook id 42") {
			t.Fatalf("unknown hook: %v", err)
		}
	})
	t.Run("typed handlers", func(t *testing.T) {
		m, ctx := fastModule(t, wasmbuild.ForTest(t, "abi/guest/testdata/sdkcheck"))
		out, err := fastCall(ctx, m, abi.HookIDOnEvents, sampleRequest())
		if err != nil {
			t.Fatal(err)
		}
		checkMirror(t, out)
		if _, err := fastCall(ctx, m, abi.HookIDPlan, sampleRequest()); err == nil || !strings.HasPrefix(err.Error(), "plugin_panic:") {
			t.Fatalf("plan: %v; want plugin_panic", err)
		}
		out, err = fastCall(ctx, m, abi.HookIDOnEvents, sampleRequest())
		if err != nil {
			t.Fatal(err)
		}
		checkMirror(t, out)
	})
	t.Run("length beyond buffer", func(t *testing.T) {
		m, ctx := fastModule(t, wasmbuild.ForTest(t, "plugins/echo"))
		if _, err := m.ExportedFunction(abi.ExportBuffer).Call(ctx, 16); err != nil {
			t.Fatal(err)
		}
		res, err := m.ExportedFunction(abi.ExportCall).Call(ctx, uint64(abi.HookIDOnEvents), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, failed := abi.DecodeCallResult(res[0]); !failed {
			t.Fatal("routerd_call accepted a length beyond its buffer")
		}
	})
}

// TestGuestMemoryStaysBounded makes many calls that each allocate 1 MiB of garbage: the
// guest's linear memory must stay bounded, which requires the garbage collector to finish
// its cycles between calls (see dispatchID).
func TestGuestMemoryStaysBounded(t *testing.T) {
	m, ctx := fastModule(t, wasmbuild.ForTest(t, "abi/guest/testdata/gcchurn"))
	const calls, limit = 1000, 64 << 20
	for i := 0; i < calls; i++ {
		if _, err := fastCall(ctx, m, abi.HookIDOnEvents, []byte("{}")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if size := m.Memory().Size(); size > limit {
			t.Fatalf("after %d calls of 1 MiB garbage each the guest has %d MiB of memory: the GC is not keeping up", i+1, size>>20)
		}
	}
	t.Logf("guest memory after %d calls: %d MiB", calls, m.Memory().Size()>>20)
}
