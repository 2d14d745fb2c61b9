// Package datamerge coalesces the data segments of a WebAssembly module.
//
// The Go linker splits a module's initialised data at every run of zero bytes, so a Go
// wasip1 module carries 20,000–40,000 active data segments of a few dozen bytes each.
// wazero keeps every segment as a separate object for as long as the module is compiled
// (about 1.7 MB of headers for a 1 MB data section) and gives every instance a table
// with one entry per segment (0.75 MB each). Coalesce merges segments separated by
// short runs of zeros into one, writing those zeros explicitly: instantiation yields the
// same memory, with a few hundred segments at most.
//
// Only modules whose segments are all active, in memory 0, at i32.const offsets and
// pairwise disjoint are rewritten. A module with a data count section (needed by
// memory.init and data.drop, which name segments by index) is left alone.
package datamerge

import (
	"errors"
	"fmt"
	"slices"

	"routerd.net/routerd/host/internal/wasmbin"
)

// MaxGap is the longest run of zeros between two segments that Coalesce fills in. A
// segment costs wazero about 150 bytes (its header, offset expression and one table
// entry per instance), so filling shorter gaps saves memory.
const MaxGap = 128

// ErrMalformed is wrapped by errors about a module Coalesce cannot parse.
var ErrMalformed = errors.New("datamerge: malformed module")

const (
	secImport    = 2
	secMemory    = 5
	secStart     = 8
	secData      = 11
	secDataCount = 12
	opI32Const   = 0x41
	opEnd        = 0x0B
)

var magic = wasmbin.Magic

// segment is one active data segment of memory 0.
type segment struct {
	offset uint32
	data   []byte
}

// Coalesce returns module with its data segments merged, and whether it changed
// anything. A module it does not rewrite (see the package comment) is returned as is.
//
// # Errors
//
// A module whose section or data segment layout cannot be read wraps ErrMalformed.
func Coalesce(module []byte, maxGap int) ([]byte, bool, error) {
	l, err := scan(module)
	if err != nil {
		return nil, false, err
	}
	if l.dataCount || l.data == nil {
		return module, false, nil
	}
	hdr, dataEnd := l.data.Offset, l.data.End
	segs, ok, err := parseData(l.data.Payload)
	if err != nil || !ok {
		return module, false, err
	}
	merged := merge(segs, maxGap)
	if len(merged) == len(segs) {
		return module, false, nil
	}
	payload := appendU32(nil, uint32(len(merged)))
	for _, s := range merged {
		payload = append(payload, 0x00, opI32Const) // active, memory 0, i32.const offset
		payload = appendS32(payload, int32(s.offset))
		payload = append(payload, opEnd)
		payload = appendU32(payload, uint32(len(s.data)))
		payload = append(payload, s.data...)
	}
	out := make([]byte, 0, len(module)-(dataEnd-hdr)+len(payload)+6)
	out = append(out, module[:hdr]...)
	out = append(out, secData)
	out = appendU32(out, uint32(len(payload)))
	out = append(out, payload...)
	out = append(out, module[dataEnd:]...)
	return out, true, nil
}

// layout is what this package needs to know of a module's sections.
type layout struct {
	data, imports, memory *wasmbin.Section // nil when absent
	dataCount, startFunc  bool             // has a data count section, a start section
}

// scan finds the sections of module.
func scan(module []byte) (layout, error) {
	var l layout
	secs, err := wasmbin.Sections(module)
	if err != nil {
		return l, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for i := range secs {
		switch s := &secs[i]; s.ID {
		case secImport:
			l.imports = s
		case secMemory:
			l.memory = s
		case secStart:
			l.startFunc = true
		case secDataCount:
			l.dataCount = true
		case secData:
			l.data = s
		}
	}
	return l, nil
}

// parseData reads a data section payload. ok is false when a segment is not an active
// segment of memory 0 at an i32.const offset.
func parseData(p []byte) ([]segment, bool, error) {
	count, n, err := u32(p)
	if err != nil {
		return nil, false, fmt.Errorf("%w: data section count: %v", ErrMalformed, err)
	}
	p = p[n:]
	if uint64(count) > uint64(len(p)) {
		return nil, false, fmt.Errorf("%w: data section declares %d segments in %d bytes", ErrMalformed, count, len(p))
	}
	segs := make([]segment, 0, count)
	for i := range count {
		if len(p) < 2 || p[0] != 0x00 || p[1] != opI32Const {
			return nil, false, nil // passive, another memory, or another offset expression
		}
		v, n, err := s32(p[2:])
		if err != nil || len(p) < 2+n+1 || p[2+n] != opEnd {
			return nil, false, nil
		}
		p = p[2+n+1:]
		size, n, err := u32(p)
		if err != nil || uint64(size) > uint64(len(p)-n) {
			return nil, false, fmt.Errorf("%w: data segment %d is truncated", ErrMalformed, i)
		}
		segs = append(segs, segment{offset: uint32(v), data: p[n : n+int(size)]})
		p = p[n+int(size):]
	}
	if len(p) != 0 {
		return nil, false, fmt.Errorf("%w: %d bytes after the last data segment", ErrMalformed, len(p))
	}
	return segs, true, nil
}

// merge sorts segs by offset and joins neighbours at most maxGap bytes apart. Segments
// that overlap are returned unchanged (their order of application matters).
func merge(segs []segment, maxGap int) []segment {
	sorted := slices.Clone(segs)
	slices.SortStableFunc(sorted, func(a, b segment) int {
		switch {
		case a.offset < b.offset:
			return -1
		case a.offset > b.offset:
			return 1
		}
		return 0
	})
	for i := 1; i < len(sorted); i++ {
		if uint64(sorted[i-1].offset)+uint64(len(sorted[i-1].data)) > uint64(sorted[i].offset) {
			return segs
		}
	}
	var out []segment
	for _, s := range sorted {
		if k := len(out) - 1; k >= 0 {
			last := &out[k]
			end := uint64(last.offset) + uint64(len(last.data))
			if gap := uint64(s.offset) - end; gap <= uint64(maxGap) {
				last.data = append(last.data, make([]byte, gap)...)
				last.data = append(last.data, s.data...)
				continue
			}
		}
		out = append(out, segment{offset: s.offset, data: append([]byte(nil), s.data...)})
	}
	return out
}

// u32 decodes an unsigned LEB128 u32 and returns it with its length.
func u32(b []byte) (uint32, int, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated LEB128")
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 0xFFFFFFFF {
				return 0, 0, errors.New("LEB128 overflows u32")
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 longer than 5 bytes")
}

// s32 decodes a signed LEB128 i32 and returns it with its length.
func s32(b []byte) (int32, int, error) {
	var v int64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated LEB128")
		}
		v |= int64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if shift := 7 * (i + 1); shift < 64 && b[i]&0x40 != 0 {
				v |= -1 << shift
			}
			if v < -1<<31 || v > 1<<31-1 {
				return 0, 0, errors.New("LEB128 overflows i32")
			}
			return int32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 longer than 5 bytes")
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
