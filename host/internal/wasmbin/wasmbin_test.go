package wasmbin

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestSections(t *testing.T) {
	module := append(bytes.Clone(Magic), 1, 2, 0xAA, 0xBB, 5, 0, 11, 1, 0xCC)
	secs, err := Sections(module)
	if err != nil {
		t.Fatal(err)
	}
	want := []Section{
		{ID: 1, Offset: 8, Payload: []byte{0xAA, 0xBB}, End: 12},
		{ID: 5, Offset: 12, Payload: []byte{}, End: 14},
		{ID: 11, Offset: 14, Payload: []byte{0xCC}, End: 17},
	}
	if len(secs) != len(want) {
		t.Fatalf("got %d sections, want %d", len(secs), len(want))
	}
	for i, s := range secs {
		w := want[i]
		if s.ID != w.ID || s.Offset != w.Offset || s.End != w.End || !bytes.Equal(s.Payload, w.Payload) {
			t.Errorf("section %d = %+v, want %+v", i, s, w)
		}
	}
	for name, bad := range map[string][]byte{
		"not wasm":      []byte("\x00asm\x02\x00\x00\x00"),
		"truncated":     append(bytes.Clone(Magic), 1, 5, 0),
		"bad size LEB":  append(bytes.Clone(Magic), 1, 0x80),
		"oversized LEB": append(bytes.Clone(Magic), 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F),
	} {
		if _, err := Sections(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// imp encodes one import "m"."n" of kind with the given descriptor.
func imp(kind byte, desc ...byte) []byte {
	return append([]byte{1, 'm', 1, 'n', kind}, desc...)
}

func TestImportKinds(t *testing.T) {
	tests := []struct {
		name    string
		imports [][]byte
		want    []byte
		wantErr error
	}{
		{"none", nil, nil, nil},
		{"every kind", [][]byte{
			imp(KindFunc, 0x81, 0x01),                           // type 129
			imp(KindTable, 0x70, 0x01, 1, 2),                    // funcref, min 1 max 2
			imp(KindMemory, 0x04, 0x80, 0x80, 0x80, 0x80, 0x10), // memory64, 64-bit min
			imp(KindGlobal, 0x7F, 0x01),                         // mutable i32
			imp(KindTag, 0x00, 3),                               // exception tag of type 3
		}, []byte{KindFunc, KindTable, KindMemory, KindGlobal, KindTag}, nil},
		{"unknown kind", [][]byte{imp(0x09, 0)}, nil, ErrUnsupported},
		{"global of a GC type", [][]byte{imp(KindGlobal, 0x63, 0x70, 0x00)}, nil, ErrUnsupported},
		{"table of a GC type", [][]byte{imp(KindTable, 0x64, 0x70, 0x00, 1)}, nil, ErrUnsupported},
		{"unknown limits flags", [][]byte{imp(KindMemory, 0x10, 1)}, nil, ErrUnsupported},
		{"truncated", [][]byte{imp(KindFunc)}, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := []byte{byte(len(tt.imports))}
			for _, i := range tt.imports {
				payload = append(payload, i...)
			}
			got, err := ImportKinds(payload)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("kinds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestImports(t *testing.T) {
	named := func(module, name string, kind byte, rest ...byte) []byte {
		b := append([]byte{byte(len(module))}, module...)
		b = append(b, byte(len(name)))
		b = append(b, name...)
		return append(append(b, kind), rest...)
	}
	tests := []struct {
		name    string
		imports [][]byte
		want    []Import
		wantErr error
	}{
		{name: "names and kinds", imports: [][]byte{
			named("env", "missing_fn", KindFunc, 0),
			named("routerd:direct", "now", KindFunc, 1),
			named("", "", KindMemory, 0x00, 1),
		}, want: []Import{{"env", "missing_fn", KindFunc}, {"routerd:direct", "now", KindFunc}, {"", "", KindMemory}}},
		{name: "truncated name", imports: [][]byte{{5, 'e', 'n'}}, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := []byte{byte(len(tt.imports))}
			for _, i := range tt.imports {
				payload = append(payload, i...)
			}
			got, err := Imports(payload)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !slices.Equal(got, tt.want) {
				t.Fatalf("imports = %+v, want %+v", got, tt.want)
			}
		})
	}
}
