package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
)

// hostileDir is where the hostile test plugins live.
const hostileDir = "../testdata/plugins"

// request returns a minimal valid PluginRequest.
func request(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(abi.Request{
		APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerDryRun}, Now: time.Unix(1, 0).UTC()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostilePlugins loads every hostile plugin next to echo in one host and checks
// that each fails with its specific error while the host and echo keep serving, and
// that the failure shows in Status.
func TestHostilePlugins(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"loop", "oom", "trap", "badjson", "huge", "ungranted", "abiv2", "noexports"} {
		writeFile(t, dir, name+".wasm", pluginBytes(t, filepath.Join(hostileDir, name)))
	}
	notwasm, err := os.ReadFile(filepath.Join(hostileDir, "notwasm", "notwasm.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "notwasm.wasm", notwasm)
	writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))

	auditor := &recordingAuditor{}
	h := newHost(t, Options{Auditor: auditor, BreakerThreshold: 100})
	limits := Limits{Timeout: 400 * time.Millisecond, MemoryMiB: 64, WarmInstances: 1}
	var specs []Spec
	for _, n := range []string{"loop", "oom", "trap", "badjson", "huge", "ungranted"} {
		l := limits
		if n == "oom" || n == "huge" {
			l.Timeout = 10 * time.Second // filling 64 MiB takes the Go GC a while
		}
		specs = append(specs, Spec{Name: n, Limits: l})
	}
	if err := h.Configure(context.Background(), specs); err != nil {
		t.Fatal(err)
	}

	t.Run("load", func(t *testing.T) {
		err := h.LoadDir(context.Background(), dir)
		for _, want := range []error{ErrABIMismatch, ErrBadModule} {
			if !errors.Is(err, want) {
				t.Fatalf("LoadDir error %v: want it to include %v", err, want)
			}
		}
		loadTests := []struct {
			name   string
			detail string
		}{
			{name: "abiv2", detail: `module declares abi "routerd.plugin/v2"; this host speaks routerd.plugin/v1`},
			{name: "notwasm", detail: "not a WebAssembly binary module"},
			{name: "noexports", detail: "lacks the export routerd_manifest"},
		}
		for _, tt := range loadTests {
			st := statusOf(t, h, tt.name)
			if st.State != StateFailed || !strings.Contains(st.LastError, tt.detail) || !strings.Contains(st.LastError, tt.name+".wasm") {
				t.Errorf("%s: status %+v, want failed with %q", tt.name, st, tt.detail)
			}
		}
	})

	req := request(t)
	tests := []struct {
		name    string
		plugin  string
		hook    abi.Hook
		want    error
		detail  string
		invoke  bool // through Invoke (PluginResult checked)
		process func(t *testing.T)
	}{
		{name: "loop on_events", plugin: "loop", hook: abi.HookOnEvents, want: ErrTimeout, detail: "limits.timeout 400ms"},
		{name: "loop plan", plugin: "loop", hook: abi.HookPlan, want: ErrTimeout, detail: "limits.timeout 400ms"},
		{name: "oom", plugin: "oom", hook: abi.HookOnEvents, want: ErrMemoryLimit, detail: "limits.memoryMiB 64"},
		{name: "trap crash", plugin: "trap", hook: abi.HookOnEvents, want: ErrTrap, detail: "deliberate crash"},
		{name: "trap recovered panic", plugin: "trap", hook: abi.HookPlan, want: ErrGuest, detail: "plugin_panic"},
		{name: "badjson truncated", plugin: "badjson", hook: abi.HookOnEvents, want: ErrBadOutput, detail: "not valid JSON"},
		{name: "badjson text", plugin: "badjson", hook: abi.HookPlan, want: ErrBadOutput, detail: "not valid JSON"},
		{name: "badjson resource not an object", plugin: "badjson", hook: abi.HookExecute, want: ErrBadOutput, detail: "status.resources[0]: not a JSON object", invoke: true},
		{name: "huge 100 MB", plugin: "huge", hook: abi.HookOnEvents, want: ErrMemoryLimit, detail: "limits.memoryMiB 64"},
		{name: "huge 2 MiB", plugin: "huge", hook: abi.HookPlan, want: ErrOutputTooLarge, detail: "limit 1048576"},
		{name: "ungranted event_emit", plugin: "ungranted", hook: abi.HookOnEvents, want: ErrGuest, detail: "capability_denied"},
		{name: "ungranted kv_set", plugin: "ungranted", hook: abi.HookPlan, want: ErrGuest, detail: "capability_denied"},
		{name: "ungranted provider_request", plugin: "ungranted", hook: abi.HookExecute, want: ErrGuest, detail: "capability_denied"},
		{name: "abiv2 not loaded", plugin: "abiv2", hook: abi.HookOnEvents, want: ErrNotLoaded, detail: "abi mismatch"},
		{name: "notwasm not loaded", plugin: "notwasm", hook: abi.HookOnEvents, want: ErrNotLoaded, detail: "bad module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.invoke {
				_, err = h.Invoke(context.Background(), tt.plugin, string(tt.hook), req)
			} else {
				_, err = h.Call(context.Background(), tt.plugin, tt.hook, req)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("err %v, want %v containing %q", err, tt.want, tt.detail)
			}
			if !strings.HasPrefix(err.Error(), "plugin "+tt.plugin+": "+string(tt.hook)+": ") {
				t.Fatalf("error %q does not name plugin and hook", err)
			}
			// The host and the other plugins keep serving.
			if out, err := h.Call(context.Background(), "echo", abi.HookOnEvents, req); err != nil || string(out) != string(req) {
				t.Fatalf("echo after %s: %v", tt.name, err)
			}
			if tt.want == ErrNotLoaded {
				return
			}
			st := statusOf(t, h, tt.plugin)
			if st.ErrorsByKind[ErrorKind(tt.want)] == 0 || !strings.Contains(st.LastError, tt.detail) {
				t.Fatalf("status %+v does not show the failure", st)
			}
		})
	}
	t.Run("denials counted and audited", func(t *testing.T) {
		if st := statusOf(t, h, "ungranted"); st.DeniedHostCalls != 3 {
			t.Fatalf("denied %d, want 3", st.DeniedHostCalls)
		}
		fns := map[string]bool{}
		for _, a := range auditor.entries() {
			if a.Actor == "plugin/ungranted" {
				fns[a.Action] = true
			}
		}
		for _, f := range []string{"hostcall/event_emit", "hostcall/kv_set", "hostcall/provider_request"} {
			if !fns[f] {
				t.Fatalf("no audit for %s: %v", f, auditor.entries())
			}
		}
	})
	t.Run("hostile plugins still answer after their failures", func(t *testing.T) {
		// A fresh instance replaced each discarded one: trap's recovered-panic hook works.
		if _, err := h.Call(context.Background(), "trap", abi.HookPlan, req); !errors.Is(err, ErrGuest) {
			t.Fatalf("trap plan: %v", err)
		}
		if st := statusOf(t, h, "echo"); st.Errors != 0 || st.State != StateReady {
			t.Fatalf("echo status %+v", st)
		}
	})
}
