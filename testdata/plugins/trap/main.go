// Command trap is a hostile test plugin: on_events crashes the Go runtime (a panic on
// another goroutine cannot be recovered; the runtime exits with code 2), plan panics inside
// the handler (recovered by the SDK and reported as a plugin_panic error).
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{Name: "trap", Version: "1.0.0", Hooks: []abi.Hook{abi.HookOnEvents, abi.HookPlan}})
	guest.OnEvents(func(*abi.Request) (*abi.Result, error) {
		done := make(chan struct{})
		go func() {
			panic("trap: deliberate crash on another goroutine")
		}()
		<-done
		return nil, nil
	})
	guest.Plan(func(*abi.Request) (*abi.Result, error) {
		var m map[string]int
		m["boom"] = 1 // nil map write: a runtime panic inside the handler
		return nil, nil
	})
}

func main() {}
