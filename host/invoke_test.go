package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
)

// TestInvokeDecode checks the call variant for callers that decode the output
// themselves: the host runs their decoder instead of its own check (the output is
// scanned once), and a decoder error is a bad_output failure like a failed check:
// counted, and opening the breaker.
func TestInvokeDecode(t *testing.T) {
	spec := Spec{Name: "c", Module: "capcheck.wasm", Limits: Limits{WarmInstances: 1}}
	h := capHost(t, Options{BreakerThreshold: 2, BreakerCooldown: time.Hour}, spec)
	raw := func(v string) []byte { return capInput(t, op{Fn: "raw", Value: v}) }
	valid := `{"status":{"ttl":"1m"}}`
	var decodes int
	tests := []struct {
		name    string
		input   []byte
		decode  func([]byte) error
		wantErr error
		errors  uint64 // plugin errors counted after the call
		breaker string
	}{
		{name: "valid output decoded once", input: raw(valid), decode: func(out []byte) error {
			if string(out) != valid {
				return fmt.Errorf("decoder got %q", out)
			}
			_, err := abi.DecodeResult(out)
			return err
		}, errors: 0, breaker: "closed"},
		{name: "the host's own check is skipped", input: raw("not json"), decode: func([]byte) error { return nil }, errors: 0, breaker: "closed"},
		{name: "decoder error is bad output", input: raw(`{"status":{"resources":[1]}}`), decode: func(out []byte) error {
			_, err := abi.DecodeResult(out)
			return err
		}, wantErr: ErrBadOutput, errors: 1, breaker: "closed"},
		{name: "second decoder error opens the breaker", input: raw(valid), decode: func([]byte) error { return errors.New("caller says no") },
			wantErr: ErrBadOutput, errors: 2, breaker: "open"},
		{name: "refused while open, decoder not run", input: raw(valid), decode: func([]byte) error { return nil },
			wantErr: ErrCircuitOpen, errors: 3, breaker: "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := decodes
			err := h.InvokeDecode(context.Background(), "c", string(abi.HookOnEvents), tt.input, func(out []byte) error {
				decodes++
				return tt.decode(out)
			})
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			wantDecodes := 1
			if errors.Is(tt.wantErr, ErrCircuitOpen) {
				wantDecodes = 0
			}
			if decodes-before != wantDecodes {
				t.Fatalf("decoder ran %d times, want %d", decodes-before, wantDecodes)
			}
			st := statusOf(t, h, "c")
			if st.Errors != tt.errors || st.Breaker != tt.breaker {
				t.Fatalf("errors %d breaker %s, want %d %s", st.Errors, st.Breaker, tt.errors, tt.breaker)
			}
			if errors.Is(tt.wantErr, ErrBadOutput) && (st.ErrorsByKind["bad_output"] == 0 || !strings.Contains(err.Error(), "output is not a valid PluginResult")) {
				t.Fatalf("error %q, errors by kind %v", err, st.ErrorsByKind)
			}
		})
	}
	if st := statusOf(t, h, "c"); st.BreakerCauseKind != "bad_output" || !strings.Contains(st.BreakerCause, "caller says no") {
		t.Fatalf("breaker cause %q (%s), want the decoder's error", st.BreakerCause, st.BreakerCauseKind)
	}
}
