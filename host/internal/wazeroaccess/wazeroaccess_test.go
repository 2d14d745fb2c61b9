package wazeroaccess

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"unsafe"

	extism "github.com/extism/go-sdk"

	"routerd.net/routerd/host/wasmbuild"
)

// TestLayout compiles the echo plugin and checks that both functions find what they
// look for in the pinned Extism and wazero versions, and that the plugin still runs
// after its bodies are dropped. It fails after an upgrade that moved a field: revisit
// this package then.
func TestLayout(t *testing.T) {
	wasm, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/echo"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cp, err := extism.NewCompiledPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: wasm, Name: "main"}}}, extism.PluginConfig{EnableWasi: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close(ctx)

	execs, err := Executables(cp)
	if err != nil {
		t.Fatal(err)
	}
	largest := 0
	for _, code := range execs {
		if uintptr(unsafe.Pointer(&code[0]))%uintptr(os.Getpagesize()) != 0 {
			t.Errorf("executable at %p is not page aligned", &code[0])
		}
		largest = max(largest, len(code))
	}
	// The plugin's own machine code is several times its ~2 MB module; the Extism kernel
	// is compiled in the same runtime.
	if len(execs) < 2 || largest < len(wasm) {
		t.Fatalf("Executables found %d mappings, largest %d bytes; want the plugin's (> %d bytes) and the kernel's", len(execs), largest, len(wasm))
	}

	released, err := DropFunctionBodies(cp)
	if err != nil {
		t.Fatal(err)
	}
	if released < len(wasm)/4 {
		t.Errorf("DropFunctionBodies released %d bytes of a %d-byte module, want most of its code section", released, len(wasm))
	}
	if again, err := DropFunctionBodies(cp); err != nil || again != 0 {
		t.Errorf("second DropFunctionBodies = %d, %v; want 0, nil", again, err)
	}

	// Two instances still run after the bodies are gone.
	for range 2 {
		p, err := cp.Instance(ctx, extism.PluginInstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		in := bytes.Repeat([]byte("routerd"), 100)
		rc, out, err := p.Call("on_events", in)
		if err != nil || rc != 0 || !bytes.Equal(out, in) {
			t.Fatalf("echo after DropFunctionBodies: rc=%d err=%v out=%d bytes; want the input back", rc, err, len(out))
		}
		p.Close(ctx)
	}
}

func TestNilPlugin(t *testing.T) {
	if _, err := Executables(nil); !errors.Is(err, ErrLayout) {
		t.Errorf("Executables(nil) err = %v, want ErrLayout", err)
	}
	if _, err := DropFunctionBodies(nil); !errors.Is(err, ErrLayout) {
		t.Errorf("DropFunctionBodies(nil) err = %v, want ErrLayout", err)
	}
}
