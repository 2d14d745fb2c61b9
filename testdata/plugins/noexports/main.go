// Command noexports is a valid wasip1 reactor module that exports none of routerd's
// functions (no routerd_manifest, no hooks): the host must refuse to load it.
package main

//go:wasmexport hello
func hello() int32 { return 42 }

func main() {}
