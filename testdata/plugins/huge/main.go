// Command huge is a hostile test plugin that returns very large outputs: 100 MB of valid
// JSON from on_events, 2 MiB from plan.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{Name: "huge", Version: "1.0.0"})
	guest.HandleRaw(abi.HookOnEvents, func([]byte) ([]byte, error) { return document(100_000_000), nil })
	guest.HandleRaw(abi.HookPlan, func([]byte) ([]byte, error) { return document(2 << 20), nil })
}

// document returns a valid PluginResult of exactly size bytes: one event with a long message.
func document(size int) []byte {
	const head, tail = `{"status":{"events":[{"type":"huge","message":"`, `"}]}}`
	b := make([]byte, size)
	copy(b, head)
	for i := len(head); i < size-len(tail); i++ {
		b[i] = 'a'
	}
	copy(b[size-len(tail):], tail)
	return b
}

func main() {}
