// Package clock provides host function "now": the host's wall clock. Granted by
// grants.now; without it a plugin has only the request's spec.now (WASI clocks are not
// wired to the real time).
package clock

import (
	"context"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// Options configure the now function.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns the host functions of this package: now.
func New(opts Options) []capability.Function {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return []capability.Function{{
		Name:    abi.FuncNow,
		Granted: func(g *capability.Grants) bool { return g.Now },
		Handle: func(context.Context, *capability.Call, []byte) (any, error) {
			return response(opts.Now().UTC()), nil
		},
	}}
}

// response encodes abi.NowResponse{Now: t} without reflection (see
// capability.RawResponse); times encoding/json refuses are left to it.
func response(t time.Time) any {
	if y := t.Year(); y < 0 || y > 9999 {
		return abi.NowResponse{Now: t}
	}
	b := make([]byte, 0, 48)
	b = append(b, `{"now":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return capability.RawResponse(append(b, `"}`...))
}
