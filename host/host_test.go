package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

func TestCallEcho(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))
	h := newHost(t, Options{})
	if err := h.LoadDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	big := `{"blob":"` + strings.Repeat("x", 70000) + `"}`
	tests := []struct {
		name  string
		hook  abi.Hook
		input string
	}{
		{name: "on_events small", hook: abi.HookOnEvents, input: `{"a":1}`},
		{name: "plan", hook: abi.HookPlan, input: `{"plan":true}`},
		{name: "execute", hook: abi.HookExecute, input: `[1,2,3]`},
		{name: "buffer grows", hook: abi.HookOnEvents, input: big},
		{name: "small again after growth", hook: abi.HookOnEvents, input: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := h.Call(context.Background(), "echo", tt.hook, []byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.input {
				t.Fatalf("output %.80q, want %.80q", out, tt.input)
			}
		})
	}
	st := statusOf(t, h, "echo")
	if !st.FastPath || st.Preemption != PreemptLoopCheck || st.State != StateReady || st.Calls != uint64(len(tests)) || st.Errors != 0 || st.Version != "1.0.0" || len(st.Digest) != 64 {
		t.Fatalf("status %+v", st)
	}
	if st.P50Micros <= 0 || st.P99Micros < st.P50Micros {
		t.Fatalf("latency p50 %v p99 %v", st.P50Micros, st.P99Micros)
	}
}

func TestCallExtismPath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pdkstyle.wasm", pluginBytes(t, pdkstyleDir))
	h := newHost(t, Options{Now: func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 5e8, time.UTC) }})
	if err := h.LoadDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		hook    abi.Hook
		input   string
		want    string // output; "" means the input
		wantErr error
	}{
		{name: "echo through extism", hook: abi.HookOnEvents, input: `{"x":"y"}`},
		{name: "guest error", hook: abi.HookOnEvents, input: `{"fail":1}`, wantErr: ErrGuest},
		{name: "hook not declared", hook: abi.HookPlan, input: `{}`, wantErr: ErrNoHook},
		{name: "still serving", hook: abi.HookOnEvents, input: `{"again":2}`},
		{name: "invalid JSON output", hook: abi.HookOnEvents, input: `not json`, wantErr: ErrBadOutput},
		// routerd.now with Extism memory blocks (the kernel's exports cached per instance)
		{name: "host call through the kernel", hook: abi.HookOnEvents, input: `{"now":1}`, want: `{"now":"2026-11-23T10:00:00.5Z"}`},
		{name: "second host call on the instance", hook: abi.HookOnEvents, input: `{"now":2}`, want: `{"now":"2026-11-23T10:00:00.5Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				tt.want = tt.input
			}
			out, err := h.Call(context.Background(), "pdkstyle", tt.hook, []byte(tt.input))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "plugin pdkstyle: "+string(tt.hook)) {
					t.Fatalf("error %q does not name plugin and hook", err)
				}
				return
			}
			if err != nil || string(out) != tt.want {
				t.Fatalf("out %q err %v; want %q", out, err, tt.want)
			}
		})
	}
	if st := statusOf(t, h, "pdkstyle"); st.FastPath || st.State != StateReady {
		t.Fatalf("status %+v", st)
	}
}

func TestLoadErrors(t *testing.T) {
	echo := pluginBytes(t, echoDir)
	// An empty but valid module: magic and version, no sections, so no exports.
	empty := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	tests := []struct {
		name     string
		data     []byte
		spec     Spec
		maxBytes int64
		want     error
		detail   string
	}{
		{name: "not wasm", data: []byte("#!/bin/sh\necho hi\n"), want: ErrBadModule, detail: "not a WebAssembly binary module"},
		{name: "empty file", data: nil, want: ErrBadModule, detail: "not a WebAssembly binary module"},
		{name: "truncated module", data: echo[:len(echo)/2], want: ErrBadModule, detail: "compile"},
		{name: "no exports", data: empty, want: ErrBadModule, detail: "lacks the export routerd_manifest"},
		{name: "too large", data: echo, maxBytes: 1024, want: ErrBadModule, detail: "larger than the limit of 1024 bytes"},
		{name: "sha256 pin mismatch", data: echo, spec: Spec{SHA256: strings.Repeat("ab", 32)}, want: ErrDigestMismatch, detail: "pins abab"},
		{name: "memory limit below module minimum", data: echo, spec: Spec{Limits: Limits{MemoryMiB: 1}}, want: ErrBadModule, detail: "over limit of 16 pages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "p.wasm", tt.data)
			h := newHost(t, Options{MaxModuleBytes: tt.maxBytes})
			spec := tt.spec
			spec.Name = "p"
			err := h.LoadFile(context.Background(), path, spec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			var le *LoadError
			if !errors.As(err, &le) || le.File != "p.wasm" || le.Plugin != "p" || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("error %q: want a LoadError naming p.wasm and containing %q", err, tt.detail)
			}
			st := statusOf(t, h, "p")
			if st.State != StateFailed || !strings.Contains(st.LastError, tt.detail) {
				t.Fatalf("status %+v", st)
			}
			if _, err := h.Call(context.Background(), "p", abi.HookOnEvents, []byte(`{}`)); !errors.Is(err, ErrNotLoaded) {
				t.Fatalf("call on failed plugin: %v", err)
			}
		})
	}
}

func TestSHA256PinMatches(t *testing.T) {
	echo := pluginBytes(t, echoDir)
	dir := t.TempDir()
	path := writeFile(t, dir, "echo.wasm", echo)
	h := newHost(t, Options{})
	if err := h.LoadFile(context.Background(), path, Spec{Name: "echo"}); err != nil {
		t.Fatal(err)
	}
	digest := statusOf(t, h, "echo").Digest
	h2 := newHost(t, Options{})
	if err := h2.LoadFile(context.Background(), path, Spec{Name: "echo", SHA256: strings.ToUpper(digest)}); err != nil {
		t.Fatalf("pinned load: %v", err)
	}
}

// capHost loads capcheck under two plugin names with different grants.
func capHost(t *testing.T, opts Options, specs ...Spec) *Host {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "capcheck.wasm", pluginBytes(t, capcheckDir))
	h := newHost(t, opts)
	if err := h.Configure(context.Background(), specs); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	return h
}

// recordingEmitter stores emitted events.
type recordingEmitter struct {
	mu  sync.Mutex
	got []abi.EmitRequest
}

func (r *recordingEmitter) Emit(_ context.Context, plugin string, req abi.EmitRequest) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	return plugin + "-ev-" + req.Type, nil
}

// recordingAuditor stores audit entries.
type recordingAuditor struct {
	mu  sync.Mutex
	got []AuditEntry
}

func (r *recordingAuditor) Audit(_ context.Context, e AuditEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	return nil
}

func (r *recordingAuditor) entries() []AuditEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AuditEntry(nil), r.got...)
}

// staticConfig serves fixed documents.
type staticConfig map[string][]string

func (s staticConfig) Resources(_ context.Context, kind, name string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, d := range s[kind] {
		if name == "" || strings.Contains(d, `"name":"`+name+`"`) {
			out = append(out, json.RawMessage(d))
		}
	}
	return out, nil
}

func TestHostFunctionGrants(t *testing.T) {
	emitter := &recordingEmitter{}
	auditor := &recordingAuditor{}
	cfg := staticConfig{"OverlayPeer": {`{"kind":"OverlayPeer","metadata":{"name":"b"}}`}}
	full := Spec{Name: "full", Module: "capcheck.wasm", Grants: capability.Grants{
		Log: true, Now: true, KV: true,
		ConfigGet: capability.ConfigGetGrant{Kinds: []string{"OverlayPeer"}},
		EventEmit: capability.EventEmitGrant{Types: []string{"routerd.test.ok", "routerd.plugin.*"}},
	}}
	none := Spec{Name: "none", Module: "capcheck.wasm"}
	h := capHost(t, Options{Events: emitter, Auditor: auditor, Config: cfg, Now: func() time.Time {
		return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}}, full, none)

	tests := []struct {
		name   string
		plugin string
		op     op
		want   opResult
	}{
		{name: "kv set granted", plugin: "full", op: op{Fn: "kv_set", Key: "k", Value: "v1"}, want: opResult{OK: true}},
		{name: "kv get own key", plugin: "full", op: op{Fn: "kv_get", Key: "k"}, want: opResult{OK: true, Value: "v1"}},
		{name: "kv get missing key", plugin: "full", op: op{Fn: "kv_get", Key: "nope"}, want: opResult{OK: true, Value: "<missing>"}},
		{name: "kv empty key invalid", plugin: "full", op: op{Fn: "kv_set", Key: ""}, want: opResult{Code: string(abi.ErrCodeInvalidArgument)}},
		{name: "kv denied without grant", plugin: "none", op: op{Fn: "kv_get", Key: "k"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
		{name: "now granted", plugin: "full", op: op{Fn: "now"}, want: opResult{OK: true, Value: "2026-01-02T03:04:05Z"}},
		{name: "now denied", plugin: "none", op: op{Fn: "now"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
		{name: "log granted", plugin: "full", op: op{Fn: "log", Value: "hello"}, want: opResult{OK: true}},
		{name: "log denied", plugin: "none", op: op{Fn: "log", Value: "hello"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
		{name: "emit granted type", plugin: "full", op: op{Fn: "emit", Type: "routerd.test.ok"}, want: opResult{OK: true, Value: "full-ev-routerd.test.ok"}},
		{name: "emit granted prefix", plugin: "full", op: op{Fn: "emit", Type: "routerd.plugin.x"}, want: opResult{OK: true, Value: "full-ev-routerd.plugin.x"}},
		{name: "emit type outside grant", plugin: "full", op: op{Fn: "emit", Type: "routerd.client.ipv4.observed"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
		{name: "emit denied without grant", plugin: "none", op: op{Fn: "emit", Type: "routerd.test.ok"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
		{name: "config granted kind", plugin: "full", op: op{Fn: "config", Kind: "OverlayPeer"}, want: opResult{OK: true, Value: `{"kind":"OverlayPeer","metadata":{"name":"b"}}`}},
		{name: "config missing name", plugin: "full", op: op{Fn: "config", Kind: "OverlayPeer", Name: "zz"}, want: opResult{Code: string(abi.ErrCodeNotFound)}},
		{name: "config kind outside grant", plugin: "full", op: op{Fn: "config", Kind: "CloudProviderProfile"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
		{name: "config denied without grant", plugin: "none", op: op{Fn: "config", Kind: "OverlayPeer"}, want: opResult{Code: string(abi.ErrCodeCapabilityDenied)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := h.Call(context.Background(), tt.plugin, abi.HookOnEvents, capInput(t, tt.op))
			if err != nil {
				t.Fatal(err)
			}
			got := capResults(t, out)
			tt.want.Fn = tt.op.Fn
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// Both plugins run on one compiled module, yet each call saw its own grants.
	h.compiledMu.Lock()
	var refs []int
	for _, sc := range h.compiled {
		refs = append(refs, sc.refs)
	}
	h.compiledMu.Unlock()
	if len(refs) != 1 || refs[0] != 2 {
		t.Fatalf("compiled modules %v, want one shared by 2 plugins", refs)
	}
	// kv is private: "none" cannot see it even with a grant on another name, and
	// "full"'s key lives under "full" only.
	if v, err := (h.opts.KV).KVGet(context.Background(), "full", "k"); err != nil || string(v) != "v1" {
		t.Fatalf("store has full/k = %q, %v", v, err)
	}
	if _, err := (h.opts.KV).KVGet(context.Background(), "none", "k"); err == nil {
		t.Fatal("none/k exists")
	}
	if len(emitter.got) != 2 {
		t.Fatalf("emitted %+v", emitter.got)
	}
	// Denials are counted per plugin and audited.
	if st := statusOf(t, h, "none"); st.DeniedHostCalls != 5 {
		t.Fatalf("none denied %d, want 5 (status %+v)", st.DeniedHostCalls, st)
	}
	if st := statusOf(t, h, "full"); st.DeniedHostCalls != 2 {
		t.Fatalf("full denied %d, want 2", st.DeniedHostCalls)
	}
	audits := auditor.entries()
	var sawEmit bool
	for _, a := range audits {
		if a.Outcome != "denied" || !strings.HasPrefix(a.Actor, "plugin/") {
			t.Fatalf("audit %+v", a)
		}
		if a.Actor == "plugin/full" && a.Action == "hostcall/event_emit" && a.Target == "type=routerd.client.ipv4.observed" {
			sawEmit = true
		}
	}
	if !sawEmit || len(audits) < 5 {
		t.Fatalf("audits %+v", audits)
	}
}

func TestCallTracedRecordsHostCalls(t *testing.T) {
	full := Spec{Name: "c", Module: "capcheck.wasm", Grants: capability.Grants{KV: true}}
	h := capHost(t, Options{DryRun: true}, full)
	out, tr, err := h.CallTraced(context.Background(), "c", abi.HookOnEvents,
		capInput(t, op{Fn: "kv_set", Key: "a", Value: "1"}, op{Fn: "emit", Type: "x.y"}, op{Fn: "kv_get", Key: "a"}))
	if err != nil {
		t.Fatal(err)
	}
	res := capResults(t, out)
	// Dry-run: kv_set reports success but stores nothing.
	if !res[0].OK || res[2].Value != "<missing>" {
		t.Fatalf("results %+v", res)
	}
	want := []capability.Record{
		{Function: "kv_set", Allowed: true, Detail: "key=a"},
		{Function: "event_emit", Allowed: false, Code: "capability_denied", Detail: "type=x.y"},
		{Function: "kv_get", Allowed: true, Detail: "key=a"},
	}
	if len(tr.HostCalls) != len(want) {
		t.Fatalf("host calls %+v", tr.HostCalls)
	}
	for i, w := range want {
		g := tr.HostCalls[i]
		g.Duration = 0
		if g != w {
			t.Fatalf("host call %d: %+v, want %+v", i, g, w)
		}
	}
	if tr.Duration <= 0 || !tr.FastPath {
		t.Fatalf("trace %+v", tr)
	}
}

func TestLimits(t *testing.T) {
	// "c" has a generous timeout so that only the loop, run on "quick", times out even
	// on a loaded machine.
	limits := Limits{MemoryMiB: 48, Timeout: 10 * time.Second, MaxOutputBytes: 64 << 10, WarmInstances: 1, MaxConcurrency: 1}
	quick := limits
	quick.Timeout = 300 * time.Millisecond
	h := capHost(t, Options{BreakerThreshold: 100},
		Spec{Name: "c", Module: "capcheck.wasm", Limits: limits},
		Spec{Name: "quick", Module: "capcheck.wasm", Limits: quick})
	tests := []struct {
		name   string
		plugin string // default "c"
		op     op
		want   error
		detail string
	}{
		{name: "infinite loop", plugin: "quick", op: op{Fn: "loop"}, want: ErrTimeout, detail: "limits.timeout 300ms"},
		{name: "unbounded allocation", op: op{Fn: "alloc", MiB: 200}, want: ErrMemoryLimit, detail: "limits.memoryMiB 48"},
		{name: "exit", op: op{Fn: "exit"}, want: ErrTrap, detail: "exited with code 3"},
		{name: "stack overflow", op: op{Fn: "overflow"}, want: ErrTrap, detail: "stack overflow"},
		{name: "recovered panic", op: op{Fn: "panic"}, want: ErrGuest, detail: "asked to panic"},
		{name: "garbage output", op: op{Fn: "raw", Value: "\x00\x01garbage"}, want: ErrBadOutput, detail: "not valid JSON"},
		{name: "output too large", op: op{Fn: "bigout", MiB: 1}, want: ErrOutputTooLarge, detail: "limit 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.plugin
			if p == "" {
				p = "c"
			}
			before := statusOf(t, h, p)
			_, err := h.Call(context.Background(), p, abi.HookOnEvents, capInput(t, tt.op))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			var ce *CallError
			if !errors.As(err, &ce) || ce.Plugin != p || ce.Hook != "on_events" || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("error %q: want a CallError for %s/on_events containing %q", err, p, tt.detail)
			}
			// The plugin keeps serving.
			out, err := h.Call(context.Background(), p, abi.HookOnEvents, capInput(t, op{Fn: "kv_get", Key: "x"}))
			if err != nil {
				t.Fatalf("after %s: %v", tt.name, err)
			}
			if r := capResults(t, out); len(r) != 1 || r[0].Code != "capability_denied" {
				t.Fatalf("after %s: %+v", tt.name, r)
			}
			st := statusOf(t, h, p)
			if st.Errors != before.Errors+1 || st.ErrorsByKind[ErrorKind(tt.want)] != before.ErrorsByKind[ErrorKind(tt.want)]+1 {
				t.Fatalf("status errors %+v (before %+v)", st.ErrorsByKind, before.ErrorsByKind)
			}
			if !strings.Contains(st.LastError, tt.detail) {
				t.Fatalf("last error %q", st.LastError)
			}
		})
	}
}

func TestDiscardedInstanceIsNotReused(t *testing.T) {
	// With one instance, state written by a call survives to the next call unless
	// the instance was discarded: alloc grows memory that only a new instance resets.
	spec := Spec{Name: "c", Module: "capcheck.wasm", Limits: Limits{MemoryMiB: 40, WarmInstances: 1, MaxConcurrency: 1}}
	h := capHost(t, Options{BreakerThreshold: 100}, spec)
	call := func(ops ...op) error {
		_, err := h.Call(context.Background(), "c", abi.HookOnEvents, capInput(t, ops...))
		return err
	}
	// 20 MiB kept reachable: fits once.
	if err := call(op{Fn: "alloc", MiB: 20}); err != nil {
		t.Fatal(err)
	}
	// Another 20 MiB on the same (reused) instance exceeds 40 MiB.
	if err := call(op{Fn: "alloc", MiB: 20}); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("second alloc on the reused instance: %v, want memory limit", err)
	}
	// A fresh instance replaced the broken one: 20 MiB fits again.
	if err := call(op{Fn: "alloc", MiB: 20}); err != nil {
		t.Fatalf("after discard: %v", err)
	}
}

// TestCircuitBreaker runs in a synctest bubble: the cool-downs pass on the bubble's fake
// clock, so the test waits for nothing and cannot race the breaker's timing.
func TestCircuitBreaker(t *testing.T) {
	pluginBytes(t, capcheckDir) // build outside the bubble (a child process)
	synctest.Test(t, func(t *testing.T) {
		spec := Spec{Name: "c", Module: "capcheck.wasm", Limits: Limits{WarmInstances: 1}}
		const cooldown = 300 * time.Millisecond
		h := capHost(t, Options{BreakerThreshold: 3, BreakerCooldown: cooldown}, spec)
		bad := capInput(t, op{Fn: "raw", Value: "nope"})
		good := capInput(t, op{Fn: "now"})
		for i := range 3 {
			if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, bad); !errors.Is(err, ErrBadOutput) {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, good); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("after 3 failures: %v, want circuit open", err)
		}
		if st := statusOf(t, h, "c"); st.State != StateCircuitOpen || st.Breaker != "open" {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(cooldown - time.Millisecond) // fake clock: just before the cool-down ends
		if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, good); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("1 ms before the cool-down ends: %v, want circuit open", err)
		}
		time.Sleep(time.Millisecond)
		if st := statusOf(t, h, "c"); st.State != StateHalfOpen {
			t.Fatalf("after cool-down: %+v", st)
		}
		// The half-open trial fails: open again.
		if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, bad); !errors.Is(err, ErrBadOutput) {
			t.Fatal(err)
		}
		if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, good); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("after failed trial: %v", err)
		}
		time.Sleep(cooldown)
		if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, good); err != nil {
			t.Fatalf("successful trial: %v", err)
		}
		if st := statusOf(t, h, "c"); st.State != StateReady {
			t.Fatalf("after recovery: %+v", st)
		}
	})
}

func TestConcurrentCalls(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))
	h := newHost(t, Options{})
	if err := h.Configure(context.Background(), []Spec{{Name: "echo", Limits: Limits{MaxConcurrency: 3, WarmInstances: 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				in := []byte(`{"g":` + itoa(g) + `,"i":` + itoa(i) + `}`)
				out, err := h.Call(context.Background(), "echo", abi.HookOnEvents, in)
				if err != nil || !bytes.Equal(out, in) {
					errs <- errors.Join(err, errors.New("output "+string(out)+" for "+string(in)))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := statusOf(t, h, "echo")
	if st.Calls != 800 || st.IdleInstances > 2 || st.InFlight != 0 {
		t.Fatalf("status %+v", st)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPreemptionModes(t *testing.T) {
	tests := []struct {
		name string
		mode string
		want string
	}{
		{name: "loop checks (default)", mode: "", want: PreemptLoopCheck},
		{name: "close on context done", mode: PreemptCloseOnDone, want: PreemptCloseOnDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Name: "c", Module: "capcheck.wasm", Limits: Limits{Timeout: 300 * time.Millisecond, WarmInstances: 1}}
			h := capHost(t, Options{Preemption: tt.mode}, spec)
			if st := statusOf(t, h, "c"); st.Preemption != tt.want {
				t.Fatalf("preemption %q, want %q", st.Preemption, tt.want)
			}
			start := time.Now()
			if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, capInput(t, op{Fn: "loop"})); !errors.Is(err, ErrTimeout) {
				t.Fatalf("loop: %v, want timeout", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("loop stopped after %v", d)
			}
			out, err := h.Call(context.Background(), "c", abi.HookOnEvents, capInput(t, op{Fn: "kv_get", Key: "k"}))
			if err != nil || capResults(t, out)[0].Code != "capability_denied" {
				t.Fatalf("after the timeout: %q %v", out, err)
			}
		})
	}
}

// TestBreakerKeepsCause checks that the failure that opened a plugin's breaker stays in
// its status next to the breaker state, although the calls the breaker then refuses
// become the last error.
func TestBreakerKeepsCause(t *testing.T) {
	spec := Spec{Name: "c", Module: "capcheck.wasm", Limits: Limits{WarmInstances: 1, Timeout: 50 * time.Millisecond}}
	h := capHost(t, Options{BreakerThreshold: 2, BreakerCooldown: time.Hour}, spec)
	loop := capInput(t, op{Fn: "loop"})
	for i := range 2 {
		if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, loop); !errors.Is(err, ErrTimeout) {
			t.Fatalf("call %d: %v, want a timeout", i, err)
		}
	}
	if _, err := h.Call(context.Background(), "c", abi.HookOnEvents, capInput(t, op{Fn: "now"})); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after 2 timeouts: %v, want circuit open", err)
	}
	st := statusOf(t, h, "c")
	if st.Breaker != "open" || !strings.Contains(st.LastError, "circuit open") {
		t.Fatalf("breaker %q, last error %q", st.Breaker, st.LastError)
	}
	if st.BreakerCauseKind != "timeout" || !strings.Contains(st.BreakerCause, "did not finish within") || st.BreakerCauseAt == nil {
		t.Fatalf("breaker cause %q (%q at %v), want the timeout that opened it", st.BreakerCause, st.BreakerCauseKind, st.BreakerCauseAt)
	}
	if p := st.Problem(); !strings.HasPrefix(p, "circuit open after ") || !strings.Contains(p, "did not finish within") {
		t.Fatalf("Problem() = %q", p)
	}
	// A new version closes the breaker: no cause is shown any more.
	if err := h.Configure(context.Background(), []Spec{{Name: "c", Module: "capcheck.wasm", Limits: Limits{WarmInstances: 1, Timeout: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, h, "c"); st.Breaker != "closed" || st.BreakerCause != "" || st.Problem() != st.LastError {
		t.Fatalf("after reload: breaker %q cause %q", st.Breaker, st.BreakerCause)
	}
}
