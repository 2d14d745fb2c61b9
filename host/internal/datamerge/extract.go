package datamerge

import (
	"errors"
	"fmt"
	"slices"
)

// MaxImage bounds the memory image Extract builds.
const MaxImage = 64 << 20

// wasmPage is the WebAssembly page size.
const wasmPage = 64 << 10

// Extract moves a module's data segments out of it: it returns the module without its
// data section and the image of memory 0 that instantiating the module writes: the
// segments applied in order to zeroed memory, up to the end of the last one. Whoever
// instantiates stripped must put image at the start of the new memory before any of
// the module's code runs; instantiation itself runs none, since Extract requires that
// the module has no start function.
//
// ok is false, and nothing is returned, for a module with nothing to extract or not of
// this form: every segment active in memory 0 at an i32.const offset, no data count
// section, no start section, memory 0 defined by the module (not imported) with every
// segment inside its initial size, and an image no larger than MaxImage.
//
// # Errors
//
// A module whose sections or data segments cannot be read wraps ErrMalformed.
func Extract(module []byte) (stripped, image []byte, ok bool, err error) {
	l, err := scan(module)
	if err != nil {
		return nil, nil, false, err
	}
	if l.dataStart < 0 || l.dataCount || l.startFunc || l.memoryStart < 0 {
		return nil, nil, false, nil
	}
	if l.importStart >= 0 {
		imports, err := importsMemory(module[l.importStart:l.importEnd])
		if err != nil || imports {
			return nil, nil, false, err
		}
	}
	minPages, ok := initialPages(module[l.memoryStart:l.memoryEnd])
	if !ok {
		return nil, nil, false, nil
	}
	segs, ok, err := parseData(module[l.dataStart:l.dataEnd])
	if err != nil || !ok || len(segs) == 0 {
		return nil, nil, false, err
	}
	var size uint64
	for _, s := range segs {
		size = max(size, uint64(s.offset)+uint64(len(s.data)))
	}
	if size > MaxImage || size > uint64(minPages)*wasmPage {
		return nil, nil, false, nil
	}
	image = make([]byte, size)
	for _, s := range segs {
		copy(image[s.offset:], s.data)
	}
	stripped = slices.Concat(module[:l.dataHdr], module[l.dataEnd:])
	return stripped, image, true, nil
}

// initialPages reads a memory section payload holding one 32-bit memory and returns
// its initial size in pages.
func initialPages(p []byte) (uint32, bool) {
	count, n, err := u32(p)
	if err != nil || count != 1 || len(p) <= n {
		return 0, false
	}
	if flags := p[n]; flags != 0x00 && flags != 0x01 { // shared or 64-bit memories: leave them
		return 0, false
	}
	minPages, _, err := u32(p[n+1:])
	return minPages, err == nil
}

// importsMemory reports whether an import section payload imports a memory. An import
// it cannot decode counts as a memory (the caller then leaves the module alone).
func importsMemory(p []byte) (bool, error) {
	count, n, err := u32(p)
	if err != nil {
		return false, fmt.Errorf("%w: import section count: %v", ErrMalformed, err)
	}
	p = p[n:]
	skipName := func() error {
		size, n, err := u32(p)
		if err != nil || uint64(size) > uint64(len(p)-n) {
			return errors.New("truncated import name")
		}
		p = p[n+int(size):]
		return nil
	}
	skipU32 := func() error {
		_, n, err := u32(p)
		p = p[n:]
		return err
	}
	for i := range count {
		if err := skipName(); err != nil {
			return false, fmt.Errorf("%w: import %d: %v", ErrMalformed, i, err)
		}
		if err := skipName(); err != nil {
			return false, fmt.Errorf("%w: import %d: %v", ErrMalformed, i, err)
		}
		if len(p) < 2 {
			return false, fmt.Errorf("%w: import %d is truncated", ErrMalformed, i)
		}
		kind := p[0]
		p = p[1:]
		switch {
		case kind == 0x00: // function: type index
			if err := skipU32(); err != nil {
				return false, fmt.Errorf("%w: import %d: %v", ErrMalformed, i, err)
			}
		case kind == 0x01 && len(p) > 1 && (p[1] == 0x00 || p[1] == 0x01): // table: reftype, limits
			flags := p[1]
			p = p[2:]
			if skipU32() != nil || (flags == 0x01 && skipU32() != nil) {
				return false, fmt.Errorf("%w: import %d: table limits", ErrMalformed, i)
			}
		case kind == 0x03 && len(p) > 1 && simpleValType(p[0]) && (p[1] == 0x00 || p[1] == 0x01): // global: valtype, mutability
			p = p[2:]
		default: // a memory, a tag, or an encoding this package does not decode
			return true, nil
		}
	}
	return false, nil
}

// simpleValType reports whether b is a one-byte value type (a number, v128, funcref or
// externref).
func simpleValType(b byte) bool {
	return b >= 0x7B && b <= 0x7F || b == 0x70 || b == 0x6F
}
