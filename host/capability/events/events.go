// Package events provides host function "event_emit": a plugin emits a federation event
// of a type its grant lists (grants.eventEmit.types; an entry ending in ".*" allows every
// type under that prefix). The Emitter stores it as a locally originated event.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// Limits of one emitted event.
const (
	DefaultMaxPayloadBytes = 16 << 10
	maxTypeBytes           = 256
	maxSubjectBytes        = 1024
)

// Emitter stores an event a plugin emitted and returns its id.
type Emitter interface {
	Emit(ctx context.Context, plugin string, req abi.EmitRequest) (id string, err error)
}

// Options configure the event_emit function.
type Options struct {
	// Emitter stores the events (nil answers granted requests with unavailable).
	Emitter Emitter
	// MaxPayloadBytes bounds the payload's total size (default DefaultMaxPayloadBytes).
	MaxPayloadBytes int
}

// TypeAllowed reports whether the grant's type list allows typ: an exact entry, or an
// entry "prefix.*" for any type that starts with "prefix.".
func TypeAllowed(allowed []string, typ string) bool {
	for _, a := range allowed {
		if a == typ {
			return true
		}
		if p, ok := strings.CutSuffix(a, "*"); ok && strings.HasSuffix(p, ".") && strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// New returns the host functions of this package: event_emit.
func New(opts Options) []capability.Function {
	if opts.MaxPayloadBytes <= 0 {
		opts.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	return []capability.Function{{
		Name:    abi.FuncEventEmit,
		Granted: func(g *capability.Grants) bool { return len(g.EventEmit.Types) > 0 },
		Handle: func(ctx context.Context, c *capability.Call, req []byte) (any, error) {
			var r abi.EmitRequest
			if err := capability.Decode(abi.FuncEventEmit, req, &r); err != nil {
				return abi.EmitResponse{}, err
			}
			r.Type, r.Subject = strings.TrimSpace(r.Type), strings.TrimSpace(r.Subject)
			switch {
			case r.Type == "":
				return abi.EmitResponse{}, capability.Invalid(abi.FuncEventEmit, "type is empty")
			case len(r.Type) > maxTypeBytes || len(r.Subject) > maxSubjectBytes:
				return abi.EmitResponse{}, abi.NewError(abi.ErrCodeLimitExceeded, abi.FuncEventEmit+": type or subject too long")
			}
			if !TypeAllowed(c.Grants.EventEmit.Types, r.Type) {
				return abi.EmitResponse{}, capability.Denied(abi.FuncEventEmit,
					"event type %q is not granted (grants.eventEmit.types: %v)", r.Type, c.Grants.EventEmit.Types)
			}
			size := 0
			for k, v := range r.Payload {
				size += len(k) + len(v)
			}
			if size > opts.MaxPayloadBytes {
				return abi.EmitResponse{}, abi.NewError(abi.ErrCodeLimitExceeded,
					fmt.Sprintf("%s: payload is %d bytes, limit %d", abi.FuncEventEmit, size, opts.MaxPayloadBytes))
			}
			if r.TTL != "" {
				if d, err := time.ParseDuration(r.TTL); err != nil || d <= 0 {
					return abi.EmitResponse{}, capability.Invalid(abi.FuncEventEmit, "ttl %q: want a positive duration like 30m", r.TTL)
				}
			}
			if c.DryRun {
				return abi.EmitResponse{ID: "dry-run"}, nil
			}
			if opts.Emitter == nil {
				return abi.EmitResponse{}, abi.NewError(abi.ErrCodeUnavailable, abi.FuncEventEmit+": no event store")
			}
			id, err := opts.Emitter.Emit(ctx, c.Plugin, r)
			if err != nil {
				return abi.EmitResponse{}, abi.NewError(abi.ErrCodeUnavailable, abi.FuncEventEmit+": event not stored")
			}
			return abi.EmitResponse{ID: id}, nil
		},
		Describe: func(req []byte) string {
			var r abi.EmitRequest
			if json.Unmarshal(req, &r) != nil {
				return ""
			}
			return "type=" + r.Type
		},
	}}
}
