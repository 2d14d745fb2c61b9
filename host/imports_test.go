package host

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/internal/wasmbin"
)

// TestUnknownImports loads plugins importing functions routerd does not link: the load
// error must name the plugin file and the import, in routerd's words, not wazero's.
func TestUnknownImports(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{name: "module routerd does not link", dir: "testdata/plugins/missingimport",
			want: "plugin missing: load missing.wasm: bad module: imports env.missing_fn, which routerd does not provide"},
		{name: "function routerd does not have", dir: "testdata/plugins/missingfunc",
			want: "plugin missing: load missing.wasm: bad module: imports routerd.missing_fn, which routerd does not provide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "missing.wasm", pluginBytes(t, tt.dir))
			h := newHost(t, Options{Logger: slog.New(slog.DiscardHandler)})
			err := h.LoadFile(context.Background(), path, DefaultSpec("missing.wasm"))
			if !errors.Is(err, ErrBadModule) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("load error %q\nwant prefix %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "not instantiated") || strings.Contains(err.Error(), "is not exported") {
				t.Fatalf("load error %q still uses wazero's wording", err)
			}
			if st := statusOf(t, h, "missing"); st.State != StateFailed || !strings.Contains(st.LastError, "imports ") {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// TestImportProblem covers wazero's wordings for an unresolved import.
func TestImportProblem(t *testing.T) {
	imports := []wasmbin.Import{{Module: "wasi_snapshot_preview1", Name: "fd_write"}, {Module: "routerd", Name: "now"}, {Module: "env", Name: "f"}}
	tests := []struct {
		name string
		err  string
		want string // "" means not an import problem
	}{
		{name: "module missing", err: "instantiating module: module[env] not instantiated", want: "imports env.f, which routerd does not provide"},
		{name: "function missing", err: `instantiating module: "now" is not exported in module "routerd"`, want: "imports routerd.now, which routerd does not provide"},
		{name: "signature mismatch", err: "instantiating module: import func[routerd.now]: signature mismatch: i32_i32 != i64_i64\nwasm stack trace: ...",
			want: "imports routerd.now with a type routerd does not provide it with (signature mismatch: i32_i32 != i64_i64)"},
		{name: "other failure", err: "instantiating module: data[4]: out of bounds memory access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := importProblem(imports, errors.New(tt.err))
			if ok != (tt.want != "") || !strings.HasPrefix(got, tt.want) {
				t.Fatalf("importProblem(%q) = %q, %v; want prefix %q", tt.err, got, ok, tt.want)
			}
		})
	}
}

// TestSleepIsVirtual pins what docs/plugin-abi.md tells plugin authors: WASI clocks are
// virtual, so time.Sleep in a plugin returns at once while the guest's clock jumps ahead
// (a 20 s sleep finishes well within a 5 s limits.timeout).
func TestSleepIsVirtual(t *testing.T) {
	spec := Spec{Name: "c", Module: "capcheck.wasm", Limits: Limits{WarmInstances: 1, Timeout: 5 * time.Second}}
	h := capHost(t, Options{}, spec)
	out, err := h.Call(context.Background(), "c", abi.HookOnEvents, capInput(t, op{Fn: "sleep", Sleep: "20s"}))
	if err != nil {
		t.Fatalf("a plugin sleeping 20s: %v; want it to return at once", err)
	}
	res := capResults(t, out)
	if len(res) != 1 || !res[0].OK {
		t.Fatalf("results %+v", res)
	}
	if slept, err := time.ParseDuration(res[0].Value); err != nil || slept < 20*time.Second {
		t.Fatalf("the guest's clock says it slept %q; want at least 20s of virtual time", res[0].Value)
	}
}
