package host

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// AuditEntry is one audited plugin action (a denied host-function call).
type AuditEntry struct {
	Time    time.Time
	Actor   string // "plugin/<name>"
	Action  string // "hostcall/<function>"
	Target  string // what was asked for, e.g. "type=routerd.x"
	Outcome string // "denied"
	Detail  string // the error message sent to the guest
}

// Auditor records audited actions; the federation store implements it with
// AppendAudit (wrap it with AuditorFunc).
type Auditor interface {
	Audit(ctx context.Context, e AuditEntry) error
}

// AuditorFunc adapts a function to Auditor.
type AuditorFunc func(ctx context.Context, e AuditEntry) error

// Audit implements Auditor.
func (f AuditorFunc) Audit(ctx context.Context, e AuditEntry) error { return f(ctx, e) }

// auditLimit bounds audit records per plugin and function: a plugin calling a denied
// function in a loop is counted in full (metrics, Status) but audited at most this often.
const auditLimit = time.Second

// auditGate remembers when each (plugin, function) was last audited.
type auditGate struct {
	mu   sync.Mutex
	last map[[2]string]time.Time
}

func (g *auditGate) allow(plugin, fn string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = make(map[[2]string]time.Time)
	}
	k := [2]string{plugin, fn}
	if t, ok := g.last[k]; ok && now.Sub(t) < auditLimit {
		return false
	}
	g.last[k] = now
	return true
}

// unsupportedProviderRequest answers provider_request when no capability package
// provides it: granted plugins get "unsupported", others "capability_denied".
func unsupportedProviderRequest() capability.Function {
	return capability.Function{
		Name: abi.FuncProviderRequest,
		Granted: func(g *capability.Grants) bool {
			return len(g.ProviderRequest.Hosts) > 0 || len(g.ProviderRequest.ProfileRefs) > 0
		},
		Handle: func(context.Context, *capability.Call, []byte) (any, error) {
			return abi.ProviderResponse{}, abi.NewError(abi.ErrCodeUnsupported, abi.FuncProviderRequest+": not available on this host")
		},
	}
}

// hostFunctions builds the host functions of modules "routerd" (Extism memory blocks)
// and "routerd:direct" (the caller's linear memory, see abi.HostModuleDirect). They are
// the same for every plugin (so plugins bound to one module share its compiled code):
// each call takes the calling plugin's name and grants from the call's context and runs
// the handler only when the grant allows the function; otherwise the call is bound to a
// denial. Every function is always linked, so a module importing an ungranted function
// still instantiates.
func (h *Host) hostFunctions() []extism.HostFunction {
	out := make([]extism.HostFunction, 0, 2*len(h.funcs)+1)
	i32 := extism.ValueTypeI32
	for i, f := range h.funcs {
		fn := hostFunc{Function: f, index: i}
		hf := extism.NewHostFunctionWithStack(fn.Name, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			stack[0] = h.serveExtism(ctx, p, fn, stack[0])
		}, []extism.ValueType{extism.ValueTypePTR}, []extism.ValueType{extism.ValueTypePTR})
		hf.SetNamespace(abi.HostModule)
		df := extism.NewHostFunctionWithStack(fn.Name, func(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
			stack[0] = uint64(h.serveDirect(ctx, fn, stack))
		}, []extism.ValueType{i32, i32, i32, i32}, []extism.ValueType{i32})
		df.SetNamespace(abi.HostModuleDirect)
		out = append(out, hf, df)
	}
	rf := extism.NewHostFunctionWithStack(abi.FuncDirectResponse, func(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
		stack[0] = uint64(takeResponse(ctx, stack))
	}, []extism.ValueType{i32, i32}, []extism.ValueType{i32})
	rf.SetNamespace(abi.HostModuleDirect)
	return append(out, rf)
}

// hostFunc is a host function and its position in Host.funcs.
type hostFunc struct {
	capability.Function
	index int
}

// callAttrs returns the metric attributes of fn called by st's plugin, cached in st.
func (h *Host) callAttrs(st *callState, plugin string, fn hostFunc) metric.MeasurementOption {
	if st == nil {
		return h.hostCallAttrs(plugin, fn.Name)
	}
	if st.attrs == nil {
		st.attrs = make([]metric.MeasurementOption, len(h.funcs))
	}
	a := st.attrs[fn.index]
	if a == nil {
		a = h.hostCallAttrs(plugin, fn.Name)
		st.attrs[fn.index] = a
	}
	return a
}

// hostCallAttrs returns the metric attributes of (plugin, function), built once.
func (h *Host) hostCallAttrs(plugin, fn string) metric.MeasurementOption {
	key := [2]string{plugin, fn}
	if a, ok := h.hcAttrs.Load(key); ok {
		return a.(metric.MeasurementOption)
	}
	a := metric.WithAttributeSet(attribute.NewSet(attribute.String("plugin", plugin), attribute.String("function", fn)))
	h.hcAttrs.Store(key, a)
	return a
}

// stateOf returns the call state the host put in a call's context (nil outside one).
func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// serveExtism serves a call of module "routerd": the request is the Extism memory block
// at off, the response a new block whose offset is returned (0 when the kernel's memory
// is exhausted, which the guest SDKs report as a failed host call).
func (h *Host) serveExtism(ctx context.Context, p *extism.CurrentPlugin, fn hostFunc, off uint64) uint64 {
	st := stateOf(ctx)
	k := st.kernelMemory()
	req, err := k.read(ctx, p, off)
	var rerr error
	if err != nil {
		rerr = capability.Invalid(fn.Name, "cannot read the request block at offset %d", off)
	}
	body := h.serveHostCall(ctx, fn, st, req, rerr)
	out, err := k.write(ctx, p, body)
	if err != nil {
		return 0
	}
	return out
}

// serveDirect serves a call of module "routerd:direct" (stack: reqPtr, reqLen, respPtr,
// respCap) through the caller's linear memory and returns the response length.
func (h *Host) serveDirect(ctx context.Context, fn hostFunc, stack []uint64) uint32 {
	st := stateOf(ctx)
	if st == nil || st.guest == nil {
		return 0 // not called from a routerd call: no memory to answer in
	}
	st.pending = nil
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	respPtr, respCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	var req []byte
	var rerr error
	if b, ok := st.guest.Read(reqPtr, reqLen); ok {
		req = append([]byte(nil), b...) // handlers may keep it; guest memory may change
	} else {
		rerr = capability.Invalid(fn.Name, "request of %d bytes at %#x is outside guest memory", reqLen, reqPtr)
	}
	body := h.serveHostCall(ctx, fn, st, req, rerr)
	n := uint32(len(body))
	if n > respCap {
		st.pending = body
		return n
	}
	if !st.guest.Write(respPtr, body) {
		return 0
	}
	return n
}

// takeResponse serves routerd:direct response(ptr, cap): it copies the response of the
// previous direct call that did not fit its buffer.
func takeResponse(ctx context.Context, stack []uint64) uint32 {
	st := stateOf(ctx)
	if st == nil || st.guest == nil || st.pending == nil {
		return 0
	}
	body := st.pending
	st.pending = nil
	ptr, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if uint32(len(body)) > capacity || !st.guest.Write(ptr, body) {
		return 0
	}
	return uint32(len(body))
}

// serveHostCall runs one host-function call whose request has been read (or could not
// be, readErr): check the grant, run the handler, audit and count denials, and return
// the response JSON. It never panics into the guest: a handler panic becomes an
// "internal" error response.
func (h *Host) serveHostCall(ctx context.Context, fn hostFunc, st *callState, req []byte, readErr error) []byte {
	var start time.Time
	if st != nil && st.record {
		start = time.Now()
	}
	var call capability.Call
	if st != nil {
		call = st.call
	}
	if call.Grants == nil {
		call.Grants = &capability.Grants{} // no call context: nothing is granted
	}
	plugin := call.Plugin
	attrs := h.callAttrs(st, plugin, fn)
	var (
		resp any
		herr error
	)
	switch {
	case readErr != nil:
		req, herr = nil, readErr
	case !fn.Granted(call.Grants):
		herr = capability.Denied(fn.Name, "plugin %s holds no grant for %s (Plugin.spec.grants)", plugin, fn.Name)
	default:
		resp, herr = h.handle(ctx, fn.Function, &call, req)
	}
	return h.respond(ctx, plugin, fn.Function, &call, st, req, resp, herr, attrs, start)
}

// handle runs fn's handler, turning a panic into an internal error.
func (h *Host) handle(ctx context.Context, fn capability.Function, call *capability.Call, req []byte) (resp any, herr error) {
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("plugin host function panicked", "plugin", call.Plugin, "function", fn.Name, "panic", fmt.Sprint(r))
			resp, herr = nil, abi.NewError(abi.ErrCodeInternal, fn.Name+": host function failed")
		}
	}()
	return fn.Handle(ctx, call, req)
}

// respond builds the response body and does the bookkeeping of one host call.
func (h *Host) respond(ctx context.Context, plugin string, fn capability.Function, call *capability.Call,
	st *callState, req []byte, resp any, herr error, attrs metric.MeasurementOption, start time.Time) []byte {
	var body []byte
	rec := capability.Record{Function: fn.Name, Allowed: true}
	if herr != nil {
		ae := capability.AsABIError(herr)
		rec.Code = string(ae.Code)
		body, _ = json.Marshal(abi.Response{Error: ae})
		if ae.Code == abi.ErrCodeCapabilityDenied {
			rec.Allowed = false
			h.denied(ctx, plugin, call.Hook, fn, req, ae, attrs)
		}
	} else if raw, ok := resp.(capability.RawResponse); ok {
		body = raw
	} else {
		var err error
		if body, err = json.Marshal(resp); err != nil {
			body, _ = json.Marshal(abi.Response{Error: abi.NewError(abi.ErrCodeInternal, fn.Name+": host function failed")})
			rec.Code = string(abi.ErrCodeInternal)
		}
	}
	h.metrics.hostcall.Add(ctx, 1, attrs)
	if st != nil && st.record {
		if fn.Describe != nil && req != nil {
			rec.Detail = fn.Describe(req)
		}
		rec.Duration = time.Since(start)
		st.records = append(st.records, rec)
	}
	return body
}

// denied counts, logs and audits a capability_denied answer.
func (h *Host) denied(ctx context.Context, plugin, hook string, fn capability.Function, req []byte, ae *abi.Error, attrs metric.MeasurementOption) {
	h.metrics.denied.Add(ctx, 1, attrs)
	if e := h.entry(plugin); e != nil {
		e.stats.countDenied()
	}
	now := time.Now()
	if !h.audits.allow(plugin, fn.Name, now) {
		return
	}
	target := ""
	if fn.Describe != nil && req != nil {
		target = fn.Describe(req)
	}
	h.log.Warn("plugin host call denied", "plugin", plugin, "hook", hook, "function", fn.Name, "target", target, "reason", ae.Message)
	if h.opts.Auditor == nil {
		return
	}
	entry := AuditEntry{Time: now, Actor: "plugin/" + plugin, Action: "hostcall/" + fn.Name, Target: target, Outcome: "denied", Detail: ae.Message}
	if err := h.opts.Auditor.Audit(context.WithoutCancel(ctx), entry); err != nil {
		h.log.Error("plugin audit failed", "plugin", plugin, "function", fn.Name, "err", err)
	}
}
