//go:build wasip1

package guest

import (
	"encoding/binary"
	"strconv"
	"unsafe"
)

// The Extism kernel, module extism:host/env. Offsets and lengths are i64 handles into
// the kernel's own memory; bytes move 8 at a time with the u64 loads and stores (the tail
// byte by byte), which is several times faster than byte-wise copying.

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func extismInputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func extismInputLoadU64(offset uint64) uint64

//go:wasmimport extism:host/env length
func extismLength(offset uint64) uint64

//go:wasmimport extism:host/env alloc
func extismAlloc(length uint64) uint64

//go:wasmimport extism:host/env free
func extismFree(offset uint64)

//go:wasmimport extism:host/env output_set
func extismOutputSet(offset, length uint64)

//go:wasmimport extism:host/env error_set
func extismErrorSet(offset uint64)

//go:wasmimport extism:host/env load_u8
func extismLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env load_u64
func extismLoadU64(offset uint64) uint64

//go:wasmimport extism:host/env store_u8
func extismStoreU8(offset uint64, v uint32)

//go:wasmimport extism:host/env store_u64
func extismStoreU64(offset uint64, v uint64)

//go:wasmimport extism:host/env config_get
func extismConfigGet(keyOffset uint64) uint64

//go:wasmimport extism:host/env var_get
func extismVarGet(keyOffset uint64) uint64

//go:wasmimport extism:host/env var_set
func extismVarSet(keyOffset, valueOffset uint64)

//go:wasmimport extism:host/env log_info
func extismLogInfo(offset uint64)

//go:wasmimport extism:host/env log_debug
func extismLogDebug(offset uint64)

//go:wasmimport extism:host/env log_warn
func extismLogWarn(offset uint64)

//go:wasmimport extism:host/env log_error
func extismLogError(offset uint64)

// readInput copies the Extism input into buf (grown as needed) and returns it.
func readInput(buf []byte) []byte {
	n := int(extismInputLength())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], extismInputLoadU64(uint64(i)))
	}
	for ; i < n; i++ {
		buf[i] = byte(extismInputLoadU8(uint64(i)))
	}
	return buf
}

// store copies b into a new kernel memory block and returns its offset.
func store(b []byte) uint64 {
	off := extismAlloc(uint64(len(b)))
	n := len(b)
	i := 0
	for ; i+8 <= n; i += 8 {
		extismStoreU64(off+uint64(i), binary.LittleEndian.Uint64(b[i:]))
	}
	for ; i < n; i++ {
		extismStoreU8(off+uint64(i), uint32(b[i]))
	}
	return off
}

// load copies the kernel memory block at off into a new slice.
func load(off uint64) []byte {
	if off == 0 {
		return nil
	}
	n := int(extismLength(off))
	b := make([]byte, n)
	i := 0
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], extismLoadU64(off+uint64(i)))
	}
	for ; i < n; i++ {
		b[i] = byte(extismLoadU8(off + uint64(i)))
	}
	return b
}

// ConfigValue returns the Extism plugin config value of key (set by the host in the
// Extism manifest), and whether it exists.
func ConfigValue(key string) (string, bool) {
	k := store([]byte(key))
	defer extismFree(k)
	off := extismConfigGet(k)
	if off == 0 {
		return "", false
	}
	defer extismFree(off)
	return string(load(off)), true
}

// Var returns the Extism plugin variable key (instance-local, survives across calls).
func Var(key string) ([]byte, bool) {
	k := store([]byte(key))
	defer extismFree(k)
	off := extismVarGet(k)
	if off == 0 {
		return nil, false
	}
	return load(off), true
}

// SetVar sets the Extism plugin variable key.
func SetVar(key string, value []byte) {
	k := store([]byte(key))
	v := store(value)
	extismVarSet(k, v)
	extismFree(k)
	extismFree(v)
}

// ExtismLog writes msg to the Extism log at level debug, info, warn or error (no grant
// needed; the host decides whether Extism logs are kept).
func ExtismLog(level, msg string) {
	off := store([]byte(msg))
	switch level {
	case "debug":
		extismLogDebug(off)
	case "warn":
		extismLogWarn(off)
	case "error":
		extismLogError(off)
	default:
		extismLogInfo(off)
	}
	extismFree(off)
}

// runExtism serves an Extism-style export: input from the kernel, output via output_set,
// failures via error_set and status 1.
func runExtism(id int32) int32 {
	in := readInput(extismIn)
	extismIn = in[:0]
	out, err := dispatchID(id, in)
	if err != nil {
		extismErrorSet(store([]byte(err.Error())))
		return 1
	}
	extismOutputSet(store(out), uint64(len(out)))
	return 0
}

// extismIn is the reused input copy of the Extism-style path.
var extismIn []byte

// fast-path buffers: the host writes requests into fastIn and reads results from the
// pointer routerd_call returns (kept alive in fastOut until the next call).
var (
	fastIn  []byte
	fastOut []byte
)

func bufferPointer(size int32) int32 {
	if size < 0 {
		return 0
	}
	if cap(fastIn) < int(size) {
		c := int(size)
		if c < 4096 {
			c = 4096
		}
		fastIn = make([]byte, c, c+c/4)
	}
	return ptrOf(fastIn[:cap(fastIn)])
}

func callFast(hook, n int32) uint64 {
	if n < 0 || int(n) > cap(fastIn) {
		return failFast(internalError("routerd_call: length " + strconv.Itoa(int(n)) + " exceeds the buffer of " + strconv.Itoa(cap(fastIn)) + " bytes from routerd_buffer"))
	}
	out, err := dispatchID(hook, fastIn[:n])
	if err != nil {
		return failFast(err)
	}
	fastOut = out
	return encodeFast(ptrOf(out), len(out), false)
}

func failFast(err error) uint64 {
	fastOut = []byte(err.Error())
	return encodeFast(ptrOf(fastOut), len(fastOut), true)
}

func ptrOf(b []byte) int32 {
	if cap(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
