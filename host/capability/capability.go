// Package capability is the common shape of the host functions routerd links into every
// plugin instance (Wasm import modules "routerd" and "routerd:direct"). Each host function lives in its own
// small package under host/capability/ (log, clock, kv, config, events) and exposes the
// same constructor, New(Options) []Function; package host links them.
//
// A Function says which grant allows it and serves one call: it receives the request
// JSON the guest sent and returns the response document. The host checks the grant
// before calling Handle (an ungranted function is bound to a denial), and Handle checks
// the argument constraints of the grant (which event types, which Kinds) at call time.
// Failures are returned as *abi.Error values, which the host writes into the response's
// "error" field; a handler never panics the host.
package capability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"routerd.net/routerd/abi"
)

// Grants are what a Plugin resource allows its plugin (Plugin.spec.grants). Everything
// is denied unless granted.
type Grants struct {
	// Log allows host function log.
	Log bool `json:"log,omitempty"`
	// Now allows host function now.
	Now bool `json:"now,omitempty"`
	// KV allows kv_get and kv_set on the plugin's private key space.
	KV bool `json:"kv,omitempty"`
	// ConfigGet allows config_get for the listed Kinds.
	ConfigGet ConfigGetGrant `json:"configGet,omitzero"`
	// EventEmit allows event_emit for the listed event types.
	EventEmit EventEmitGrant `json:"eventEmit,omitzero"`
	// ProviderRequest allows provider_request to the listed hosts and profiles.
	ProviderRequest ProviderRequestGrant `json:"providerRequest,omitzero"`
	// WASI grants environment and file access through WASI.
	WASI WASIGrant `json:"wasi,omitzero"`
}

// ConfigGetGrant lists the Kinds a plugin may read.
type ConfigGetGrant struct {
	Kinds []string `json:"kinds,omitempty"`
}

// EventEmitGrant lists the event types a plugin may emit.
type EventEmitGrant struct {
	Types []string `json:"types,omitempty"`
}

// ProviderRequestGrant lists the CloudProviderProfiles, API hosts, HTTP methods and
// path prefixes a plugin may use with provider_request. Everything not listed is denied.
type ProviderRequestGrant struct {
	Hosts        []string `json:"hosts,omitempty"`
	ProfileRefs  []string `json:"profileRefs,omitempty"`
	Methods      []string `json:"methods,omitempty"`
	PathPrefixes []string `json:"pathPrefixes,omitempty"`
}

// WASIGrant grants WASI access. Without it a plugin sees no environment and no files.
type WASIGrant struct {
	// Env exposes the Plugin resource's spec.env as environment variables.
	Env bool `json:"env,omitempty"`
	// Files are host paths mounted into the guest.
	Files []FileGrant `json:"files,omitempty"`
}

// FileGrant mounts one host directory into the guest.
type FileGrant struct {
	HostPath  string `json:"hostPath"`
	GuestPath string `json:"guestPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Names returns the capability names the grants hold (abi.Cap*), for display.
func (g Grants) Names() []string {
	var out []string
	add := func(ok bool, c abi.Capability) {
		if ok {
			out = append(out, string(c))
		}
	}
	add(g.Log, abi.CapLog)
	add(g.Now, abi.CapNow)
	add(g.KV, abi.CapKV)
	add(len(g.ConfigGet.Kinds) > 0, abi.CapConfigGet)
	add(len(g.EventEmit.Types) > 0, abi.CapEventEmit)
	add(len(g.ProviderRequest.Hosts) > 0 || len(g.ProviderRequest.ProfileRefs) > 0, abi.CapProviderRequest)
	add(g.WASI.Env, abi.CapWASIEnv)
	add(len(g.WASI.Files) > 0, abi.CapWASIFiles)
	return out
}

// Call describes the plugin call a host function serves.
type Call struct {
	// Plugin is the calling plugin's name.
	Plugin string
	// Hook is the hook being run ("routerd_manifest" while loading).
	Hook string
	// Grants are the plugin's grants.
	Grants *Grants
	// DryRun is true when nothing may be changed: functions with side effects
	// (event_emit, kv_set) record what they would do and succeed without doing it.
	DryRun bool
}

// Function is one host function of module "routerd".
type Function struct {
	// Name is the import name, e.g. abi.FuncKVGet.
	Name string
	// Granted reports whether the grants allow the function at all. When false the
	// host binds the import to a denial and never calls Handle.
	Granted func(g *Grants) bool
	// Handle serves one call. req is the request JSON. It returns the response document
	// (marshalled to JSON by the host unless it is a RawResponse; the host sets "error"
	// when err is non-nil).
	// Errors should be *abi.Error; any other error is reported to the guest as
	// abi.ErrCodeInternal with a generic message.
	Handle func(ctx context.Context, c *Call, req []byte) (resp any, err error)
	// Describe optionally summarises a request for audit records and dry-run output
	// (e.g. "type=routerd.x kind=..."); it must not reveal values such as kv contents.
	Describe func(req []byte) string
}

// RawResponse is a response document already encoded as JSON. The host sends it as it
// is instead of encoding the handler's value with encoding/json, whose reflection would
// cost more than the rest of a host call; functions called in loops (now, kv_get)
// return one. It must be one JSON object, exactly what encoding/json would produce for
// the function's abi response type (each package tests that).
type RawResponse []byte

// MarshalJSON implements json.Marshaler: the document itself.
func (r RawResponse) MarshalJSON() ([]byte, error) { return r, nil }

// Denied returns the capability_denied error for fn, naming what was refused.
func Denied(fn, format string, args ...any) *abi.Error {
	return abi.NewError(abi.ErrCodeCapabilityDenied, fn+": "+fmt.Sprintf(format, args...))
}

// Invalid returns the invalid_argument error for fn.
func Invalid(fn, format string, args ...any) *abi.Error {
	return abi.NewError(abi.ErrCodeInvalidArgument, fn+": "+fmt.Sprintf(format, args...))
}

// Decode strictly decodes the request body of fn into v.
func Decode(fn string, req []byte, v any) error {
	if err := json.Unmarshal(req, v); err != nil {
		return Invalid(fn, "request is not valid JSON for this function: %v", err)
	}
	return nil
}

// ErrDenied is returned by (*Error).Is checks in tests: errors.Is(err, ErrDenied) holds
// for every capability_denied *abi.Error.
var ErrDenied error = &abi.Error{Code: abi.ErrCodeCapabilityDenied}

// AsABIError converts any error returned by a handler into the *abi.Error sent to the
// guest: *abi.Error values pass through, anything else becomes a generic internal error
// (the internal chain never reaches the guest).
func AsABIError(err error) *abi.Error {
	var ae *abi.Error
	if errors.As(err, &ae) {
		return ae
	}
	return abi.NewError(abi.ErrCodeInternal, "host function failed")
}

// Record is one host-function call as the host observed it (for audit, dry-run output
// and tests).
type Record struct {
	// Function is the host function name.
	Function string `json:"function"`
	// Allowed is false when the call was denied.
	Allowed bool `json:"allowed"`
	// Code is the error code returned to the guest ("" on success).
	Code string `json:"code,omitempty"`
	// Detail summarises the request (e.g. the event type, the Kind, the key).
	Detail string `json:"detail,omitempty"`
	// Duration is how long the host spent.
	Duration time.Duration `json:"duration"`
}
