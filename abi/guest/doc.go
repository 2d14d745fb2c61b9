// Package guest is the Go SDK for routerd plugins. A plugin is a main package built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o NAME.wasm .
//
// that registers a manifest and typed handlers in init; the SDK provides every Wasm
// export of ABI v1 (routerd_manifest, on_events, plan, execute, routerd_buffer,
// routerd_call), moves bytes through the Extism kernel (extism:host/env, 8-byte loads and
// stores) or the direct-memory fast path, and decodes and encodes the JSON documents
// without reflection (a single-pass scanner for requests and host-function responses,
// package jsonw for output):
//
//	func init() {
//		guest.Register(abi.Manifest{Name: "my-plugin", Version: "1.0.0",
//			Capabilities: []abi.Capability{abi.CapProposeDynamicConfig}})
//		guest.OnEvents(func(req *abi.Request) (*abi.Result, error) { ... })
//	}
//
//	func main() {}
//
// A hot handler that only reads a few payload members can register a view handler
// instead (OnEventsView, HandleView): it gets a RequestView whose events keep their
// payloads as field lists (EventView.PayloadFields, Payload) rather than maps, decoded
// into buffers the SDK reuses, so a call need not allocate at all — inside a Go Wasm
// guest allocations and map operations are what decoding mostly costs. A view's strings
// are only valid during the call. Compact events as the host writes them are decoded
// without copying; anything else takes the general scanner, with the same result.
//
// A panic in a handler is recovered and becomes an error result with code plugin_panic;
// the instance keeps serving. Host functions are wrapped as typed calls: Log, EmitEvent,
// ConfigGet, KVGet, KVSet, Now, ProviderRequest. They are imported from module
// "routerd:direct" (abi.HostModuleDirect): request and response stay in the plugin's
// memory, one boundary crossing per call, so only routerd's host (or host/fakehost in
// tests) can run a plugin that calls them. Only the ones a plugin actually calls are
// imported by its module.
//
// Outside wasip1 the same handlers run natively through Invoke (for unit tests); the host
// functions then return an *abi.Error with code unsupported.
package guest
