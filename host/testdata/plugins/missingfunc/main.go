//go:build wasip1

// Command missingfunc is a hostile test plugin for package host: it imports a function
// of module "routerd" that routerd does not have (routerd.missing_fn), as a plugin built
// against a newer routerd would. Loading it must fail with an error naming the import.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

//go:wasmimport routerd missing_fn
func missingFn(x uint32) uint32

func init() {
	guest.Register(abi.Manifest{Name: "missingfunc", Version: "0.1.0"})
	guest.HandleRaw(abi.HookOnEvents, func(input []byte) ([]byte, error) {
		if missingFn(uint32(len(input))) == 0 {
			return []byte(`{}`), nil
		}
		return input, nil
	})
}

func main() {}
