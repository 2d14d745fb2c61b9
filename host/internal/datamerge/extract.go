package datamerge

import (
	"errors"
	"fmt"
	"slices"

	"routerd.net/routerd/host/internal/wasmbin"
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
	if l.data == nil || l.dataCount || l.startFunc || l.memory == nil {
		return nil, nil, false, nil
	}
	if l.imports != nil {
		imports, err := importsMemory(l.imports.Payload)
		if err != nil || imports {
			return nil, nil, false, err
		}
	}
	minPages, ok := initialPages(l.memory.Payload)
	if !ok {
		return nil, nil, false, nil
	}
	segs, ok, err := parseData(l.data.Payload)
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
	stripped = slices.Concat(module[:l.data.Offset], module[l.data.End:])
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
// wasmbin does not decode counts as a memory (the caller then leaves the module alone).
func importsMemory(p []byte) (bool, error) {
	kinds, err := wasmbin.ImportKinds(p)
	switch {
	case errors.Is(err, wasmbin.ErrUnsupported):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return slices.Contains(kinds, wasmbin.KindMemory), nil
}
