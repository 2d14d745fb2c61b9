// Package fakehost serves routerd's host functions to a plugin module run on the bare
// Extism go-sdk, for tests of guest code that do not want package host. One handler
// answers both conventions: module "routerd" (Extism memory blocks, used by Extism PDK
// plugins) and module "routerd:direct" (the plugin's own linear memory, used by the Go
// SDK; see abi.HostModuleDirect).
//
// The Extism go-sdk does not give host functions the calling module, whose memory the
// direct convention needs, so Host captures it with a wazero function listener when the
// plugin's first export runs: create the plugin with the context Host.Context returns.
package fakehost

import (
	"context"
	"encoding/json"
	"fmt"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"routerd.net/routerd/abi"
)

// Handler answers host function fn (e.g. abi.FuncKVGet) called with the request JSON:
// it returns the response document, encoded with encoding/json.
type Handler func(fn string, req []byte) any

// Host serves the host functions of one plugin instance.
type Host struct {
	handle  Handler
	mem     api.Memory // the plugin module's memory, once captured
	pending []byte     // a direct response that did not fit the guest's buffer
}

// New returns a Host answering with handle.
func New(handle Handler) *Host { return &Host{handle: handle} }

// Context returns ctx with the listener that captures the plugin's memory; pass it to
// extism.NewPlugin (or NewCompiledPlugin).
func (h *Host) Context(ctx context.Context) context.Context {
	return experimental.WithFunctionListenerFactory(ctx, listenerFactory{h})
}

// Functions returns every routerd host function (abi.HostFunctions) in both modules,
// plus routerd:direct's response.
func (h *Host) Functions() []extism.HostFunction {
	var out []extism.HostFunction
	i32, ptr := extism.ValueTypeI32, extism.ValueTypePTR
	for _, name := range abi.HostFunctions() {
		fn := name
		f := extism.NewHostFunctionWithStack(fn, func(_ context.Context, p *extism.CurrentPlugin, stack []uint64) {
			req, err := p.ReadBytes(stack[0])
			if err != nil {
				panic(fmt.Sprintf("fakehost: %s: read request: %v", fn, err))
			}
			off, err := p.WriteBytes(h.answer(fn, req))
			if err != nil {
				panic(fmt.Sprintf("fakehost: %s: write response: %v", fn, err))
			}
			stack[0] = off
		}, []extism.ValueType{ptr}, []extism.ValueType{ptr})
		f.SetNamespace(abi.HostModule)
		d := extism.NewHostFunctionWithStack(fn, func(_ context.Context, _ *extism.CurrentPlugin, stack []uint64) {
			stack[0] = uint64(h.direct(fn, stack))
		}, []extism.ValueType{i32, i32, i32, i32}, []extism.ValueType{i32})
		d.SetNamespace(abi.HostModuleDirect)
		out = append(out, f, d)
	}
	r := extism.NewHostFunctionWithStack(abi.FuncDirectResponse, func(_ context.Context, _ *extism.CurrentPlugin, stack []uint64) {
		body := h.pending
		h.pending = nil
		ptr, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if body == nil || uint32(len(body)) > capacity || !h.mem.Write(ptr, body) {
			stack[0] = 0
			return
		}
		stack[0] = uint64(len(body))
	}, []extism.ValueType{i32, i32}, []extism.ValueType{i32})
	r.SetNamespace(abi.HostModuleDirect)
	return append(out, r)
}

// answer runs the handler and encodes its response.
func (h *Host) answer(fn string, req []byte) []byte {
	b, err := json.Marshal(h.handle(fn, req))
	if err != nil {
		panic(fmt.Sprintf("fakehost: %s: encode response: %v", fn, err))
	}
	return b
}

// direct serves a routerd:direct call (stack: reqPtr, reqLen, respPtr, respCap).
func (h *Host) direct(fn string, stack []uint64) uint32 {
	h.pending = nil
	if h.mem == nil {
		panic("fakehost: " + fn + " called before the plugin's memory was captured (create the plugin with Host.Context)")
	}
	req, ok := h.mem.Read(api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if !ok {
		panic("fakehost: " + fn + ": request outside guest memory")
	}
	body := h.answer(fn, append([]byte(nil), req...))
	n := uint32(len(body))
	if n > api.DecodeU32(stack[3]) {
		h.pending = body
		return n
	}
	if !h.mem.Write(api.DecodeU32(stack[2]), body) {
		return 0
	}
	return n
}

// listenerFactory attaches the capture to the exports a plugin's first call runs.
type listenerFactory struct{ h *Host }

// NewFunctionListener implements experimental.FunctionListenerFactory.
func (f listenerFactory) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	for _, n := range def.ExportNames() {
		switch n {
		case "_initialize", abi.ExportManifest, string(abi.HookOnEvents), string(abi.HookPlan), string(abi.HookExecute):
			return listener(f)
		}
	}
	return nil
}

// listener records the memory of the module whose export runs.
type listener struct{ h *Host }

// Before implements experimental.FunctionListener.
func (l listener) Before(_ context.Context, mod api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	if l.h.mem == nil {
		l.h.mem = mod.Memory()
	}
}

// After implements experimental.FunctionListener.
func (listener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}

// Abort implements experimental.FunctionListener.
func (listener) Abort(context.Context, api.Module, api.FunctionDefinition, error) {}
