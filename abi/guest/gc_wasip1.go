//go:build wasip1

package guest

import "runtime/debug"

// GCPercent is the garbage-collection target the SDK sets when a plugin starts. A Go Wasm
// guest is single-threaded, so every collection stops the call in progress; plugin calls
// allocate little and keep almost nothing live, so collecting less often (a 16 MiB minimum
// heap target instead of 4 MiB) removes most GC pauses from call latency at a small,
// bounded memory cost. A plugin may call debug.SetGCPercent itself to change it.
const GCPercent = 400

func init() { debug.SetGCPercent(GCPercent) }
