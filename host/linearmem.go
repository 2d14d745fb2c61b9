package host

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Guest linear memory.
//
// By default wazero backs a linear memory with a Go []byte that memory.grow replaces
// with a larger copy. A Go guest grows its memory a few times while it starts, so every
// instance left its copies as garbage, and its memory — including pages the guest never
// wrote — sat on the Go heap (zeroed, hence resident) until the instance was collected.
//
// instanceMemory instead reserves each memory's maximum size as inaccessible address
// space (mmap PROT_NONE, which costs no RAM and no commit charge) and makes pages
// accessible as the guest grows: growing never copies, pages the guest does not touch are
// never resident, and closing the instance returns the pages to the OS at once. Where
// that is unavailable (another OS, or mmap refused) a memory falls back to a Go slice.

// instanceMemory allocates the linear memories of one instance (its main module and the
// Extism kernel) and unmaps them when the instance is closed.
type instanceMemory struct {
	mu      sync.Mutex
	regions []*region
	cleanup runtime.Cleanup
	armed   bool
}

// Allocate implements experimental.MemoryAllocator.
func (m *instanceMemory) Allocate(capBytes, maxBytes uint64) experimental.LinearMemory {
	if r, err := reserve(maxBytes); err == nil {
		m.mu.Lock()
		m.regions = append(m.regions, r)
		m.mu.Unlock()
		return r
	}
	return &heapMemory{buf: make([]byte, 0, capBytes), max: maxBytes}
}

// loadImage puts img at the start of mem, the main module's memory, before any of the
// module's code ran (its memory is still all zeros): by mapping the image file
// privately over the region backing mem, or, where mem is not a region of m, by copying
// the image in.
func (m *instanceMemory) loadImage(mem api.Memory, img *memoryImage) error {
	if mem == nil {
		return errors.New("the module has no memory for its data")
	}
	buf, ok := mem.Read(0, mem.Size())
	if !ok || len(buf) < img.size {
		return fmt.Errorf("the module's %d-byte memory is smaller than its %d bytes of data", mem.Size(), img.size)
	}
	m.mu.Lock()
	regions := slices.Clone(m.regions)
	m.mu.Unlock()
	for _, r := range regions {
		if r.backs(buf) {
			if err := r.mapImage(img); err == nil {
				return nil
			}
			break
		}
	}
	if _, err := img.file.ReadAt(buf[:img.size], 0); err != nil {
		return fmt.Errorf("copy the module's data from %s: %w", img.path, err)
	}
	return nil
}

// allocator returns m as the allocator to put in the instantiation context (nil where
// reserving memory is not supported, so wazero keeps its default).
func (m *instanceMemory) allocator() experimental.MemoryAllocator {
	if !reserveSupported {
		return nil
	}
	return m
}

// guard unmaps the memories if owner becomes unreachable without release having been
// called (a safety net; the host releases every instance it closes). owner must be the
// *instance whose calls use the memories: it is live while any of its calls runs.
func (m *instanceMemory) guard(owner *instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.armed || len(m.regions) == 0 {
		return
	}
	m.cleanup = runtime.AddCleanup(owner, unmapAll, m.regions)
	m.armed = true
}

// release unmaps every memory. Call it only when no call runs on the instance (after
// the instance's modules were closed). It is idempotent.
func (m *instanceMemory) release() {
	m.mu.Lock()
	regions := m.regions
	m.regions = nil
	if m.armed {
		m.cleanup.Stop()
		m.armed = false
	}
	m.mu.Unlock()
	unmapAll(regions)
}

// unmapAll unmaps regions.
func unmapAll(regions []*region) {
	for _, r := range regions {
		r.unmap()
	}
}

// heapMemory is a linear memory on the Go heap (the fallback).
type heapMemory struct {
	buf []byte
	max uint64
}

// Reallocate implements experimental.LinearMemory.
func (h *heapMemory) Reallocate(size uint64) []byte {
	if size > h.max {
		return nil
	}
	if n := uint64(len(h.buf)); size > n {
		if size <= uint64(cap(h.buf)) {
			h.buf = h.buf[:size]
		} else {
			h.buf = append(h.buf, make([]byte, size-n)...)
		}
	}
	return h.buf
}

// Free implements experimental.LinearMemory.
func (h *heapMemory) Free() { h.buf = nil }
