package datamerge

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"

	"routerd.net/routerd/host/wasmbuild"
)

// section encodes one section.
func section(id byte, payload ...byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(payload))), payload...)
}

// rawModule concatenates sections behind the preamble.
func rawModule(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{magic}, sections...), nil)
}

// oneSegment is a data section with "hi" at offset 8.
var oneSegment = section(secData, 1, 0x00, opI32Const, 8, opEnd, 2, 'h', 'i')

func TestExtract(t *testing.T) {
	tests := []struct {
		name   string
		module []byte
		wantOK bool
	}{
		{"segments", module([]seg{{offset: 16, data: "abc"}, {offset: 1000, data: "xyz"}, {offset: 0, data: "first"}}, false), true},
		{"overlapping segments, the later wins", module([]seg{{offset: 4, data: "aaaa"}, {offset: 6, data: "bb"}}, false), true},
		{"one byte", module([]seg{{offset: 100, data: "x"}}, false), true},
		{"data count section", module([]seg{{offset: 0, data: "x"}}, true), false},
		{"passive segment", module([]seg{{offset: 0, data: "x"}, {flag: 1, raw: []byte{1, 'p'}}}, false), false},
		{"segment beyond the initial memory", module([]seg{{offset: wasmPage - 1, data: "xy"}}, false), false},
		{"no data", module(nil, false), false},
		{"start function", rawModule(
			section(1, 1, 0x60, 0, 0), // type section: func () -> ()
			section(3, 1, 0),          // function section
			section(5, 1, 0x00, 1),    // memory section
			section(8, 0),             // start: function 0
			section(10, 1, 2, 0, opEnd),
			oneSegment,
		), false},
		{"imported memory", rawModule(
			section(secImport, 1, 3, 'e', 'n', 'v', 3, 'm', 'e', 'm', 0x02, 0x00, 1),
			oneSegment,
		), false},
		{"imported function and global, own memory", rawModule(
			section(1, 1, 0x60, 0, 0),
			section(secImport, 2, 3, 'e', 'n', 'v', 1, 'f', 0x00, 0, 3, 'e', 'n', 'v', 1, 'g', 0x03, 0x7F, 0x00),
			section(5, 1, 0x00, 1),
			oneSegment,
		), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stripped, img, ok, err := Extract(tt.module)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if stripped != nil || img != nil {
					t.Fatal("not ok, but returned a module or image")
				}
				return
			}
			if countSegments(t, stripped) != 0 {
				t.Fatal("the stripped module still has data segments")
			}
			want := image(t, tt.module)
			if !bytes.Equal(img, want) {
				t.Fatalf("image = %q, want %q", img, want)
			}
			if bytes.Contains(tt.module, []byte("mem")) && tt.module[len(magic)] == secMemory { // instantiable without imports
				full := memoryAfterInstantiation(t, tt.module)
				if !bytes.Equal(full[:len(img)], img) || bytes.Count(full[len(img):], []byte{0}) != len(full)-len(img) {
					t.Fatal("the image differs from the memory wazero's instantiation writes")
				}
				if empty := memoryAfterInstantiation(t, stripped); bytes.Count(empty, []byte{0}) != len(empty) {
					t.Fatal("instantiating the stripped module wrote memory")
				}
			}
		})
	}
}

func TestExtractMalformed(t *testing.T) {
	for name, m := range map[string][]byte{
		"not wasm":             []byte("hello"),
		"truncated import":     rawModule(section(secImport, 1, 9, 'e'), section(5, 1, 0x00, 1), oneSegment),
		"truncated data":       rawModule(section(5, 1, 0x00, 1), section(secData, 1, 0x00, opI32Const, 0, opEnd, 9, 'x')),
		"section past the end": append(rawModule(section(5, 1, 0x00, 1)), secData, 50, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, ok, err := Extract(m); err == nil || ok {
				t.Fatalf("Extract = ok %v, err %v; want an ErrMalformed error", ok, err)
			}
		})
	}
}

// TestExtractGoModule extracts the data of a real Go wasip1 module (after Coalesce, as
// the host does): the stripped module compiles and the image is what its segments write.
func TestExtractGoModule(t *testing.T) {
	in, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/echo"))
	if err != nil {
		t.Fatal(err)
	}
	merged, _, err := Coalesce(in, MaxGap)
	if err != nil {
		t.Fatal(err)
	}
	stripped, img, ok, err := Extract(merged)
	if err != nil || !ok {
		t.Fatalf("Extract: ok %v, err %v", ok, err)
	}
	t.Logf("module %d bytes -> %d without data, image %d bytes", len(merged), len(stripped), len(img))
	if !bytes.Equal(img, image(t, in)) {
		t.Fatal("the image differs from what the original segments write")
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if _, err := r.CompileModule(ctx, stripped); err != nil {
		t.Fatalf("the stripped module does not compile: %v", err)
	}
}
