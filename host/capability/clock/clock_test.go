package clock

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// TestNowResponseMatchesEncodingJSON checks the reflection-free now response against
// encoding/json on abi.NowResponse, including times encoding/json refuses.
func TestNowResponseMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
	}{
		{name: "whole second", now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)},
		{name: "nanoseconds", now: time.Date(2026, 12, 6, 2, 35, 10, 123456789, time.UTC)},
		{name: "trailing zeros", now: time.Date(2026, 12, 6, 2, 35, 10, 120000000, time.UTC)},
		{name: "zero time", now: time.Time{}},
		{name: "year 10000", now: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "negative year", now: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns := New(Options{Now: func() time.Time { return tt.now }})
			resp, err := fns[0].Handle(context.Background(), &capability.Call{Grants: &capability.Grants{Now: true}}, []byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			got, gerr := json.Marshal(resp)
			want, werr := json.Marshal(abi.NowResponse{Now: tt.now})
			if (gerr != nil) != (werr != nil) || string(got) != string(want) {
				t.Fatalf("response %s (%v), want %s (%v)", got, gerr, want, werr)
			}
		})
	}
}
