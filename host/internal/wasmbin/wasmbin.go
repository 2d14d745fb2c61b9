// Package wasmbin reads the parts of the WebAssembly binary format that the host's module
// rewriters (packages preempt and datamerge) share: the section list and the kinds of a
// module's imports.
package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
)

// Magic is the preamble of a binary module (magic and version 1).
var Magic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// ErrMalformed is wrapped by errors about input that is not a well-formed module.
var ErrMalformed = errors.New("wasmbin: malformed module")

// ErrUnsupported is wrapped by errors about an encoding this package does not decode
// (an import kind or type from a proposal it does not know).
var ErrUnsupported = errors.New("wasmbin: unsupported encoding")

// Import kinds (the byte after an import's names).
const (
	KindFunc   byte = 0x00
	KindTable  byte = 0x01
	KindMemory byte = 0x02
	KindGlobal byte = 0x03
	KindTag    byte = 0x04
)

// Section is one section of a module.
type Section struct {
	ID      byte
	Offset  int    // where the section (its id byte) starts in the module
	Payload []byte // the section's contents, a slice of the module
	End     int    // where the section ends in the module
}

// Sections splits module into its sections.
//
// # Errors
//
// A module without the preamble or with a truncated section wraps ErrMalformed.
func Sections(module []byte) ([]Section, error) {
	if !bytes.HasPrefix(module, Magic) {
		return nil, fmt.Errorf("%w: not a binary module", ErrMalformed)
	}
	var secs []Section
	off := len(Magic)
	for off < len(module) {
		id := module[off]
		size, n, err := uleb(module[off+1:], 32)
		if err != nil {
			return nil, fmt.Errorf("%w: section %d at %#x: %v", ErrMalformed, id, off, err)
		}
		start := off + 1 + n
		end := start + int(size)
		if end > len(module) || end < start {
			return nil, fmt.Errorf("%w: section %d at %#x is truncated", ErrMalformed, id, off)
		}
		secs = append(secs, Section{ID: id, Offset: off, Payload: module[start:end], End: end})
		off = end
	}
	return secs, nil
}

// Import is one import of a module.
type Import struct {
	Module, Name string
	Kind         byte // KindFunc, KindTable, ...
}

// ImportKinds returns the kind of every import in an import section payload, in order.
//
// # Errors
//
// As Imports.
func ImportKinds(payload []byte) ([]byte, error) {
	imports, err := Imports(payload)
	if err != nil {
		return nil, err
	}
	kinds := make([]byte, len(imports))
	for i, im := range imports {
		kinds[i] = im.Kind
	}
	return kinds, nil
}

// Imports returns every import in an import section payload, in order.
//
// # Errors
//
// Truncated input wraps ErrMalformed; an import kind, reference type or limits flag this
// package does not know wraps ErrUnsupported.
func Imports(payload []byte) ([]Import, error) {
	r := reader{b: payload}
	count := r.u32()
	var imports []Import
	for i := uint32(0); i < count && r.err == nil; i++ {
		module := r.name()
		name := r.name()
		kind := r.byte()
		switch kind {
		case KindFunc:
			r.u32() // type index
		case KindTable:
			if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6F {
				r.unsupported(fmt.Sprintf("import %d: table of reference type %#x", i, t))
			}
			r.limits()
		case KindMemory:
			r.limits()
		case KindGlobal:
			if t := r.byte(); r.err == nil && !(t >= 0x7B && t <= 0x7F || t == 0x70 || t == 0x6F) {
				r.unsupported(fmt.Sprintf("import %d: global of value type %#x", i, t))
			}
			r.byte() // mutability
		case KindTag:
			r.byte() // attribute
			r.u32()  // type index
		default:
			r.unsupported(fmt.Sprintf("import %d: kind %#x", i, kind))
		}
		imports = append(imports, Import{Module: string(module), Name: string(name), Kind: kind})
	}
	if r.err != nil {
		return nil, fmt.Errorf("import section: %w", r.err)
	}
	return imports, nil
}

// reader decodes a payload; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) malformed(msg string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, msg)
	}
}

func (r *reader) unsupported(msg string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrUnsupported, msg)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.malformed("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) leb(bits int) uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := uleb(r.b[r.off:], bits)
	if err != nil {
		r.malformed(err.Error())
		return 0
	}
	r.off += n
	return v
}

func (r *reader) u32() uint32 { return uint32(r.leb(32)) }

// name reads a length-prefixed name (a slice of the payload).
func (r *reader) name() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		r.malformed("truncated name")
		return nil
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}

// limits skips table or memory limits (32- or 64-bit, shared or not).
func (r *reader) limits() {
	flags := r.byte()
	if r.err == nil && flags > 0x07 {
		r.unsupported(fmt.Sprintf("limits flags %#x", flags))
		return
	}
	bits := 32
	if flags&0x04 != 0 {
		bits = 64
	}
	r.leb(bits)
	if flags&0x01 != 0 {
		r.leb(bits)
	}
}

// uleb decodes an unsigned LEB128 of at most bits bits and returns it with its length.
func uleb(b []byte, bits int) (uint64, int, error) {
	var v uint64
	maxLen := (bits + 6) / 7
	for i := 0; i < maxLen; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated LEB128")
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				return 0, 0, fmt.Errorf("LEB128 overflows u%d", bits)
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("LEB128 longer than %d bytes", maxLen)
}
