package guest

import (
	"runtime"
	"runtime/debug"
	"strconv"

	"routerd.net/routerd/abi"
)

// Handler is a typed hook handler: it receives the decoded PluginRequest and returns the
// PluginResult (nil means an empty result). A returned *abi.Error keeps its code; any
// other error is reported with code plugin_error.
type Handler func(req *abi.Request) (*abi.Result, error)

// RawHandler receives the request bytes unchanged and returns the output bytes unchanged
// (no decoding, no version check). The input slice is only valid during the call; the
// output may alias it.
type RawHandler func(input []byte) ([]byte, error)

// registry holds what init functions registered. A guest instance is single-threaded.
var registry struct {
	manifest    abi.Manifest
	registered  bool
	typed       [4]Handler
	raw         [4]RawHandler
	view        [4]ViewHandler
	hookOrder   []abi.Hook
	manifestOut []byte

	dec decoder
	out []byte // output buffer reused across calls
}

// Register sets the plugin manifest. An empty ABI defaults to abi.ManifestVersion; empty
// Hooks default to the hooks that have handlers, in registration order. Call it once,
// from init.
func Register(m abi.Manifest) {
	registry.manifest = m
	registry.registered = true
	registry.manifestOut = nil
}

// OnEvents registers the on_events handler.
func OnEvents(h Handler) { Handle(abi.HookOnEvents, h) }

// Plan registers the plan handler.
func Plan(h Handler) { Handle(abi.HookPlan, h) }

// Execute registers the execute handler.
func Execute(h Handler) { Handle(abi.HookExecute, h) }

// Handle registers a typed handler for hook. It panics on an unknown hook or a second
// registration for the same hook (a programming error caught at start-up).
func Handle(hook abi.Hook, h Handler) {
	id := mustSlot(hook)
	registry.typed[id] = h
}

// HandleRaw registers a raw-bytes handler for hook (e.g. the echo plugin). It panics on an
// unknown hook or a second registration for the same hook.
func HandleRaw(hook abi.Hook, h RawHandler) {
	id := mustSlot(hook)
	registry.raw[id] = h
}

func mustSlot(hook abi.Hook) abi.HookID {
	id, ok := hook.ID()
	if !ok {
		panic("guest: unknown hook " + strconv.Quote(string(hook)))
	}
	if registry.typed[id] != nil || registry.raw[id] != nil || registry.view[id] != nil {
		panic("guest: hook " + strconv.Quote(string(hook)) + " registered twice")
	}
	registry.hookOrder = append(registry.hookOrder, hook)
	registry.manifestOut = nil
	return id
}

// Manifest returns the effective manifest (defaults applied).
func Manifest() abi.Manifest {
	m := registry.manifest
	if m.ABI == "" {
		m.ABI = abi.ManifestVersion
	}
	if len(m.Hooks) == 0 {
		m.Hooks = append([]abi.Hook(nil), registry.hookOrder...)
	}
	return m
}

// Invoke runs the hook with the given id on input exactly as the Wasm exports do, panics
// recovered, and returns the output bytes (valid until the next Invoke). Plugins' native
// unit tests use it to exercise the real codec and handlers.
func Invoke(id abi.HookID, input []byte) ([]byte, error) {
	return dispatch(id, input)
}

// dispatch is the single entry point behind every export.
func dispatch(id abi.HookID, input []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out = nil
			err = &abi.Error{Code: abi.ErrCodePluginPanic,
				Message: "panic in " + id.String() + ": " + panicText(p) + "\n" + string(debug.Stack())}
		}
	}()
	if id == abi.HookIDManifest {
		if !registry.registered {
			return nil, abi.NewError(abi.ErrCodeInternal, "plugin did not call guest.Register")
		}
		if registry.manifestOut == nil {
			m := Manifest()
			registry.manifestOut = AppendManifest(nil, &m)
		}
		return registry.manifestOut, nil
	}
	hook, ok := id.Hook()
	if !ok {
		return nil, abi.NewError(abi.ErrCodeInvalidArgument, "unknown hook id "+strconv.Itoa(int(id)))
	}
	if rh := registry.raw[id]; rh != nil {
		out, err := rh(input)
		if err != nil {
			return nil, asABIError(err)
		}
		return out, nil
	}
	var res *abi.Result
	if vh := registry.view[id]; vh != nil {
		req, err := registry.dec.requestView(input)
		if err != nil {
			return nil, err
		}
		if res, err = vh(req); err != nil {
			return nil, asABIError(err)
		}
		return encodeResult(res), nil
	}
	h := registry.typed[id]
	if h == nil {
		return nil, abi.NewError(abi.ErrCodeHookNotImplemented, "plugin "+strconv.Quote(registry.manifest.Name)+" does not implement hook "+string(hook))
	}
	req, err := registry.dec.request(input)
	if err != nil {
		return nil, err
	}
	if res, err = h(req); err != nil {
		return nil, asABIError(err)
	}
	return encodeResult(res), nil
}

// encodeResult encodes a handler's result (nil: empty) into the reused output buffer.
func encodeResult(res *abi.Result) []byte {
	if res == nil {
		res = &abi.Result{}
	}
	registry.out = AppendResult(registry.out[:0], res)
	return registry.out
}

// asABIError keeps an *abi.Error and classifies anything else as plugin_error.
func asABIError(err error) *abi.Error {
	if e, ok := err.(*abi.Error); ok {
		return e
	}
	return &abi.Error{Code: abi.ErrCodePluginError, Message: err.Error()}
}

// dispatchID is dispatch for a raw i32 hook id from an export.
func dispatchID(id int32, input []byte) ([]byte, error) {
	out, err := dispatch(abi.HookID(id), input)
	// Let other goroutines run before returning to the host. In a Wasm reactor the Go
	// scheduler only switches goroutines while an export is running and its goroutine
	// yields; the garbage collector's background mark workers are goroutines, so without
	// this a collection that has started may never finish and the heap grows until the
	// memory cap (measured: stable for 30 000 calls, then 80 MiB within 10 000 more).
	runtime.Gosched()
	return out, err
}

// encodeFast packs a routerd_call result.
func encodeFast(ptr int32, n int, failed bool) uint64 {
	return abi.EncodeCallResult(uint32(ptr), uint32(n), failed)
}

// internalError returns an *abi.Error with code internal.
func internalError(msg string) error {
	return abi.NewError(abi.ErrCodeInternal, msg)
}

// panicText describes a recovered panic value without package fmt (which would add
// reflection and about half a megabyte to every module).
func panicText(p any) string {
	switch v := p.(type) {
	case string:
		return v
	case error:
		return v.Error()
	case interface{ String() string }:
		return v.String()
	case int:
		return strconv.Itoa(v)
	}
	return "(panic value of a non-error, non-string type)"
}
