package wazeroaccess

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"routerd.net/routerd/host/wasmbuild"
)

// TestPinnedVersions fails when go.mod requires wazero or Extism versions other than the
// ones this package was checked against, or replaces them: bump PinnedWazero and
// PinnedExtism only after TestLayout and TestBodiesUnusedAfterCompile pass and the read
// sites of wasm.Code.Body in the new wazero were reviewed.
func TestPinnedVersions(t *testing.T) {
	gomod, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"github.com/tetratelabs/wazero": PinnedWazero,
		"github.com/extism/go-sdk":      PinnedExtism,
	} {
		var got []string
		for _, line := range strings.Split(string(gomod), "\n") {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
			if len(f) >= 2 && f[0] == path {
				got = append(got, f[1])
			}
			if strings.Contains(line, path) && strings.Contains(line, "=>") {
				t.Errorf("go.mod replaces %s (%q); wazeroaccess is checked against %s %s only", path, strings.TrimSpace(line), path, want)
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("go.mod requires %s %v; wazeroaccess is checked against %s: review this package, then update PinnedWazero/PinnedExtism", path, got, want)
		}
	}
}

// trapModule is a module with a name section whose export run (() -> i32) calls inner,
// which traps: a wasm stack trace names both functions.
func trapModule() []byte {
	sec := func(id byte, payload ...byte) []byte { return append([]byte{id, byte(len(payload))}, payload...) }
	names := []byte{0x04, 'n', 'a', 'm', 'e', 0x01, 0x0E, 0x02, 0x00, 0x03, 'r', 'u', 'n', 0x01, 0x05, 'i', 'n', 'n', 'e', 'r'}
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	m = append(m, sec(1, 0x01, 0x60, 0x00, 0x01, 0x7F)...)                                // type () -> i32
	m = append(m, sec(3, 0x02, 0x00, 0x00)...)                                            // two functions
	m = append(m, sec(5, 0x01, 0x00, 0x01)...)                                            // memory (Extism needs one)
	m = append(m, sec(7, 0x01, 0x03, 'r', 'u', 'n', 0x00, 0x00)...)                       // export run
	m = append(m, sec(10, 0x02, 0x04, 0x00, 0x10, 0x01, 0x0B, 0x03, 0x00, 0x00, 0x0B)...) // run: call inner; inner: unreachable
	return append(m, sec(0, names...)...)
}

// counter is a function listener counting calls and reading the stack at each.
type counter struct {
	calls  int
	frames []string
}

func (c *counter) NewFunctionListener(api.FunctionDefinition) experimental.FunctionListener { return c }

func (c *counter) Before(_ context.Context, _ api.Module, def api.FunctionDefinition, _ []uint64, it experimental.StackIterator) {
	c.calls++
	if len(c.frames) < 64 {
		var fs []string
		for it.Next() {
			f := it.Function()
			fs = append(fs, fmt.Sprintf("%s@%d", f.Definition().DebugName(), f.SourceOffsetForPC(it.ProgramCounter())))
		}
		c.frames = append(c.frames, strings.Join(fs, "<"))
	}
}

func (*counter) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (*counter) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// How a run treats the function bodies after compiling.
const (
	keep   = "keep"
	drop   = "drop"   // DropFunctionBodies
	poison = "poison" // same lengths, invalid content: a read shows as garbage, not as an empty function
)

// compile compiles wasm with cache and a listener and treats its bodies per mode.
func compile(t *testing.T, wasm []byte, cache wazero.CompilationCache, mode string, l *counter) *extism.CompiledPlugin {
	t.Helper()
	lctx := experimental.WithFunctionListenerFactory(context.Background(), l)
	cfg := extism.PluginConfig{EnableWasi: true, RuntimeConfig: wazero.NewRuntimeConfig().WithCompilationCache(cache)}
	cp, err := extism.NewCompiledPlugin(lctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: wasm, Name: "main"}}}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	switch mode {
	case drop:
		n, err = DropFunctionBodies(cp)
	case poison:
		n, err = replaceBodies(cp, func(f reflect.Value) {
			if f.Len() > 0 {
				junk := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
				for i := range f.Len() {
					junk.Index(i).SetUint(0xFF) // not an opcode, not a value type
				}
				f.Set(junk)
			}
		})
	default:
		n = 1
	}
	if err != nil || n == 0 {
		t.Fatalf("%s function bodies = %d, %v", mode, n, err)
	}
	return cp
}

// exercise runs the paths the host uses after compiling on cp: two fresh instances'
// results (for a trap, the error with its wasm stack trace) and what the function
// listener saw (calls, and the stack at the first calls).
func exercise(t *testing.T, cp *extism.CompiledPlugin, l *counter, call, input string) string {
	t.Helper()
	ctx := context.Background()
	lctx := experimental.WithFunctionListenerFactory(ctx, l)
	var out []string
	for range 2 {
		p, err := cp.Instance(lctx, extism.PluginInstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		rc, res, err := p.CallWithContext(lctx, call, []byte(input))
		out = append(out, fmt.Sprintf("rc=%d err=%v out=%q", rc, err, res))
		p.Close(ctx)
	}
	out = append(out, fmt.Sprintf("listener calls=%d", l.calls))
	out = append(out, l.frames...)
	return strings.Join(out, "\n")
}

// TestBodiesUnusedAfterCompile runs the paths the host uses after compiling — new
// instances, calls, a trap and its wasm stack trace, function listeners with stack
// iterators — on a module whose function bodies were kept, dropped or poisoned, in
// three cache situations: a fresh compilation cache (compiled), a cache already holding
// the module (the compiled code is reused), and a second compile of a module whose
// first, still open copy has its bodies dropped or poisoned. Every run must match the
// kept-bodies run of the same situation.
func TestBodiesUnusedAfterCompile(t *testing.T) {
	echo, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/echo"))
	if err != nil {
		t.Fatal(err)
	}
	modules := []struct {
		name        string
		wasm        []byte
		call, input string
		want        string // in the kept-bodies output
	}{
		{name: "go echo", wasm: echo, call: "on_events", input: "routerd", want: `out="routerd"`},
		{name: "trap with stack trace", wasm: trapModule(), call: "run", want: ".inner() i32"},
	}
	ctx := context.Background()
	for _, m := range modules {
		for _, situation := range []string{"cache miss", "cache hit", "recompile after release"} {
			t.Run(m.name+"/"+situation, func(t *testing.T) {
				outs := map[string]string{}
				modes := []string{keep, poison}
				if situation == "cache miss" {
					modes = append(modes, drop) // what the host does; poison is the stricter check
				}
				for _, mode := range modes {
					cache := wazero.NewCompilationCache()
					defer cache.Close(ctx)
					l := &counter{}
					var cp *extism.CompiledPlugin
					switch situation {
					case "cache miss":
						cp = compile(t, m.wasm, cache, mode, l)
					case "cache hit":
						first := compile(t, m.wasm, cache, keep, l)
						first.Close(ctx)
						cp = compile(t, m.wasm, cache, mode, l)
					default:
						first := compile(t, m.wasm, cache, mode, l)
						defer first.Close(ctx)
						cp = compile(t, m.wasm, cache, keep, l)
					}
					outs[mode] = exercise(t, cp, l, m.call, m.input)
					cp.Close(ctx)
				}
				if !strings.Contains(outs[keep], m.want) || !strings.Contains(outs[keep], "listener calls=") || strings.Contains(outs[keep], "listener calls=0\n") {
					t.Fatalf("kept-bodies run lacks %q or listener calls:\n%s", m.want, outs[keep])
				}
				for _, mode := range modes[1:] {
					if outs[mode] != outs[keep] {
						t.Errorf("bodies %s:\n%s\nbodies kept:\n%s", mode, outs[mode], outs[keep])
					}
				}
			})
		}
	}
}
