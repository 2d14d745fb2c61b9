//go:build wasip1

// Command pdkstyle is a test plugin for package host written against the bare Extism
// kernel, the way an Extism PDK plugin is: it exports routerd_manifest and on_events but
// not the routerd fast-path exports, so the host must call it through the Extism path.
// on_events echoes its input; an input containing "fail" makes it report an error
// through error_set, and one containing "now" calls host function routerd.now with
// Extism memory blocks, as PDK plugins do, and returns the host's response.
package main

import "strings"

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env alloc
func alloc(length uint64) uint64

//go:wasmimport extism:host/env store_u8
func storeU8(offset uint64, v uint32)

//go:wasmimport extism:host/env output_set
func outputSet(offset, length uint64)

//go:wasmimport extism:host/env error_set
func errorSet(offset uint64)

//go:wasmimport extism:host/env length
func length(offset uint64) uint64

//go:wasmimport extism:host/env load_u8
func loadU8(offset uint64) uint32

//go:wasmimport routerd now
func hostNow(offset uint64) uint64

func input() []byte {
	n := inputLength()
	b := make([]byte, n)
	for i := uint64(0); i < n; i++ {
		b[i] = byte(inputLoadU8(i))
	}
	return b
}

func get(off uint64) []byte {
	b := make([]byte, length(off))
	for i := range b {
		b[i] = byte(loadU8(off + uint64(i)))
	}
	return b
}

func put(b []byte) uint64 {
	off := alloc(uint64(len(b)))
	for i, c := range b {
		storeU8(off+uint64(i), uint32(c))
	}
	return off
}

//go:wasmexport routerd_manifest
func manifest() int32 {
	m := []byte(`{"name":"pdkstyle","version":"0.0.1","abi":"routerd.plugin/v1","hooks":["on_events"]}`)
	outputSet(put(m), uint64(len(m)))
	return 0
}

//go:wasmexport on_events
func onEvents() int32 {
	in := input()
	if strings.Contains(string(in), "fail") {
		errorSet(put([]byte("pdkstyle: asked to fail")))
		return 1
	}
	if strings.Contains(string(in), "now") {
		in = get(hostNow(put([]byte("{}"))))
	}
	outputSet(put(in), uint64(len(in)))
	return 0
}

func main() {}
