package transport

import (
	"encoding/json"
)

// Wire protocol constants (COMPAT.md "Federation wire protocol v1", plus our extensions).
const (
	// PathEvents receives one event per POST (v1).
	PathEvents = "/v1/events"
	// PathBatch receives {"events":[...]} with one signature (extension).
	PathBatch = "/v1/events:batch"
	// PathStatus answers GET with counters and the advertised extensions.
	PathStatus = "/v1/status"

	// HeaderTimestamp carries unix seconds in decimal.
	HeaderTimestamp = "X-Routerd-Timestamp"
	// HeaderSignature carries lowercase hex HMAC-SHA256 over timestamp + "\n" + body.
	HeaderSignature = "X-Routerd-Signature"
	// HeaderKeyID optionally names the key that signed (extension; v1 peers ignore it).
	HeaderKeyID = "X-Routerd-Key-Id"

	// ProtocolV1 names the wire protocol in /v1/status.
	ProtocolV1 = "routerd.federation/v1"

	// MaxEventBytes is the largest single-event body (v1: 1 MiB).
	MaxEventBytes = 1 << 20
	// DefaultMaxBatchBytes is the largest batch body the receiver accepts by default.
	DefaultMaxBatchBytes = 16 << 20
	// DefaultMaxBatchEvents is the most events per batch the receiver accepts by default.
	DefaultMaxBatchEvents = 1024
)

// Reason is why the receiver rejected a request; it is the reason attribute of
// routerd_eventd_receiver_reject_total and a key of the status counters.
type Reason string

// Rejection reasons: the COMPAT.md ones, then ours.
const (
	ReasonReadBody       Reason = "read_body"
	ReasonBadTimestamp   Reason = "bad_timestamp"
	ReasonStaleTimestamp Reason = "stale_timestamp"
	ReasonBadSignature   Reason = "bad_signature"
	ReasonBadBody        Reason = "bad_body"
	ReasonValidation     Reason = "validation"
	ReasonStoreError     Reason = "store_error"
	ReasonOversize       Reason = "oversize"
	ReasonWrongGroup     Reason = "wrong_group"
	ReasonSpoofedSource  Reason = "spoofed_source"
	ReasonUnknownKey     Reason = "unknown_key"
	ReasonReplay         Reason = "replay"
	ReasonMethod         Reason = "method"
	// ReasonExpired counts events that had already expired when they arrived: they are
	// answered 200 (so the sender stops retrying) but not stored.
	ReasonExpired Reason = "expired"
)

// numReasons is len(Reasons).
const numReasons = 14

// Reasons lists every rejection reason in a stable order.
var Reasons = []Reason{
	ReasonReadBody, ReasonBadTimestamp, ReasonStaleTimestamp, ReasonBadSignature,
	ReasonBadBody, ReasonValidation, ReasonStoreError, ReasonOversize, ReasonWrongGroup,
	ReasonSpoofedSource, ReasonUnknownKey, ReasonReplay, ReasonMethod, ReasonExpired,
}

// AcceptResponse is the v1 success body for one event. An event that had already
// expired is answered 200 with Accepted false (it was not stored), Duplicate false and
// Reason ReasonExpired; a v1 sender only looks at the status and stops retrying.
type AcceptResponse struct {
	Accepted  bool   `json:"accepted"`
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
	Reason    Reason `json:"reason,omitempty"`
}

// BatchRequest is the body of a batch POST.
type BatchRequest struct {
	Events []json.RawMessage `json:"events"`
}

// BatchResponse is the success body of a batch POST; Results follow the request order.
type BatchResponse struct {
	Accepted   bool             `json:"accepted"`
	Count      int              `json:"count"`
	Duplicates int              `json:"duplicates"`
	Results    []AcceptResponse `json:"results"`
}

// ErrorResponse is the body of every rejection: a safe, fixed message per reason that
// never carries internal error text.
type ErrorResponse struct {
	Accepted bool   `json:"accepted"`
	Reason   Reason `json:"reason"`
	Error    string `json:"error"`
}

// Status is the body of GET /v1/status.
type Status struct {
	Protocol string `json:"protocol"`
	Group    string `json:"group"`
	Node     string `json:"node"`
	// Time is the receiver's clock when it answered (RFC 3339, UTC; extension: a v1
	// peer does not send it). routerctl doctor federation measures clock skew with it.
	Time string `json:"time,omitempty"`
	// KeyIDs are the ids of the keys the receiver accepts, sorted (extension; the ids
	// only, never a secret). A sender whose X-Routerd-Key-Id is not among them is
	// answered unknown_key.
	KeyIDs     []string       `json:"keyIds,omitempty"`
	Extensions Extensions     `json:"extensions"`
	Counters   StatusCounters `json:"counters"`
}

// Extensions advertises what this receiver understands beyond plain v1.
type Extensions struct {
	// Batch is set when POST PathBatch is served.
	Batch *BatchExtension `json:"batch,omitempty"`
	// KeyID is true when the X-Routerd-Key-Id header is honoured.
	KeyID bool `json:"keyId"`
}

// BatchExtension describes the batch form's limits.
type BatchExtension struct {
	Path      string `json:"path"`
	MaxEvents int    `json:"maxEvents"`
	MaxBytes  int64  `json:"maxBytes"`
}

// StatusCounters are the receiver's counters since start.
type StatusCounters struct {
	Accepted  int64            `json:"accepted"`
	Duplicate int64            `json:"duplicate"`
	Rejected  map[Reason]int64 `json:"rejected"`
}
