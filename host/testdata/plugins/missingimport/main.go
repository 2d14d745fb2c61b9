//go:build wasip1

// Command missingimport is a hostile test plugin for package host: it imports a function
// no host provides (env.missing_fn), as a plugin built for another host would. Loading it
// must fail with an error naming the import.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

//go:wasmimport env missing_fn
func missingFn(x uint32) uint32

func init() {
	guest.Register(abi.Manifest{Name: "missingimport", Version: "0.1.0"})
	guest.HandleRaw(abi.HookOnEvents, func(input []byte) ([]byte, error) {
		if missingFn(uint32(len(input))) == 0 {
			return []byte(`{}`), nil
		}
		return input, nil
	})
}

func main() {}
