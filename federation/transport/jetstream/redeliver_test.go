package jetstream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/federation/transport/transporttest"
)

// flakyStore fails its first failures inserts, then stores.
type flakyStore struct {
	*store.Store
	failures atomic.Int64
}

func (f *flakyStore) InsertEvents(ctx context.Context, evs []event.Event) ([]store.InsertResult, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("database is locked")
	}
	return f.Store.InsertEvents(ctx, evs)
}

// TestStoreFailureRedelivers: messages that could not be stored are not acknowledged but
// handed back; they arrive again and are stored once. The metrics count both sides: the
// messages handed back (store_error) and their arrivals again (redelivered).
func TestStoreFailureRedelivers(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	js := jsConfig(srv.URL())
	a := startRouter(t, "a", openStore(t, dir, "a"), js, nil)

	flaky := &flakyStore{Store: openStore(t, dir, "b")}
	flaky.failures.Store(2)
	rx, err := transport.NewReceiver(transport.ReceiverOptions{Group: testGroup, LocalNode: "b", Store: flaky,
		Keys: js.GroupKeys, MaxMessageAge: js.MaxAge})
	if err != nil {
		t.Fatal(err)
	}
	m := newMeter(t)
	br, err := NewBroker(Options{Group: testGroup, LocalNode: "b", Config: *js, MeterProvider: m.mp})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(context.Background(), rx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Shutdown(context.Background()) })

	evs := newEvents("a", 10)
	insert(t, a.st, evs)
	transporttest.WaitUntil(t, 30*time.Second, "events stored after the store recovered", func() bool { return has(t, flaky.Store, evs) })
	if br.Redelivered() == 0 {
		t.Error("no message was handed back while the store failed")
	}
	handedBack := m.get(t, "redeliveries_total", RedeliveryStoreError)
	if handedBack != br.Redelivered() {
		t.Errorf("redeliveries_total{reason=store_error} = %d, Redelivered() = %d: want equal", handedBack, br.Redelivered())
	}
	// Each message handed back arrived again (NumDelivered > 1) before it was stored.
	if again := m.get(t, "redeliveries_total", RedeliveryRedelivered); again < handedBack {
		t.Errorf("redeliveries_total{reason=redelivered} = %d, want at least the %d handed back", again, handedBack)
	}
	if n := count(t, flaky.Store, "a"); n != 10 {
		t.Errorf("b holds %d events, want 10", n)
	}
	if got := rx.Rejected(transport.ReasonStoreError); got != 2 {
		t.Errorf("store_error counted %d times, want 2", got)
	}
}
