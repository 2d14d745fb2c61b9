package preempt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"routerd.net/routerd/host/wasmbuild"
)

// module assembles a binary module from (id, payload) sections.
func module(secs ...section) []byte {
	out := append([]byte(nil), magic...)
	for _, s := range secs {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.payload)))
		out = append(out, s.payload...)
	}
	return out
}

// body wraps an expression (ending in 0x0B) into a code entry without locals.
func body(expr ...byte) []byte {
	b := append([]byte{0x00}, expr...)
	return append(appendU32(nil, uint32(len(b))), b...)
}

var (
	typeVoid  = section{1, []byte{0x01, 0x60, 0x00, 0x00}}                                     // (func)
	oneFunc   = section{3, []byte{0x01, 0x00}}                                                 // func 0: type 0
	oneMemory = section{5, []byte{0x01, 0x00, 0x01}}                                           // memory 0: min 1 page
	exportRun = section{7, []byte{0x01, 0x03, 'r', 'u', 'n', 0x00, 0x00}}                      // export "run" func 0
	spinCode  = section{10, append([]byte{0x01}, body(0x03, 0x40, 0x0C, 0x00, 0x0B, 0x0B)...)} // loop br 0 end
)

// yieldHost provides the yield import: it returns 1 once stop is set and counts its
// calls.
type yieldHost struct {
	stop  atomic.Bool
	calls atomic.Int64
}

// register adds the routerd_preempt host module to rt.
func (y *yieldHost) register(t testing.TB, rt wazero.Runtime) {
	t.Helper()
	ctx := context.Background()
	if _, err := rt.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(func() uint32 {
		y.calls.Add(1)
		if y.stop.Load() {
			return 1
		}
		return 0
	}).Export(ImportName).
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
}

// instantiate compiles and instantiates m with a plain runtime (no close-on-done).
func instantiate(t *testing.T, m []byte) (api.Module, *yieldHost) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	if _, err := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithFunc(func() {}).Export("f").
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	y := &yieldHost{}
	y.register(t, rt)
	mod, err := rt.InstantiateWithConfig(ctx, m, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate instrumented module: %v", err)
	}
	return mod, y
}

func TestStopsInfiniteLoop(t *testing.T) {
	tests := []struct {
		name string
		secs []section
	}{
		{name: "no globals, no exports but run", secs: []section{typeVoid, oneFunc, oneMemory, exportRun, spinCode}},
		{name: "imported and defined globals", secs: []section{
			typeVoid,
			{2, []byte{0x01, 0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x00}}, // import env.f (func type 0): function index 0
			{3, []byte{0x01, 0x00}},
			oneMemory,
			{6, []byte{0x02, 0x7F, 0x01, 0x41, 0x07, 0x0B, 0x7E, 0x00, 0x42, 0x01, 0x0B}}, // two globals
			{7, []byte{0x02, 0x03, 'r', 'u', 'n', 0x00, 0x01, 0x01, 'g', 0x03, 0x00}},     // run = func 1, g = global 0
			{10, append([]byte{0x01}, body(0x03, 0x40, 0x10, 0x00, 0x23, 0x01, 0x1A, 0x0C, 0x00, 0x0B, 0x0B)...)},
			{0, append([]byte{0x04, 'n', 'o', 't', 'e'}, "custom section kept"...)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Instrument(module(tt.secs...))
			if err != nil {
				t.Fatal(err)
			}
			mod, y := instantiate(t, out)
			if g := mod.ExportedGlobal("g"); g != nil && g.Get() != 7 {
				t.Fatalf("existing global g = %d, want 7", g.Get())
			}
			done := make(chan error, 1)
			go func() {
				_, err := mod.ExportedFunction("run").Call(context.Background())
				done <- err
			}()
			// The spinning guest returns to Go through the yield import.
			for y.calls.Load() < 3 {
				select {
				case err := <-done:
					t.Fatalf("spin returned early: %v", err)
				default:
					runtime.Gosched()
				}
			}
			y.stop.Store(true)
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("spin ended with %v, want an unreachable trap", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the stop global did not stop the loop")
			}
		})
	}
}

func TestInstrumentRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "not wasm", in: []byte("hello")},
		{name: "truncated section", in: append(append([]byte(nil), magic...), 0x01, 0x10, 0x00)},
		{name: "SIMD instruction", in: module(typeVoid, oneFunc, oneMemory, section{10, append([]byte{0x01}, body(0xFD, 0x0C, 0x0B)...)})},
		{name: "tail call", in: module(typeVoid, oneFunc, oneMemory, section{10, append([]byte{0x01}, body(0x12, 0x00, 0x0B)...)})},
		{name: "code entry overruns", in: module(typeVoid, oneFunc, oneMemory, section{10, []byte{0x01, 0x20, 0x00}})},
		{name: "GC rec group type", in: module(section{1, []byte{0x01, 0x4E, 0x00}}, oneFunc, oneMemory, spinCode)},
		{name: "table with initialiser", in: module(typeVoid, oneFunc, section{4, []byte{0x01, 0x40, 0x00, 0x70, 0x00, 0x01, 0xD2, 0x00, 0x0B}}, spinCode)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Instrument(tt.in); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err %v, want ErrUnsupported", err)
			}
		})
	}
}

// TestInstrumentGoModules rewrites real Go wasip1 plugins: they must still compile and
// import the yield function.
func TestInstrumentGoModules(t *testing.T) {
	for _, dir := range []string{"plugins/echo", "plugins/event-to-remote-claim"} {
		t.Run(dir, func(t *testing.T) {
			data, err := os.ReadFile(wasmbuild.ForTest(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Instrument(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) <= len(data) {
				t.Fatalf("instrumented module is %d bytes, original %d", len(out), len(data))
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			cm, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("compile instrumented %s: %v", dir, err)
			}
			if _, ok := cm.ExportedFunctions()["routerd_call"]; !ok {
				t.Fatal("exports lost")
			}
			imported := false
			for _, f := range cm.ImportedFunctions() {
				if m, n, _ := f.Import(); m == ImportModule && n == ImportName {
					imported = true
				}
			}
			if !imported {
				t.Fatalf("%s.%s not imported", ImportModule, ImportName)
			}
			// Function names (wasm stack traces) follow the renumbered functions.
			before, err := rt.CompileModule(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			for name, f := range before.ExportedFunctions() {
				if got := cm.ExportedFunctions()[name].Name(); got != f.Name() {
					t.Errorf("export %s: function name %q after instrumenting, %q before", name, got, f.Name())
				}
			}
		})
	}
}

// gcChildEnv makes the test binary run the spinning-guest GC check as a child.
const gcChildEnv = "ROUTERD_PREEMPT_GC_CHILD"

// TestGCWhileSpinning checks that a guest spinning in a loop does not block the Go
// runtime's stop-the-world pauses (which would also block the timer meant to stop it).
// The check runs in a child process so that a regression hangs the child, not the tests.
func TestGCWhileSpinning(t *testing.T) {
	if os.Getenv(gcChildEnv) != "" {
		out, err := Instrument(module(typeVoid, oneFunc, oneMemory, exportRun, spinCode))
		if err != nil {
			t.Fatal(err)
		}
		mod, y := instantiate(t, out)
		done := make(chan error, 1)
		go func() {
			_, err := mod.ExportedFunction("run").Call(context.Background())
			done <- err
		}()
		for y.calls.Load() < 3 { // the guest is spinning
			runtime.Gosched()
		}
		for range 5 {
			runtime.GC() // stops the world: needs the spinning goroutine to reach Go
		}
		y.stop.Store(true)
		if err := <-done; err == nil {
			t.Fatal("spin returned without a trap")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGCWhileSpinning$", "-test.count=1")
	cmd.Env = append(os.Environ(), gcChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("child hung: a spinning guest blocked garbage collection\n%s", out)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
