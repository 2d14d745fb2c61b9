package guest

import (
	"encoding/base64"
	"unsafe"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest/jsonw"
)

// This file and request.go/response.go are the guest's reflection-free codec: a
// single-pass scanner for the PluginRequest and the host-function responses, jsonw for
// encoding. It produces and accepts the same JSON as encoding/json on the abi types (the
// tests compare both), at a fraction of the cost inside a Wasm guest, and keeps fmt,
// reflection and generic JSON libraries out of the module (smaller modules compile and
// load faster).

// decoder parses documents; a guest instance is single-threaded, so one is reused.
type decoder struct {
	// arena holds the bytes of every string decoded by one request call: one allocation
	// per call instead of one per string. It is never written again once a string points
	// into it (a new arena is allocated for the next call), so the strings stay valid for
	// as long as a handler keeps them.
	arena []byte
	key   []byte // scratch for escaped member names, reused across calls
	// lazyArena is the size of the arena to allocate on the first string that needs one
	// (host-function responses: most decode no string that outlives the call).
	lazyArena int
	// rs is the scanner of host-function responses, reused across calls.
	rs scanner

	// View mode (requestView): events are decoded into view, payload members into fields,
	// and strings into keep, all reused from one call to the next.
	viewMode      bool
	eventsPresent bool
	view          RequestView
	fields        []Field
	keep          []byte
}

// str copies b into the arena and returns it as a string.
func (d *decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	d.reserve()
	if len(d.arena)+len(b) > cap(d.arena) {
		return string(b) // arena exhausted (cannot happen for strings of the parsed input)
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

// reserve allocates the lazily sized arena (see lazyArena) before its first use.
func (d *decoder) reserve() {
	if d.lazyArena > 0 && d.arena == nil {
		d.arena = make([]byte, 0, d.lazyArena)
		d.lazyArena = 0
	}
}

// DecodeRequest decodes a PluginRequest with the guest's reflection-free scanner. It checks
// the ABI major version like abi.DecodeRequest; unknown fields are ignored.
//
// # Errors
//
// An *abi.Error with code invalid_argument (malformed JSON, wrong field type) or
// abi_mismatch (another ABI major).
func DecodeRequest(data []byte) (*abi.Request, error) {
	var d decoder
	return d.request(data)
}

// AppendResult appends r as PluginResult JSON (apiVersion and kind filled in) to dst.
// Resources are written verbatim: they must be valid JSON objects (build them with jsonw).
func AppendResult(dst []byte, r *abi.Result) []byte {
	wv := jsonw.Wrap(dst)
	w := &wv
	w.BeginObject()
	w.StringField("apiVersion", orDefault(r.APIVersion, abi.PluginAPIVersion))
	w.StringField("kind", orDefault(r.Kind, abi.KindPluginResult))
	w.Key("status")
	w.BeginObject()
	st := &r.Status
	if !st.ObservedAt.IsZero() {
		w.Key("observedAt")
		w.Time(st.ObservedAt)
	}
	w.StringFieldOmitEmpty("ttl", st.TTL)
	if len(st.Resources) > 0 {
		w.Key("resources")
		w.BeginArray()
		for _, res := range st.Resources {
			w.Raw(res)
		}
		w.EndArray()
	}
	if len(st.Directives) > 0 {
		w.Key("directives")
		w.BeginArray()
		for i := range st.Directives {
			d := &st.Directives[i]
			w.BeginObject()
			w.StringField("op", d.Op)
			w.Key("target")
			w.BeginObject()
			w.StringField("apiVersion", d.Target.APIVersion)
			w.StringField("kind", d.Target.Kind)
			w.StringField("name", d.Target.Name)
			w.EndObject()
			w.StringFieldOmitEmpty("reason", d.Reason)
			w.EndObject()
		}
		w.EndArray()
	}
	if len(st.ActionPlans) > 0 {
		w.Key("actionPlans")
		w.BeginArray()
		for i := range st.ActionPlans {
			writeActionPlan(w, &st.ActionPlans[i])
		}
		w.EndArray()
	}
	if len(st.ActionResults) > 0 {
		w.Key("actionResults")
		w.BeginArray()
		for i := range st.ActionResults {
			a := &st.ActionResults[i]
			w.BeginObject()
			w.StringField("name", a.Name)
			w.StringFieldOmitEmpty("idempotencyKey", a.IdempotencyKey)
			w.StringField("outcome", a.Outcome)
			w.StringFieldOmitEmpty("message", a.Message)
			w.StringMapFieldOmitEmpty("attributes", a.Attributes)
			w.EndObject()
		}
		w.EndArray()
	}
	if len(st.Events) > 0 {
		w.Key("events")
		w.BeginArray()
		for i := range st.Events {
			e := &st.Events[i]
			w.BeginObject()
			w.StringField("type", e.Type)
			w.StringField("message", e.Message)
			w.StringMapFieldOmitEmpty("attributes", e.Attributes)
			w.EndObject()
		}
		w.EndArray()
	}
	w.EndObject()
	w.EndObject()
	return w.Bytes()
}

func writeActionPlan(w *jsonw.Writer, p *abi.ActionPlan) {
	w.BeginObject()
	w.StringField("name", p.Name)
	w.StringField("provider", p.Provider)
	w.StringField("action", p.Action)
	w.StringMapFieldOmitEmpty("target", p.Target)
	w.StringFieldOmitEmpty("providerRef", p.ProviderRef)
	w.StringFieldOmitEmpty("mode", p.Mode)
	w.StringFieldOmitEmpty("description", p.Description)
	w.StringFieldOmitEmpty("riskLevel", p.RiskLevel)
	w.StringFieldOmitEmpty("idempotencyKey", p.IdempotencyKey)
	w.StringMapFieldOmitEmpty("parameters", p.Parameters)
	if len(p.Preconditions) > 0 {
		w.Key("preconditions")
		w.BeginArray()
		for _, c := range p.Preconditions {
			w.BeginObject()
			w.StringField("name", c.Name)
			w.StringFieldOmitEmpty("expect", c.Expect)
			w.StringFieldOmitEmpty("detail", c.Detail)
			w.StringFieldOmitEmpty("target", c.Target)
			w.EndObject()
		}
		w.EndArray()
	}
	if len(p.ExpectedEffects) > 0 {
		w.Key("expectedEffects")
		w.Strings(p.ExpectedEffects)
	}
	if p.Undo != nil {
		w.Key("undo")
		w.BeginObject()
		w.StringField("action", p.Undo.Action)
		w.StringMapFieldOmitEmpty("parameters", p.Undo.Parameters)
		w.EndObject()
	}
	w.EndObject()
}

// AppendManifest appends m as manifest JSON to dst.
func AppendManifest(dst []byte, m *abi.Manifest) []byte {
	wv := jsonw.Wrap(dst)
	w := &wv
	w.BeginObject()
	w.StringField("name", m.Name)
	w.StringField("version", m.Version)
	w.StringField("abi", m.ABI)
	w.Key("hooks")
	w.BeginArray()
	for _, h := range m.Hooks {
		w.String(string(h))
	}
	w.EndArray()
	if len(m.Capabilities) > 0 {
		w.Key("capabilities")
		w.BeginArray()
		for _, c := range m.Capabilities {
			w.String(string(c))
		}
		w.EndArray()
	}
	w.StringFieldOmitEmpty("description", m.Description)
	w.EndObject()
	return w.Bytes()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// --- host-function bodies ---

// hostReq is the buffer every host-function request is encoded into: the host reads a
// request only during its call, so one buffer serves all calls (a Wasm guest pays dearly
// for each allocation). An encoded request is valid until the next one is encoded.
var hostReq []byte

// maxKeptRequest bounds the request buffer kept between calls.
const maxKeptRequest = 64 << 10

// requestWriter returns a writer appending to the reused request buffer.
func requestWriter() jsonw.Writer { return jsonw.Wrap(hostReq[:0]) }

// request returns what w wrote, keeping its buffer for the next request.
func request(w *jsonw.Writer) []byte {
	b := w.Bytes()
	if cap(b) <= maxKeptRequest {
		hostReq = b
	}
	return b
}

func encodeLog(r *abi.LogRequest) []byte {
	w := requestWriter()
	w.BeginObject()
	w.StringFieldOmitEmpty("level", r.Level)
	w.StringField("message", r.Message)
	w.StringMapFieldOmitEmpty("attrs", r.Attrs)
	w.EndObject()
	return request(&w)
}

func encodeEmit(r *abi.EmitRequest) []byte {
	w := requestWriter()
	w.BeginObject()
	w.StringField("type", r.Type)
	w.StringFieldOmitEmpty("subject", r.Subject)
	w.StringMapFieldOmitEmpty("payload", r.Payload)
	w.StringFieldOmitEmpty("ttl", r.TTL)
	w.EndObject()
	return request(&w)
}

func encodeConfigGet(r *abi.ConfigGetRequest) []byte {
	w := requestWriter()
	w.BeginObject()
	w.StringField("kind", r.Kind)
	w.StringFieldOmitEmpty("name", r.Name)
	w.EndObject()
	return request(&w)
}

func encodeKV(key string, value []byte, withValue bool) []byte {
	w := requestWriter()
	w.BeginObject()
	w.StringField("key", key)
	if withValue {
		w.StringField("value", base64.StdEncoding.EncodeToString(value))
	}
	w.EndObject()
	return request(&w)
}

func encodeProvider(r *abi.ProviderRequest) []byte {
	w := requestWriter()
	w.BeginObject()
	w.StringField("profileRef", r.ProfileRef)
	w.StringField("method", r.Method)
	w.StringFieldOmitEmpty("path", r.Path)
	w.StringFieldOmitEmpty("query", r.Query)
	w.StringFieldOmitEmpty("url", r.URL)
	w.StringMapFieldOmitEmpty("headers", r.Headers)
	if len(r.Body) > 0 {
		w.StringField("body", base64.StdEncoding.EncodeToString(r.Body))
	}
	w.EndObject()
	return request(&w)
}
