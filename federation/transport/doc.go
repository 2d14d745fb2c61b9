// Package transport carries federation events between the routers of one event group:
// the HMAC-signed wire protocol (v1, wire-compatible with the original routerd, plus a
// batch extension), the receiver that verifies and stores pushed events, and the sender
// that pushes locally originated events to every peer through a persistent outbox with
// retries, backoff and TTL refresh.
//
// # Wire protocol v1
//
// A sender POSTs one event as JSON to {endpoint}/v1/events with the headers
// X-Routerd-Timestamp (unix seconds) and X-Routerd-Signature (lowercase hex
// HMAC-SHA256 over timestamp + "\n" + body). The receiver answers 200
// {"accepted":true,"id":"...","duplicate":false|true}, or 400 (malformed), 401 (bad
// signature), 403 (stale timestamp), 405 (not POST), 413 (too large) or 500 (store
// failure; the sender retries).
//
// # Extensions
//
// GET /v1/status advertises the batch form (POST /v1/events:batch, a JSON object
// {"events":[...]} signed once) and the optional X-Routerd-Key-Id header. The sender uses
// the batch form only with peers that advertise it and speaks plain v1 to everybody else.
package transport
