package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

func testKeys() []Key {
	return []Key{
		{ID: "g1", Secret: secretGroup, Nodes: []string{"b", "c"}},
		{ID: "b-2026", Secret: secretB, Nodes: []string{"b"}},
	}
}

func TestReceiverAcceptsAndDeduplicates(t *testing.T) {
	st := openStore(t, "a")
	r, srv := receiverFor(t, st, "a", testKeys(), nil)
	e := newEvent("lab", "b")
	body := mustJSON(t, e)
	now := time.Now().Unix()
	for i, wantDup := range []bool{false, true} {
		// v1: no key id, the group secret; then the per-peer key by id.
		req := signedRequest(t, srv.URL+PathEvents, body, secretGroup, now, "")
		if i == 1 {
			req = signedRequest(t, srv.URL+PathEvents, body, secretB, now, "b-2026")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got AcceptResponse
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !got.Accepted || got.ID != e.ID || got.Duplicate != wantDup {
			t.Fatalf("push %d: status %d %+v, want 200 accepted duplicate=%v", i, resp.StatusCode, got, wantDup)
		}
	}
	if n := countEvents(t, st); n != 1 {
		t.Errorf("store holds %d events, want 1", n)
	}
	s := r.Status()
	if s.Counters.Accepted != 1 || s.Counters.Duplicate != 1 || s.Extensions.Batch == nil || !s.Extensions.KeyID {
		t.Errorf("status = %+v", s)
	}
	// The status carries the receiver's clock and the accepted key ids (never secrets).
	if got := strings.Join(s.KeyIDs, ","); got != "b-2026,g1" {
		t.Errorf("status keyIds = %q, want b-2026,g1", got)
	}
	if ts, err := time.Parse(time.RFC3339Nano, s.Time); err != nil || time.Since(ts).Abs() > time.Minute {
		t.Errorf("status time = %q (%v), want the receiver's clock", s.Time, err)
	}
}

func TestReceiverRejects(t *testing.T) {
	now := time.Now().Unix()
	good := newEvent("lab", "b")
	goodBody := mustJSON(t, good)
	batchBody := func(events ...event.Event) []byte {
		var br BatchRequest
		for _, e := range events {
			br.Events = append(br.Events, mustJSON(t, e))
		}
		return mustJSON(t, br)
	}
	invalid := newEvent("lab", "b")
	invalid.Type = ""
	wrongGroup := newEvent("corp", "b")
	spoofed := newEvent("lab", "c")
	self := newEvent("lab", "a")
	// The subject's bytes are not UTF-8: encoding/json would store U+FFFD instead.
	badUTF8 := bytes.Replace(goodBody, []byte(`"subject":"`), []byte("\"subject\":\"\xff\xfe"), 1)
	badSurrogate := bytes.Replace(goodBody, []byte(`"subject":"`), []byte(`"subject":"\udc00`), 1)
	badTime := strings.Replace(string(goodBody), `"observedAt":"`, `"observedAt":"yesterday`, 1)

	tests := []struct {
		name   string
		req    func(url string) *http.Request
		status int
		reason Reason
	}{
		{name: "tampered body", status: 401, reason: ReasonBadSignature, req: func(url string) *http.Request {
			r := signedRequest(t, url+PathEvents, goodBody, secretGroup, now, "")
			tampered := bytes.Replace(goodBody, []byte("10.0.0.1"), []byte("10.0.0.2"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
			return r
		}},
		{name: "wrong key", status: 401, reason: ReasonBadSignature, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, goodBody, secretWrong, now, "")
		}},
		{name: "right key id, wrong secret", status: 401, reason: ReasonBadSignature, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, goodBody, secretGroup, now, "b-2026")
		}},
		{name: "unknown key id", status: 401, reason: ReasonUnknownKey, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, goodBody, secretGroup, now, "old-key")
		}},
		{name: "signature not hex", status: 401, reason: ReasonBadSignature, req: func(url string) *http.Request {
			r := signedRequest(t, url+PathEvents, goodBody, secretGroup, now, "")
			r.Header.Set(HeaderSignature, strings.ToUpper(Sign(secretGroup, now, goodBody))+"zz")
			return r
		}},
		{name: "stale timestamp", status: 403, reason: ReasonStaleTimestamp, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, goodBody, secretGroup, now-330, "")
		}},
		{name: "future timestamp", status: 403, reason: ReasonStaleTimestamp, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, goodBody, secretGroup, now+330, "")
		}},
		{name: "missing timestamp", status: 400, reason: ReasonBadTimestamp, req: func(url string) *http.Request {
			r := signedRequest(t, url+PathEvents, goodBody, secretGroup, now, "")
			r.Header.Del(HeaderTimestamp)
			return r
		}},
		{name: "timestamp not decimal", status: 400, reason: ReasonBadTimestamp, req: func(url string) *http.Request {
			r := signedRequest(t, url+PathEvents, goodBody, secretGroup, now, "")
			r.Header.Set(HeaderTimestamp, "0x10")
			return r
		}},
		{name: "oversized body", status: 413, reason: ReasonOversize, req: func(url string) *http.Request {
			big := append([]byte(`{"id":"x","pad":"`), bytes.Repeat([]byte("a"), MaxEventBytes)...)
			big = append(big, `"}`...)
			return signedRequest(t, url+PathEvents, big, secretGroup, now, "")
		}},
		{name: "oversized body without length", status: 413, reason: ReasonOversize, req: func(url string) *http.Request {
			big := bytes.Repeat([]byte(" "), MaxEventBytes+1)
			r := signedRequest(t, url+PathEvents, big, secretGroup, now, "")
			r.ContentLength = -1
			return r
		}},
		{name: "malformed JSON", status: 400, reason: ReasonBadBody, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, []byte(`{"id": "x",`), secretGroup, now, "")
		}},
		{name: "payload not strings", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			b := []byte(`{"id":"e1","group":"lab","sourceNode":"b","type":"t","payload":{"n":1}}`)
			return signedRequest(t, url+PathEvents, b, secretGroup, now, "")
		}},
		{name: "bad time", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, []byte(badTime), secretGroup, now, "")
		}},
		{name: "subject not UTF-8", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, badUTF8, secretGroup, now, "")
		}},
		{name: "subject with an unpaired surrogate escape", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, badSurrogate, secretGroup, now, "")
		}},
		{name: "batch with one event not UTF-8", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			body := mustJSON(t, BatchRequest{Events: []json.RawMessage{mustJSON(t, newEvent("lab", "b")), badUTF8}})
			return signedRequest(t, url+PathBatch, body, secretGroup, now, "")
		}},
		{name: "missing type", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, mustJSON(t, invalid), secretGroup, now, "")
		}},
		{name: "wrong group", status: 403, reason: ReasonWrongGroup, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, mustJSON(t, wrongGroup), secretGroup, now, "")
		}},
		{name: "spoofed source", status: 403, reason: ReasonSpoofedSource, req: func(url string) *http.Request {
			// Signed with b's own key but claims to come from c.
			return signedRequest(t, url+PathEvents, mustJSON(t, spoofed), secretB, now, "b-2026")
		}},
		{name: "our own node as source", status: 403, reason: ReasonSpoofedSource, req: func(url string) *http.Request {
			return signedRequest(t, url+PathEvents, mustJSON(t, self), secretGroup, now, "")
		}},
		{name: "batch with one spoofed event", status: 403, reason: ReasonSpoofedSource, req: func(url string) *http.Request {
			return signedRequest(t, url+PathBatch, batchBody(newEvent("lab", "b"), spoofed), secretB, now, "b-2026")
		}},
		{name: "batch with one invalid event", status: 400, reason: ReasonValidation, req: func(url string) *http.Request {
			return signedRequest(t, url+PathBatch, batchBody(newEvent("lab", "b"), invalid), secretGroup, now, "")
		}},
		{name: "empty batch", status: 400, reason: ReasonBadBody, req: func(url string) *http.Request {
			return signedRequest(t, url+PathBatch, []byte(`{"events":[]}`), secretGroup, now, "")
		}},
		{name: "GET events", status: 405, reason: ReasonMethod, req: func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, url+PathEvents, nil)
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, "a")
			r, srv := receiverFor(t, st, "a", testKeys(), nil)
			resp, err := http.DefaultClient.Do(tt.req(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			var er ErrorResponse
			_ = json.NewDecoder(resp.Body).Decode(&er)
			resp.Body.Close()
			if resp.StatusCode != tt.status || er.Reason != tt.reason || er.Accepted {
				t.Errorf("got %d %+v, want %d reason %s", resp.StatusCode, er, tt.status, tt.reason)
			}
			if got := r.Rejected(tt.reason); got != 1 {
				t.Errorf("rejected[%s] = %d, want 1", tt.reason, got)
			}
			if n := countEvents(t, st); n != 0 {
				t.Errorf("store holds %d events after a rejection", n)
			}
		})
	}
}

func TestReceiverReplayedBatch(t *testing.T) {
	st := openStore(t, "a")
	r, srv := receiverFor(t, st, "a", testKeys(), nil)
	body := mustJSON(t, BatchRequest{Events: []json.RawMessage{mustJSON(t, newEvent("lab", "b")), mustJSON(t, newEvent("lab", "c"))}})
	now := time.Now().Unix()
	for i, want := range []int{200, 409} {
		resp, err := http.DefaultClient.Do(signedRequest(t, srv.URL+PathBatch, body, secretGroup, now, "g1"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("push %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	if got := r.Rejected(ReasonReplay); got != 1 {
		t.Errorf("replay rejections = %d, want 1", got)
	}
	if n := countEvents(t, st); n != 2 {
		t.Errorf("store holds %d events, want 2", n)
	}
}

func TestReceiverKeyRotation(t *testing.T) {
	// Old and new secret are both accepted while the rotation is in progress.
	oldSecret, newSecret := []byte("old-secret-0123456789abcdef"), []byte("new-secret-0123456789abcdef")
	keys := []Key{{ID: "k1", Secret: oldSecret, Nodes: []string{"b"}}, {ID: "k2", Secret: newSecret, Nodes: []string{"b"}}}
	st := openStore(t, "a")
	_, srv := receiverFor(t, st, "a", keys, nil)
	tests := []struct {
		name   string
		secret []byte
		id     string
		status int
	}{
		{name: "old key by id", secret: oldSecret, id: "k1", status: 200},
		{name: "new key by id", secret: newSecret, id: "k2", status: 200},
		{name: "new key without id", secret: newSecret, status: 200},
		{name: "retired key", secret: []byte("older-secret-0123456789abcdef"), status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := mustJSON(t, newEvent("lab", "b"))
			resp, err := http.DefaultClient.Do(signedRequest(t, srv.URL+PathEvents, body, tt.secret, time.Now().Unix(), tt.id))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestReceiverDropsExpiredEvents(t *testing.T) {
	expired := func() event.Event {
		e := newEvent("lab", "b")
		e.ObservedAt = time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
		e.ExpiresAt = time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
		return e
	}
	t.Run("v1", func(t *testing.T) {
		st := openStore(t, "a")
		r, srv := receiverFor(t, st, "a", testKeys(), nil)
		e := expired()
		resp, err := http.DefaultClient.Do(signedRequest(t, srv.URL+PathEvents, mustJSON(t, e), secretGroup, time.Now().Unix(), ""))
		if err != nil {
			t.Fatal(err)
		}
		var got AcceptResponse
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := AcceptResponse{Accepted: false, ID: e.ID, Duplicate: false, Reason: ReasonExpired}
		if resp.StatusCode != 200 || got != want {
			t.Errorf("got %d %+v, want 200 %+v", resp.StatusCode, got, want)
		}
		if n := countEvents(t, st); n != 0 {
			t.Errorf("store holds %d events, want the expired one dropped", n)
		}
		if got := r.Rejected(ReasonExpired); got != 1 {
			t.Errorf("rejected[expired] = %d, want 1", got)
		}
		if s := r.Status(); s.Counters.Accepted != 0 || s.Counters.Rejected[ReasonExpired] != 1 {
			t.Errorf("status counters = %+v", s.Counters)
		}
	})
	t.Run("batch", func(t *testing.T) {
		st := openStore(t, "a")
		r, srv := receiverFor(t, st, "a", testKeys(), nil)
		live, old := newEvent("lab", "b"), expired()
		body := mustJSON(t, BatchRequest{Events: []json.RawMessage{mustJSON(t, old), mustJSON(t, live)}})
		resp, err := http.DefaultClient.Do(signedRequest(t, srv.URL+PathBatch, body, secretGroup, time.Now().Unix(), ""))
		if err != nil {
			t.Fatal(err)
		}
		var got BatchResponse
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !got.Accepted || got.Count != 2 || len(got.Results) != 2 {
			t.Fatalf("got %d %+v", resp.StatusCode, got)
		}
		if want := (AcceptResponse{ID: old.ID, Reason: ReasonExpired}); got.Results[0] != want {
			t.Errorf("results[0] = %+v, want %+v", got.Results[0], want)
		}
		if want := (AcceptResponse{Accepted: true, ID: live.ID}); got.Results[1] != want {
			t.Errorf("results[1] = %+v, want %+v", got.Results[1], want)
		}
		if n := countEvents(t, st); n != 1 {
			t.Errorf("store holds %d events, want only the live one", n)
		}
		if got := r.Rejected(ReasonExpired); got != 1 {
			t.Errorf("rejected[expired] = %d, want 1", got)
		}
	})
}
