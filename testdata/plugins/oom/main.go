// Command oom is a hostile test plugin whose on_events hook allocates memory without bound.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

// hold keeps every block reachable so the garbage collector cannot free them.
var hold [][]byte

func init() {
	guest.Register(abi.Manifest{Name: "oom", Version: "1.0.0", Hooks: []abi.Hook{abi.HookOnEvents}})
	guest.OnEvents(func(*abi.Request) (*abi.Result, error) {
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1 // touch every page
			}
			hold = append(hold, b)
		}
	})
}

func main() {}
