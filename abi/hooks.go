package abi

import "strconv"

// Hook is the name of a plugin entry point, which is also the name of its Wasm export.
type Hook string

// The hooks of ABI v1.
const (
	// HookOnEvents receives a batch of federation events and returns dynamic config
	// (Result.Status.Resources) — e.g. RemoteAddressClaims.
	HookOnEvents Hook = "on_events"
	// HookPlan receives desired state in Request.Spec.Context and returns action plans
	// (Result.Status.ActionPlans). Plans are display-only until approved.
	HookPlan Hook = "plan"
	// HookExecute receives one approved plan in Request.Spec.ActionPlan and returns its
	// outcome (Result.Status.ActionResults).
	HookExecute Hook = "execute"
)

// HookID is the numeric hook selector passed to the fast-path export routerd_call.
type HookID int32

// The hook ids of routerd_call.
const (
	// HookIDManifest returns the manifest JSON (input ignored).
	HookIDManifest HookID = 0
	// HookIDOnEvents runs the on_events hook.
	HookIDOnEvents HookID = 1
	// HookIDPlan runs the plan hook.
	HookIDPlan HookID = 2
	// HookIDExecute runs the execute hook.
	HookIDExecute HookID = 3
)

// Hooks lists every hook of ABI v1 in id order.
func Hooks() []Hook { return []Hook{HookOnEvents, HookPlan, HookExecute} }

// Valid reports whether h is a hook of ABI v1.
func (h Hook) Valid() bool {
	_, ok := h.ID()
	return ok
}

// ID returns the fast-path id of h; ok is false for an unknown hook.
func (h Hook) ID() (id HookID, ok bool) {
	switch h {
	case HookOnEvents:
		return HookIDOnEvents, true
	case HookPlan:
		return HookIDPlan, true
	case HookExecute:
		return HookIDExecute, true
	}
	return 0, false
}

// Hook returns the hook named by id; ok is false for HookIDManifest and unknown ids.
func (id HookID) Hook() (h Hook, ok bool) {
	switch id {
	case HookIDOnEvents:
		return HookOnEvents, true
	case HookIDPlan:
		return HookPlan, true
	case HookIDExecute:
		return HookExecute, true
	}
	return "", false
}

// String returns the export name the id stands for.
func (id HookID) String() string {
	if id == HookIDManifest {
		return ExportManifest
	}
	if h, ok := id.Hook(); ok {
		return string(h)
	}
	return "HookID(" + strconv.Itoa(int(id)) + ")"
}

// Export names every v1 plugin module provides (besides one export per declared hook).
const (
	// ExportManifest is the Extism-style export returning the manifest JSON.
	ExportManifest = "routerd_manifest"
	// ExportBuffer is the fast-path export routerd_buffer(size i32) i32 returning a pointer
	// to a guest-owned input buffer of at least size bytes.
	ExportBuffer = "routerd_buffer"
	// ExportCall is the fast-path export routerd_call(hook i32, len i32) i64; see
	// DecodeCallResult.
	ExportCall = "routerd_call"
)

// CallErrorBit is bit 63 of routerd_call's result: set when the call failed and the
// pointer/length pair designates the error text instead of the output.
const CallErrorBit = uint64(1) << 63

// MaxCallPointer is the largest pointer routerd_call can return: bit 63 of the result is
// the error flag, so pointers have 31 bits (guest memory stays far below 2 GiB anyway).
const MaxCallPointer = 0x7fffffff

// EncodeCallResult packs a routerd_call result: ptr<<32 | n, plus CallErrorBit when
// failed. ptr must not exceed MaxCallPointer; higher bits are dropped.
func EncodeCallResult(ptr, n uint32, failed bool) uint64 {
	r := uint64(ptr&MaxCallPointer)<<32 | uint64(n)
	if failed {
		r |= CallErrorBit
	}
	return r
}

// DecodeCallResult unpacks a routerd_call result into the pointer and length of the
// output (or, when failed, of the error text).
func DecodeCallResult(r uint64) (ptr, n uint32, failed bool) {
	failed = r&CallErrorBit != 0
	return uint32(r>>32) & MaxCallPointer, uint32(r), failed
}
