// Command loop is a hostile test plugin whose hooks never return.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

// spins is written so the loops have an observable effect.
var spins uint64

func init() {
	guest.Register(abi.Manifest{Name: "loop", Version: "1.0.0", Hooks: []abi.Hook{abi.HookOnEvents, abi.HookPlan}})
	guest.OnEvents(func(*abi.Request) (*abi.Result, error) {
		for {
			spins++
		}
	})
	guest.Plan(func(*abi.Request) (*abi.Result, error) {
		for {
			spin()
		}
	})
}

//go:noinline
func spin() { spins++ }

func main() {}
