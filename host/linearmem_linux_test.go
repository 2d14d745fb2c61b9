package host

import (
	"context"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"routerd.net/routerd/abi"
)

func TestInstanceMemoryAllocate(t *testing.T) {
	if !reserveSupported {
		t.Skip("guest memory is reserved with mmap on Linux only")
	}
	const page = 65536
	tests := []struct {
		name     string
		max      uint64
		grow     []uint64 // sizes asked of Reallocate, in order
		wantNil  int      // index of the first Reallocate that must fail (-1: none)
		writeEnd bool     // write the last byte after every successful grow
	}{
		{name: "grow in place up to max", max: 16 * page, grow: []uint64{page, 4 * page, 16 * page}, wantNil: -1, writeEnd: true},
		{name: "beyond max fails", max: 2 * page, grow: []uint64{page, 3 * page}, wantNil: 1, writeEnd: true},
		{name: "zero max", max: 0, grow: []uint64{0, page}, wantNil: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &instanceMemory{}
			lm := m.Allocate(0, tt.max)
			if _, ok := lm.(*region); !ok {
				t.Fatalf("Allocate returned %T, want a reserved region", lm)
			}
			var base unsafe.Pointer
			for i, size := range tt.grow {
				buf := lm.Reallocate(size)
				if i == tt.wantNil {
					if buf != nil {
						t.Fatalf("Reallocate(%d) = %d bytes, want nil (max %d)", size, len(buf), tt.max)
					}
					break
				}
				if uint64(len(buf)) != size {
					t.Fatalf("Reallocate(%d) returned %d bytes", size, len(buf))
				}
				if size == 0 {
					continue
				}
				if base == nil {
					base = unsafe.Pointer(&buf[0])
				} else if unsafe.Pointer(&buf[0]) != base {
					t.Fatalf("Reallocate(%d) moved the memory", size)
				}
				if buf[size-1] != 0 {
					t.Fatalf("new memory is not zero")
				}
				if tt.writeEnd {
					buf[size-1] = 1
				}
			}
			lm.Free()
			m.release()
			m.release() // idempotent
			if buf := lm.Reallocate(page); buf != nil {
				t.Fatalf("Reallocate after release returned %d bytes", len(buf))
			}
		})
	}
}

func TestHeapMemoryFallback(t *testing.T) {
	h := &heapMemory{max: 3 * 65536}
	a := h.Reallocate(65536)
	a[0] = 7
	b := h.Reallocate(2 * 65536)
	if len(b) != 2*65536 || b[0] != 7 {
		t.Fatalf("grow lost data or size: len %d, b[0] %d", len(b), b[0])
	}
	if h.Reallocate(4*65536) != nil {
		t.Fatal("Reallocate beyond max succeeded")
	}
}

// TestInstanceMemoryIsReservedAndReleased checks that a real plugin instance's linear
// memories live in reserved regions and that closing the instance unmaps them.
func TestInstanceMemoryIsReservedAndReleased(t *testing.T) {
	if !reserveSupported {
		t.Skip("guest memory is reserved with mmap on Linux only")
	}
	dir := t.TempDir()
	writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))
	h := newHost(t, Options{})
	if err := h.LoadFile(context.Background(), filepath.Join(dir, "echo.wasm"), Spec{Name: "echo", Limits: Limits{WarmInstances: 1, MaxConcurrency: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Call(context.Background(), "echo", abi.HookOnEvents, []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	v := h.entry("echo").current.Load()
	v.mu.Lock()
	in := v.idle[0]
	v.mu.Unlock()
	in.mem.mu.Lock()
	regions := append([]*region(nil), in.mem.regions...)
	in.mem.mu.Unlock()
	if len(regions) != 2 {
		t.Fatalf("instance has %d reserved memories, want 2 (plugin and Extism kernel)", len(regions))
	}
	guest := in.main.Memory()
	if guest == nil || guest.Size() == 0 {
		t.Fatal("plugin has no memory")
	}
	if !inRegions(t, regions, guest) {
		t.Fatal("plugin memory is not in a reserved region")
	}
	in.close()
	for _, r := range regions {
		if !r.unmapped || r.mem != nil {
			t.Fatal("closed instance left a region mapped")
		}
	}
	// The pool lost its idle instance; the next call makes a new one.
	v.mu.Lock()
	v.idle = v.idle[:0]
	v.mu.Unlock()
	if _, err := h.Call(context.Background(), "echo", abi.HookOnEvents, []byte(`{"x":2}`)); err != nil {
		t.Fatal(err)
	}
}

// inRegions reports whether mem's bytes lie in one of regions.
func inRegions(t *testing.T, regions []*region, mem interface {
	Read(uint32, uint32) ([]byte, bool)
}) bool {
	t.Helper()
	b, ok := mem.Read(0, 1)
	if !ok {
		t.Fatal("cannot read guest memory")
	}
	p := uintptr(unsafe.Pointer(&b[0]))
	for _, r := range regions {
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(r.mem)))
		if p >= lo && p < lo+uintptr(len(r.mem)) {
			return true
		}
	}
	return false
}

// TestTrimAfterLoading checks that loading (the plugin and its background warm
// instance) is followed by a trim, and that a closed host does not trim.
func TestTrimAfterLoading(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))
	h := newHost(t, Options{})
	h.trim.delay = 50 * time.Millisecond
	if err := h.LoadFile(context.Background(), filepath.Join(dir, "echo.wasm"), Spec{Name: "echo", Limits: Limits{WarmInstances: 2}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (h.trim.runs.Load() == 0 || statusOf(t, h, "echo").IdleInstances < 2) {
		time.Sleep(10 * time.Millisecond)
	}
	if h.trim.runs.Load() == 0 {
		t.Fatal("no trim within 10s of loading")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n := h.trim.runs.Load()
	h.trim.schedule()
	time.Sleep(150 * time.Millisecond)
	if got := h.trim.runs.Load(); got != n {
		t.Fatalf("closed host trimmed (%d trims, %d before)", got, n)
	}
}
