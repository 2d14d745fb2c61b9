package transport

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
)

// nopStore accepts everything without storing (the fuzz target never reaches it).
type nopStore struct{}

func (nopStore) InsertEvents(_ context.Context, evs []event.Event) ([]store.InsertResult, error) {
	return make([]store.InsertResult, len(evs)), nil
}
func (nopStore) ExtendExpiry(context.Context, []event.Event) (int, error) { return 0, nil }

// FuzzReceiverVerify drives the receiver's verify → decode → authorize path with
// arbitrary headers and bodies. When sign is set the body is signed correctly, so the
// decoder and validator are reached. Invariants: no panic; anything accepted carries a
// valid HMAC of one configured key, decodes to valid events of the group, and comes from
// a node that key allows.
func FuzzReceiverVerify(f *testing.F) {
	now := time.Unix(1_790_000_000, 0)
	good := mustJSON(f, event.Event{ID: "e1", Group: "lab", SourceNode: "b", Type: "t.observed", Subject: "10.0.0.1"})
	f.Add(strconv.FormatInt(now.Unix(), 10), "", "", good, true, false)
	f.Add(strconv.FormatInt(now.Unix(), 10), "", "b-2026", good, true, false)
	f.Add(strconv.FormatInt(now.Unix(), 10), Sign(secretGroup, now.Unix(), good), "", good, false, false)
	f.Add(strconv.FormatInt(now.Unix()-400, 10), "", "", good, true, false)
	f.Add("1e9", "00", "nope", []byte(`{"id":`), false, false)
	f.Add(strconv.FormatInt(now.Unix(), 10), "", "", []byte(`{"events":[`+string(good)+`]}`), true, true)
	f.Add(strconv.FormatInt(now.Unix(), 10), "", "", []byte(`{"id":"x","group":"lab","type":"t","payload":{"k":1}}`), true, false)
	f.Add(strconv.FormatInt(now.Unix(), 10), "", "", []byte(`{"id":"x","group":"lab","sourceNode":"c","type":"t","expiresAt":"x"}`), true, false)

	r, err := NewReceiver(ReceiverOptions{Group: "lab", LocalNode: "a", Keys: testKeys(), Store: nopStore{}, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ts, sig, keyID string, body []byte, sign, batch bool) {
		h := http.Header{}
		h.Set(HeaderTimestamp, ts)
		if sign {
			secret := secretGroup
			if keyID == "b-2026" {
				secret = secretB
			}
			if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
				sig = Sign(secret, n, body)
			}
		}
		h.Set(HeaderSignature, sig)
		if keyID != "" {
			h.Set(HeaderKeyID, keyID)
		}
		key, raw, rej := r.verify(h, body)
		if rej != nil {
			if rej.status < 400 || rej.reason == "" {
				t.Fatalf("rejection without status or reason: %+v", rej)
			}
			return
		}
		if key == nil || !hmac.Equal(signRaw(key.Secret, h.Get(HeaderTimestamp), body), raw) {
			t.Fatalf("accepted a signature that does not verify: key %v sig %s", key, hex.EncodeToString(raw))
		}
		n, _ := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
		if d := now.Unix() - n; d > 300 || d < -300 {
			t.Fatalf("accepted timestamp %d outside the window", n)
		}
		events, rej := r.decode(body, batch)
		if rej != nil {
			return
		}
		if len(events) == 0 {
			t.Fatal("decode accepted no events")
		}
		for i := range events {
			e := events[i]
			if err := e.Validate(); err != nil {
				t.Fatalf("decode accepted an invalid event: %v", err)
			}
		}
		if rej := r.authorize(key, events); rej != nil {
			return
		}
		for _, e := range events {
			if e.Group != "lab" || e.SourceNode == "a" || !key.allows(e.SourceNode) {
				t.Fatalf("authorized %+v with key %v", e, key)
			}
		}
	})
}
