// Package host runs routerd's WebAssembly plugins.
//
// A Host loads every *.wasm module of the plugin directory through the Extism go-sdk on
// wazero: it validates the file (magic, size, optional sha256 pin from the Plugin
// resource), compiles it once with a persistent wazero compilation cache, calls the
// module's routerd_manifest export and refuses an unknown ABI major. Each plugin keeps a
// bounded pool of warm instances (limits.warmInstances idle, limits.maxConcurrency in
// use at once).
//
// Calls take the fast path when the module exports routerd_buffer and routerd_call (the
// routerd Go guest SDK does): the host writes the request straight into guest memory and
// reads the response from it, two boundary crossings per call. Modules without those
// exports (any Extism PDK plugin) are called through the Extism call path.
//
// Every call runs under the plugin's limits: a context deadline that closes the instance
// when it expires, a memory page cap, and an output size cap. An instance that trapped,
// timed out or hit its memory cap is discarded, never reused. Consecutive failures open a
// per-plugin circuit breaker that half-opens after a cool-down.
//
// Memory: guest linear memory is reserved address space made accessible as the guest
// grows (linearmem.go), not Go heap, and is returned to the OS when an instance closes;
// data segments are merged before compiling (internal/datamerge); after a burst of
// loading the host returns the loader's garbage to the OS (trim.go). docs/plugins.md
// ("Memory") gives the cost per module and per instance.
//
// Host functions (log, event_emit, config_get, kv_get, kv_set, now, provider_request) are
// provided by the capability packages under host/capability/. Each is linked into every
// instance twice: in module "routerd" with Extism memory blocks (Extism PDK plugins;
// kernelmem.go) and in module "routerd:direct" through the plugin's own linear memory
// (the Go SDK: one boundary crossing per call; hostfuncs.go). An ungranted one answers
// with the capability_denied error code, is audited and counted.
//
// Watch follows the plugin directory with fsnotify: a new file loads, a replaced file
// swaps in after the calls running on the old version finish, a removed file unloads,
// and a broken new version leaves the old one serving (Status shows it).
//
// # Lifecycle
//
//	New → Configure (Plugin resources) → LoadDir / Watch → Call … → Status → Close
package host
