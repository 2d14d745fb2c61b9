package abi

// Capability names a permission a plugin requests in its manifest and an operator grants
// in the Plugin resource. Everything is denied unless granted.
type Capability string

// Capabilities of the original routerd plugin model (Plugin.spec.capabilities).
const (
	// CapObserveCloud lets a plugin read cloud-side state passed in its context.
	CapObserveCloud Capability = "observe.cloud"
	// CapObserveProviderPrivateIPs lets a plugin read provider private IP inventories.
	CapObserveProviderPrivateIPs Capability = "observe.providerPrivateIPs"
	// CapProposeDynamicConfig lets a plugin's output become DynamicConfigParts.
	CapProposeDynamicConfig Capability = "propose.dynamicConfig"
	// CapProposeProviderAction lets a plugin return ActionPlans.
	CapProposeProviderAction Capability = "propose.providerAction"
	// CapExecuteProviderAction lets a plugin's execute hook run approved ActionPlans.
	CapExecuteProviderAction Capability = "execute.providerAction"
)

// Capabilities that gate host functions (Plugin.spec.grants).
const (
	// CapLog gates host function "log" (grants.log).
	CapLog Capability = "log"
	// CapNow gates host function "now" (grants.now).
	CapNow Capability = "now"
	// CapKV gates host functions "kv_get" and "kv_set" (grants.kv).
	CapKV Capability = "kv"
	// CapConfigGet gates host function "config_get" (grants.configGet.kinds).
	CapConfigGet Capability = "config.get"
	// CapEventEmit gates host function "event_emit" (grants.eventEmit.types).
	CapEventEmit Capability = "event.emit"
	// CapProviderRequest gates host function "provider_request"
	// (grants.providerRequest.hosts, profileRefs).
	CapProviderRequest Capability = "provider.request"
	// CapWASIEnv exposes the host-configured environment through WASI (grants.wasi.env).
	CapWASIEnv Capability = "wasi.env"
	// CapWASIFiles mounts the listed host paths through WASI (grants.wasi.files).
	CapWASIFiles Capability = "wasi.files"
)

// Capabilities lists every capability known to ABI v1, original ones first.
func Capabilities() []Capability {
	return []Capability{
		CapObserveCloud, CapObserveProviderPrivateIPs, CapProposeDynamicConfig,
		CapProposeProviderAction, CapExecuteProviderAction,
		CapLog, CapNow, CapKV, CapConfigGet, CapEventEmit, CapProviderRequest,
		CapWASIEnv, CapWASIFiles,
	}
}

// Known reports whether c is a capability of ABI v1.
func (c Capability) Known() bool {
	for _, k := range Capabilities() {
		if c == k {
			return true
		}
	}
	return false
}

// HostModule is the Wasm import module of routerd's host functions.
const HostModule = "routerd"

// HostModuleDirect is the import module of the same host functions (same names, same
// JSON bodies, same grants) with the direct-memory convention, which avoids the Extism
// kernel: fn(reqPtr, reqLen, respPtr, respCap i32) → respLen i32. The host reads the
// request from the caller's linear memory and writes the response to
// memory[respPtr : respPtr+respLen] when respLen ≤ respCap; a larger response is kept
// for FuncDirectResponse. respLen 0 means the host could not answer (e.g. a response
// buffer outside the caller's memory). The Go SDK uses this module.
const HostModuleDirect = "routerd:direct"

// FuncDirectResponse, in module HostModuleDirect, copies the response that did not fit
// the caller's buffer: response(ptr, cap i32) → len i32 (0 when there is none or it does
// not fit cap). The response is kept until the next host call of the instance.
const FuncDirectResponse = "response"

// Host function names in module HostModule. Each follows the Extism convention: it takes
// the i64 offset of an Extism memory block holding the JSON request and returns the i64
// offset of a block holding the JSON response (every response may carry "error").
const (
	// FuncLog writes a log line (LogRequest → Response).
	FuncLog = "log"
	// FuncEventEmit emits a federation event (EmitRequest → EmitResponse).
	FuncEventEmit = "event_emit"
	// FuncConfigGet reads granted config resources (ConfigGetRequest → ConfigGetResponse).
	FuncConfigGet = "config_get"
	// FuncKVGet reads a plugin-private key (KVGetRequest → KVGetResponse).
	FuncKVGet = "kv_get"
	// FuncKVSet writes a plugin-private key (KVSetRequest → Response).
	FuncKVSet = "kv_set"
	// FuncNow returns the host's clock ({} → NowResponse).
	FuncNow = "now"
	// FuncProviderRequest sends a provider API request signed by the host
	// (ProviderRequest → ProviderResponse). Optional in v1.0: a host that does not
	// implement it answers with ErrCodeUnsupported.
	FuncProviderRequest = "provider_request"
)

// HostFunctions lists every host function name of ABI v1.
func HostFunctions() []string {
	return []string{FuncLog, FuncEventEmit, FuncConfigGet, FuncKVGet, FuncKVSet, FuncNow, FuncProviderRequest}
}

// HostFunctionCapability returns the capability that gates host function fn; ok is false
// for an unknown function.
func HostFunctionCapability(fn string) (c Capability, ok bool) {
	switch fn {
	case FuncLog:
		return CapLog, true
	case FuncNow:
		return CapNow, true
	case FuncKVGet, FuncKVSet:
		return CapKV, true
	case FuncConfigGet:
		return CapConfigGet, true
	case FuncEventEmit:
		return CapEventEmit, true
	case FuncProviderRequest:
		return CapProviderRequest, true
	}
	return "", false
}
