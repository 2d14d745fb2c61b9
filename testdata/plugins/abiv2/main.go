// Command abiv2 is a test plugin whose manifest declares ABI routerd.plugin/v2, which a v1
// host must refuse to load. Its hook would otherwise echo the input.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{Name: "abiv2", Version: "2.0.0", ABI: "routerd.plugin/v2", Hooks: []abi.Hook{abi.HookOnEvents}})
	guest.HandleRaw(abi.HookOnEvents, func(in []byte) ([]byte, error) { return in, nil })
}

func main() {}
