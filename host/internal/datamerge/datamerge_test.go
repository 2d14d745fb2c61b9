package datamerge

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"

	"routerd.net/routerd/host/wasmbuild"
)

// seg is a data segment for module(): raw holds its encoding after the flags byte when
// set (to build segments Coalesce must not touch).
type seg struct {
	offset int32
	data   string
	raw    []byte
	flag   byte
}

// module builds a binary module with one memory of one page (exported as "mem"), the
// given data segments, and a data count section when dataCount is set.
func module(segs []seg, dataCount bool) []byte {
	var b []byte
	b = append(b, magic...)
	b = append(b, 5, 3, 1, 0x00, 1)                   // memory section: 1 memory, min 1 page
	b = append(b, 7, 7, 1, 3, 'm', 'e', 'm', 0x02, 0) // export section: "mem" memory 0
	if dataCount {
		b = append(b, secDataCount)
		b = appendU32(b, 1)
		b = appendU32(b, uint32(len(segs)))
	}
	p := appendU32(nil, uint32(len(segs)))
	for _, s := range segs {
		p = append(p, s.flag)
		if s.raw != nil {
			p = append(p, s.raw...)
			continue
		}
		p = append(p, opI32Const)
		p = appendS32(p, s.offset)
		p = append(p, opEnd)
		p = appendU32(p, uint32(len(s.data)))
		p = append(p, s.data...)
	}
	b = append(b, secData)
	b = appendU32(b, uint32(len(p)))
	return append(b, p...)
}

// memoryAfterInstantiation instantiates m with wazero and returns a copy of its memory.
func memoryAfterInstantiation(t *testing.T, m []byte) []byte {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, m)
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	mem := mod.Memory()
	if mem == nil {
		t.Fatal("module has no memory")
	}
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		t.Fatal("read memory")
	}
	return bytes.Clone(b)
}

func TestCoalesce(t *testing.T) {
	tests := []struct {
		name      string
		segs      []seg
		dataCount bool
		maxGap    int
		wantSegs  int // segments after Coalesce; -1: module unchanged
	}{
		{name: "neighbours merge", segs: []seg{{offset: 0, data: "ab"}, {offset: 4, data: "cd"}, {offset: 6, data: "e"}}, maxGap: 8, wantSegs: 1},
		{name: "unsorted disjoint", segs: []seg{{offset: 100, data: "xyz"}, {offset: 10, data: "ab"}, {offset: 20, data: "cd"}}, maxGap: 16, wantSegs: 2},
		{name: "gap too wide", segs: []seg{{offset: 0, data: "a"}, {offset: 1000, data: "b"}}, maxGap: 128, wantSegs: -1},
		{name: "high offset", segs: []seg{{offset: 65000, data: "end"}, {offset: 65010, data: "!"}}, maxGap: 128, wantSegs: 1},
		{name: "overlap keeps order", segs: []seg{{offset: 0, data: "aaaa"}, {offset: 2, data: "bb"}}, maxGap: 128, wantSegs: -1},
		{name: "data count section", segs: []seg{{offset: 0, data: "a"}, {offset: 2, data: "b"}}, dataCount: true, maxGap: 128, wantSegs: -1},
		{name: "passive segment", segs: []seg{{offset: 0, data: "a"}, {flag: 1, raw: []byte{1, 'p'}}}, maxGap: 128, wantSegs: -1},
		{name: "global offset", segs: []seg{{offset: 0, data: "a"}, {raw: []byte{0x23, 0, opEnd, 1, 'g'}}}, maxGap: 128, wantSegs: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := module(tt.segs, tt.dataCount)
			out, changed, err := Coalesce(in, tt.maxGap)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantSegs < 0 {
				if changed || !bytes.Equal(out, in) {
					t.Fatalf("module changed (changed=%v)", changed)
				}
				return
			}
			if !changed {
				t.Fatal("module not changed")
			}
			if got := countSegments(t, out); got != tt.wantSegs {
				t.Fatalf("%d segments, want %d", got, tt.wantSegs)
			}
			if !tt.dataCount && !bytes.Equal(memoryAfterInstantiation(t, out), memoryAfterInstantiation(t, in)) {
				t.Fatal("memory after instantiation differs")
			}
		})
	}
}

func TestCoalesceMalformed(t *testing.T) {
	good := module([]seg{{offset: 0, data: "ab"}, {offset: 4, data: "cd"}}, false)
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "not wasm", in: []byte("hello world")},
		{name: "truncated section", in: good[:len(good)-3]},
		{name: "segment longer than section", in: func() []byte {
			b := bytes.Clone(good)
			b[len(b)-3] = 100 // second segment's length
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Coalesce(tt.in, MaxGap); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestCoalesceGoModule checks a real Go wasip1 module: tens of thousands of segments
// become a few that write the same bytes.
func TestCoalesceGoModule(t *testing.T) {
	in, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/echo"))
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := Coalesce(in, MaxGap)
	if err != nil || !changed {
		t.Fatalf("Coalesce: changed %v, err %v", changed, err)
	}
	before, after := countSegments(t, in), countSegments(t, out)
	t.Logf("%d segments -> %d, module %d -> %d bytes", before, after, len(in), len(out))
	if before < 1000 || after > 100 {
		t.Fatalf("%d segments -> %d; want a Go module's thousands merged into at most 100", before, after)
	}
	if !bytes.Equal(image(t, out), image(t, in)) {
		t.Fatal("the segments write different memory")
	}
}

// image applies m's data segments, in order, to zeroed memory and returns it (up to
// the end of the last byte written).
func image(t *testing.T, m []byte) []byte {
	t.Helper()
	off := len(magic)
	for off < len(m) {
		id := m[off]
		size, n, err := u32(m[off+1:])
		if err != nil {
			t.Fatal(err)
		}
		if id == secData {
			segs, ok, err := parseData(m[off+1+n : off+1+n+int(size)])
			if err != nil || !ok {
				t.Fatalf("parse data: ok %v, err %v", ok, err)
			}
			var mem []byte
			for _, s := range segs {
				if end := int(s.offset) + len(s.data); end > len(mem) {
					mem = append(mem, make([]byte, end-len(mem))...)
				}
				copy(mem[s.offset:], s.data)
			}
			return mem
		}
		off += 1 + n + int(size)
	}
	return nil
}

// countSegments returns the number of data segments of m.
func countSegments(t *testing.T, m []byte) int {
	t.Helper()
	off := len(magic)
	for off < len(m) {
		id := m[off]
		size, n, err := u32(m[off+1:])
		if err != nil {
			t.Fatal(err)
		}
		if id == secData {
			c, _, err := u32(m[off+1+n:])
			if err != nil {
				t.Fatal(err)
			}
			return int(c)
		}
		off += 1 + n + int(size)
	}
	return 0
}
