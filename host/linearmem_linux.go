package host

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
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

// backs reports whether buf is this region's memory.
func (r *region) backs(buf []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mem) > 0 && len(buf) > 0 && &r.mem[0] == &buf[0]
}

// mapImage maps img privately over the start of the region (which must still be all
// zeros): reading a page shares the image file's page cache, writing one copies it.
func (r *region) mapImage(img *memoryImage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unmapped || uint64(img.size) > r.size {
		return fmt.Errorf("host: memory image of %d bytes does not fit the %d accessible bytes", img.size, r.size)
	}
	addr := unsafe.Pointer(&r.mem[0])
	got, err := unix.MmapPtr(int(img.file.Fd()), 0, addr, uintptr(roundUpPage(uint64(img.size))), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("host: map memory image %s: %w", img.path, err)
	}
	if got != addr {
		return fmt.Errorf("host: map memory image %s: kernel placed it at %p, asked %p", img.path, got, addr)
	}
	return nil
}

// Free implements experimental.LinearMemory (wazero calls it when the module closes):
// the pages go back to the OS. The mapping stays until unmap, because a call still
// running on a module closed under it (Host shutdown) may touch it; it reads zeros or
// the memory image.
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
