// Command gcchurn is a test plugin that allocates and drops memory on every call, to check
// that the garbage collector keeps up inside a Wasm reactor (the guest's memory must stay
// bounded however many calls are made).
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

// sink keeps the latest allocation reachable until the next call, so the work is real.
var sink [][]byte

func init() {
	guest.Register(abi.Manifest{Name: "gcchurn", Version: "0.0.1"})
	guest.HandleRaw(abi.HookOnEvents, func(in []byte) ([]byte, error) {
		// 256 blocks of 4 KiB per call: 1 MiB of garbage, in objects small enough to be
		// collected by the normal (not large-object) path.
		sink = sink[:0]
		for i := 0; i < 256; i++ {
			b := make([]byte, 4096)
			b[0] = byte(i)
			sink = append(sink, b)
		}
		return []byte(`{}`), nil
	})
}

func main() {}
