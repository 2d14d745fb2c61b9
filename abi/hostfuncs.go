package abi

import (
	"encoding/json"
	"time"
)

// Response is the response of host functions that return nothing but success.
type Response struct {
	// Error is set when the call failed.
	Error *Error `json:"error,omitempty"`
}

// Log levels accepted by LogRequest.Level.
const (
	LogDebug = "debug" // LogDebug is the debug level.
	LogInfo  = "info"  // LogInfo is the info level (the default).
	LogWarn  = "warn"  // LogWarn is the warning level.
	LogError = "error" // LogError is the error level.
)

// LogRequest is the body of host function "log".
type LogRequest struct {
	// Level is debug, info, warn or error (default info).
	Level string `json:"level,omitempty"`
	// Message is the log message.
	Message string `json:"message"`
	// Attrs are structured attributes.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// EmitRequest is the body of host function "event_emit".
type EmitRequest struct {
	// Type is the event type; the grant lists allowed types.
	Type string `json:"type"`
	// Subject is what the event is about.
	Subject string `json:"subject,omitempty"`
	// Payload holds string attributes.
	Payload map[string]string `json:"payload,omitempty"`
	// TTL is the event lifetime, e.g. "30m" (default: the group's).
	TTL string `json:"ttl,omitempty"`
}

// EmitResponse is the response of host function "event_emit".
type EmitResponse struct {
	// ID is the new event's id.
	ID string `json:"id,omitempty"`
	// Error is set when the call failed.
	Error *Error `json:"error,omitempty"`
}

// ConfigGetRequest is the body of host function "config_get".
type ConfigGetRequest struct {
	// Kind is the resource kind; the grant lists allowed kinds.
	Kind string `json:"kind"`
	// Name selects one resource; empty returns every resource of Kind.
	Name string `json:"name,omitempty"`
}

// ConfigGetResponse is the response of host function "config_get".
type ConfigGetResponse struct {
	// Resources are the matching documents (secrets stripped).
	Resources []json.RawMessage `json:"resources,omitempty"`
	// Error is set when the call failed.
	Error *Error `json:"error,omitempty"`
}

// KVGetRequest is the body of host function "kv_get".
type KVGetRequest struct {
	// Key is the plugin-private key.
	Key string `json:"key"`
}

// KVGetResponse is the response of host function "kv_get". A missing key is not an
// error: Found is false.
type KVGetResponse struct {
	// Found reports whether the key exists.
	Found bool `json:"found"`
	// Value is the stored value (base64 in JSON).
	Value []byte `json:"value,omitempty"`
	// Error is set when the call failed.
	Error *Error `json:"error,omitempty"`
}

// KVSetRequest is the body of host function "kv_set".
type KVSetRequest struct {
	// Key is the plugin-private key.
	Key string `json:"key"`
	// Value is the value to store (base64 in JSON).
	Value []byte `json:"value"`
}

// NowResponse is the response of host function "now" (whose request is "{}").
type NowResponse struct {
	// Now is the host's wall clock.
	Now time.Time `json:"now"`
	// Error is set when the call failed.
	Error *Error `json:"error,omitempty"`
}

// ProviderRequest is the body of host function "provider_request". The host adds
// credentials and signatures from the named CloudProviderProfile.
type ProviderRequest struct {
	// ProfileRef names the CloudProviderProfile.
	ProfileRef string `json:"profileRef"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the request path on the profile's endpoint (e.g. "/" for the EC2 Query
	// API, "/20160918/privateIps" for OCI); the host joins it to the endpoint it resolves
	// from the profile (region, endpoint override), so a plugin needs no endpoint.
	Path string `json:"path,omitempty"`
	// Query is the URL query, already encoded ("vnicId=...&ipAddress=...").
	Query string `json:"query,omitempty"`
	// URL is an absolute request URL instead of Path and Query; its host must be granted.
	URL string `json:"url,omitempty"`
	// Headers are extra request headers.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the request body (base64 in JSON).
	Body []byte `json:"body,omitempty"`
}

// ProviderResponse is the response of host function "provider_request".
type ProviderResponse struct {
	// StatusCode is the HTTP status.
	StatusCode int `json:"statusCode,omitempty"`
	// Headers are the response headers (first value each).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the response body (base64 in JSON).
	Body []byte `json:"body,omitempty"`
	// Error is set when the call failed.
	Error *Error `json:"error,omitempty"`
}
