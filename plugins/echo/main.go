// Command echo is a routerd plugin that returns its input bytes unchanged from every
// hook. Benchmarks use it to measure the host's own per-call overhead, and tests use it as
// the simplest well-behaved plugin.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{
		Name:        "echo",
		Version:     "1.0.0",
		Description: "returns its input unchanged from every hook",
	})
	for _, h := range abi.Hooks() {
		guest.HandleRaw(h, echo)
	}
}

// echo returns the request bytes themselves: no copy, no decoding.
func echo(input []byte) ([]byte, error) { return input, nil }

func main() {}
