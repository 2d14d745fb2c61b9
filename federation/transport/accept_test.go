package transport

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestAcceptMessages checks the broker form of the receiver: the same verification as a
// v1 POST per message, MaxMessageAge widening only the past side of the replay window,
// and one store transaction for the accepted messages.
func TestAcceptMessages(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		maxAge time.Duration
		age    time.Duration // now - timestamp
		secret []byte
		src    string
		want   Reason // "" : stored
	}{
		{name: "fresh", age: 0, secret: secretGroup, src: "b"},
		{name: "30m old without MaxMessageAge", age: 30 * time.Minute, secret: secretGroup, src: "b", want: ReasonStaleTimestamp},
		{name: "30m old with MaxMessageAge 1h", maxAge: time.Hour, age: 30 * time.Minute, secret: secretGroup, src: "b"},
		{name: "2h old with MaxMessageAge 1h", maxAge: time.Hour, age: 2 * time.Hour, secret: secretGroup, src: "b", want: ReasonStaleTimestamp},
		{name: "30m in the future with MaxMessageAge 1h", maxAge: time.Hour, age: -30 * time.Minute, secret: secretGroup, src: "b", want: ReasonStaleTimestamp},
		{name: "wrong key", secret: secretWrong, src: "b", want: ReasonBadSignature},
		{name: "from the receiving node", secret: secretGroup, src: "a", want: ReasonSpoofedSource},
		{name: "any node with an AnyNode key", secret: secretGroup, src: "z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, "a")
			r, err := NewReceiver(ReceiverOptions{Group: "lab", LocalNode: "a", Store: st, MaxMessageAge: tt.maxAge,
				Keys: []Key{{Secret: secretGroup, AnyNode: true}}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			e := newEvent("lab", tt.src)
			body := mustJSON(t, e)
			ts := now.Add(-tt.age).Unix()
			h := http.Header{}
			h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
			h.Set(HeaderSignature, Sign(tt.secret, ts, body))
			msgs := []SignedMessage{{Header: h, Body: body}, {Header: h, Body: body}}
			res, err := r.AcceptMessages(context.Background(), msgs)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Rejected != tt.want || res[1].Rejected != tt.want {
				t.Fatalf("results = %+v, want rejection %q", res, tt.want)
			}
			if tt.want != "" {
				if r.Rejected(tt.want) != 2 || countEvents(t, st) != 0 {
					t.Errorf("counted %d, stored %d; want 2 and 0", r.Rejected(tt.want), countEvents(t, st))
				}
				return
			}
			// The same message twice in one batch: stored once, the second a duplicate.
			if !res[0].Response.Accepted || res[0].Response.Duplicate || !res[1].Response.Duplicate || countEvents(t, st) != 1 {
				t.Errorf("results = %+v, stored %d", res, countEvents(t, st))
			}
		})
	}
}
