package main

import (
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

// BenchmarkOnEventsNative runs the same call natively through guest.Invoke (codec + logic).
func BenchmarkOnEventsNative(b *testing.B) {
	in := observedRequest(b)
	b.ReportAllocs()
	for range b.N {
		if _, err := guest.Invoke(abi.HookIDOnEvents, in); err != nil {
			b.Fatal(err)
		}
	}
}
