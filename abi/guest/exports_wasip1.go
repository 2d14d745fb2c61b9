//go:build wasip1

package guest

// The exports of ABI v1. Go allows a package to define go:wasmexport functions, so every
// plugin that imports guest gets them all.

//go:wasmexport routerd_manifest
func exportManifest() int32 { return runExtism(0) }

//go:wasmexport on_events
func exportOnEvents() int32 { return runExtism(1) }

//go:wasmexport plan
func exportPlan() int32 { return runExtism(2) }

//go:wasmexport execute
func exportExecute() int32 { return runExtism(3) }

//go:wasmexport routerd_buffer
func exportBuffer(size int32) int32 { return bufferPointer(size) }

//go:wasmexport routerd_call
func exportCall(hook, n int32) int64 { return int64(callFast(hook, n)) }
