package host

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/kv"
)

// hostcallHost loads the hostcall plugin with grants for now, kv and log, and key "k" set.
func hostcallHost(t testing.TB, opts Options) *Host {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "hostcall.wasm", pluginBytes(t, hostcallDir))
	store := &kv.Memory{}
	if err := store.KVSet(context.Background(), "hostcall", "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	opts.KV = store
	h := newHost(t, opts)
	spec := Spec{Name: "hostcall", Grants: capability.Grants{Now: true, KV: true, Log: true}, Limits: Limits{MaxConcurrency: 1}}
	if err := h.LoadFile(context.Background(), filepath.Join(dir, "hostcall.wasm"), spec); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHostCallCost bounds what one host call allocates on the host's side. The Extism
// SDK's memory helpers looked the kernel's exports up on every use, building a wazero
// call engine with a 10 KiB stack each time (several per host call: ~100 µs and tens of
// KiB of garbage per call); a host call now allocates its request copy and response.
func TestHostCallCost(t *testing.T) {
	h := hostcallHost(t, Options{})
	const rounds = 500
	tests := []struct {
		name string
		fn   string
	}{
		{name: "now through the Go SDK", fn: "now"},
		{name: "kv_get through the Go SDK", fn: "kv_get"},
		{name: "now without the SDK", fn: "now_raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bytesPerCall := func(n int) float64 {
				in := []byte(fmt.Sprintf(`{"fn":%q,"n":%d,"key":"k"}`, tt.fn, n))
				call := func() {
					if _, err := h.Call(context.Background(), "hostcall", abi.HookOnEvents, in); err != nil {
						t.Fatal(err)
					}
				}
				call() // warm
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for range 5 {
					call()
				}
				runtime.ReadMemStats(&after)
				return float64(after.TotalAlloc-before.TotalAlloc) / 5
			}
			perHostCall := (bytesPerCall(rounds) - bytesPerCall(0)) / rounds
			if perHostCall > 512 {
				t.Fatalf("a %s host call allocates %.0f bytes on the host; want at most 512", tt.fn, perHostCall)
			}
			t.Logf("%s: %.0f bytes allocated per host call", tt.fn, perHostCall)
		})
	}
}

// TestDirectHostCallLargeResponse checks the routerd:direct path when a response does not
// fit the guest's buffer: the host keeps it and the guest fetches it with response().
func TestDirectHostCallLargeResponse(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "capcheck.wasm", pluginBytes(t, capcheckDir))
	store := &kv.Memory{}
	big := strings.Repeat("0123456789abcdef", 8<<10/16) // 8 KiB: base64 makes the response ~11 KB
	if err := store.KVSet(context.Background(), "capcheck", "big", []byte(big)); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, Options{KV: store})
	spec := Spec{Name: "capcheck", Grants: capability.Grants{KV: true}}
	if err := h.LoadFile(context.Background(), filepath.Join(dir, "capcheck.wasm"), spec); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // the guest keeps the grown buffer: small and large answers alternate
		out, err := h.Call(context.Background(), "capcheck", abi.HookOnEvents,
			capInput(t, op{Fn: "kv_get", Key: "big"}, op{Fn: "kv_get", Key: "missing"}, op{Fn: "kv_get", Key: "big"}))
		if err != nil {
			t.Fatal(err)
		}
		res := capResults(t, out)
		if len(res) != 3 || res[0].Value != big || res[1].Value != "<missing>" || res[2].Value != big {
			t.Fatalf("call %d: results %.300v", i, res)
		}
	}
}
