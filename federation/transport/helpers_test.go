package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
)

var (
	secretGroup = []byte("group-secret-0123456789abcdef")
	secretB     = []byte("peer-b-secret-0123456789abcdef")
	secretWrong = []byte("not-the-secret-0123456789abcdef")
)

func openStore(t testing.TB, name string) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), name+".db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var idSeq atomic.Int64

// newEvent returns a valid event of group g from node src.
func newEvent(g, src string) event.Event {
	n := idSeq.Add(1)
	return event.Event{
		ID:         fmt.Sprintf("%s-%s-%08d", g, src, n),
		Group:      g,
		SourceNode: src,
		Type:       "routerd.client.ipv4.observed",
		Subject:    fmt.Sprintf("10.0.%d.%d", n/250%250, n%250),
		Payload:    map[string]string{"address": "10.0.0.1"},
		ObservedAt: time.Now().UTC().Truncate(time.Millisecond),
		ExpiresAt:  time.Now().Add(30 * time.Minute).UTC().Truncate(time.Millisecond),
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedRequest builds a POST with v1 headers; keyID "" omits the header.
func signedRequest(t testing.TB, url string, body []byte, secret []byte, ts int64, keyID string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	if keyID != "" {
		req.Header.Set(HeaderKeyID, keyID)
	}
	return req
}

// receiverFor serves a Receiver for node on a test server.
func receiverFor(t testing.TB, st EventStore, node string, keys []Key, mod func(*ReceiverOptions)) (*Receiver, *httptest.Server) {
	t.Helper()
	opts := ReceiverOptions{Group: "lab", LocalNode: node, Keys: keys, Store: st}
	if mod != nil {
		mod(&opts)
	}
	r, err := NewReceiver(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func countEvents(t testing.TB, s *store.Store) int64 {
	t.Helper()
	n, err := s.CountEvents(context.Background(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
