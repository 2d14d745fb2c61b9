package guest

import (
	"testing"
)

// BenchmarkDecodeHostResponses measures the guest SDK's share of a host call (decoding
// the response) natively; inside a Wasm guest it costs several times more.
func BenchmarkDecodeHostResponses(b *testing.B) {
	b.Run("now", func(b *testing.B) {
		out := []byte(`{"now":"2026-12-06T02:35:10.123456789Z"}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeNow(out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kv_get", func(b *testing.B) {
		out := []byte(`{"found":true,"value":"dmFsdWU="}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := decodeKVGet(out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode kv_get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = encodeKV("k", nil, false)
		}
	})
}
