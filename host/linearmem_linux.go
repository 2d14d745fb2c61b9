package host

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// reserveSupported: linear memories are reserved with mmap (see linearmem.go).
const reserveSupported = true

// region is a linear memory in reserved address space: the first size bytes are
// readable and writable, the rest of the reservation is PROT_NONE.
type region struct {
	mu       sync.Mutex
	mem      []byte // the whole reservation (nil for a zero-sized one)
	size     uint64 // accessible bytes (a multiple of the OS page size)
	unmapped bool
}

// reserve maps max bytes (rounded up to the OS page size) of inaccessible address space.
func reserve(max uint64) (*region, error) {
	if max == 0 {
		return &region{}, nil
	}
	n := roundUpPage(max)
	if n > uint64(^uint(0)>>1) {
		return nil, fmt.Errorf("host: reserve %d bytes of guest memory: too large", max)
	}
	mem, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("host: reserve %d bytes of guest memory: %w", n, err)
	}
	return &region{mem: mem}, nil
}

// Reallocate implements experimental.LinearMemory: it makes the first size bytes
// accessible (never moving them) and returns them, or nil when size exceeds the
// reservation or the kernel refuses.
func (r *region) Reallocate(size uint64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unmapped || size > uint64(len(r.mem)) {
		return nil
	}
	if size > r.size {
		end := min(roundUpPage(size), uint64(len(r.mem)))
		if err := syscall.Mprotect(r.mem[r.size:end], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		r.size = end
	}
	return r.mem[:size:size]
}

// Free implements experimental.LinearMemory (wazero calls it when the module closes):
// the pages go back to the OS. The mapping stays until unmap, because a call still
// running on a module closed under it (Host shutdown) may touch it; it reads zeros.
func (r *region) Free() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.unmapped && r.size > 0 {
		_ = syscall.Madvise(r.mem[:r.size], syscall.MADV_DONTNEED)
	}
}

// unmap releases the reservation. No call may run on the memory any more.
func (r *region) unmap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unmapped {
		return
	}
	r.unmapped = true
	if r.mem != nil {
		_ = syscall.Munmap(r.mem)
		r.mem = nil
	}
}

var pageSize = uint64(os.Getpagesize())

func roundUpPage(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }
