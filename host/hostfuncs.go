package host

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"
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

// hostFunctions builds the host functions of module "routerd". They are the same for
// every plugin (so plugins bound to one module share its compiled code): each call
// takes the calling plugin's name and grants from the call's context and runs the
// handler only when the grant allows the function; otherwise the call is bound to a
// denial. Every function is always linked, so a module importing an ungranted function
// still instantiates.
func (h *Host) hostFunctions() []extism.HostFunction {
	out := make([]extism.HostFunction, 0, len(h.funcs))
	for _, f := range h.funcs {
		fn := f
		hf := extism.NewHostFunctionWithStack(fn.Name, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			stack[0] = h.serveHostCall(ctx, p, fn, stack[0])
		}, []extism.ValueType{extism.ValueTypePTR}, []extism.ValueType{extism.ValueTypePTR})
		hf.SetNamespace(abi.HostModule)
		out = append(out, hf)
	}
	return out
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

// serveHostCall runs one host-function call: read the request block, check the grant,
// run the handler, audit and count denials, write the response block. It never panics
// into the guest: a handler panic becomes an "internal" error response.
func (h *Host) serveHostCall(ctx context.Context, p *extism.CurrentPlugin, fn capability.Function, off uint64) (ret uint64) {
	start := time.Now()
	st, _ := ctx.Value(callStateKey{}).(*callState)
	var call capability.Call
	if st != nil {
		call = st.call
	}
	if call.Grants == nil {
		call.Grants = &capability.Grants{} // no call context: nothing is granted
	}
	plugin := call.Plugin
	attrs := h.hostCallAttrs(plugin, fn.Name)
	var (
		req  []byte
		resp any
		herr error
	)
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("plugin host function panicked", "plugin", plugin, "function", fn.Name, "panic", fmt.Sprint(r))
			resp, herr = nil, abi.NewError(abi.ErrCodeInternal, fn.Name+": host function failed")
		}
		ret = h.respond(ctx, p, plugin, fn, &call, st, req, resp, herr, attrs, start)
	}()
	b, err := p.ReadBytes(off)
	if err != nil {
		herr = capability.Invalid(fn.Name, "cannot read the request block at offset %d", off)
		return 0
	}
	req = b
	if !fn.Granted(call.Grants) {
		herr = capability.Denied(fn.Name, "plugin %s holds no grant for %s (Plugin.spec.grants)", plugin, fn.Name)
		return 0
	}
	resp, herr = fn.Handle(ctx, &call, req)
	return 0
}

// respond writes the response block and does the bookkeeping of one host call.
func (h *Host) respond(ctx context.Context, p *extism.CurrentPlugin, plugin string, fn capability.Function, call *capability.Call,
	st *callState, req []byte, resp any, herr error, attrs metric.MeasurementOption, start time.Time) uint64 {
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
	off, err := p.WriteBytes(body)
	if err != nil {
		// The guest's kernel memory is exhausted; return the null offset, which the
		// guest SDK reports as a failed host call.
		return 0
	}
	return off
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
