package transport

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport/transporttest"
)

// fakePublisher answers Publish with the error of its current mode per event and
// records what it was given.
type fakePublisher struct {
	mu    sync.Mutex
	fail  error
	got   []string
	calls int
}

func (f *fakePublisher) Publish(_ context.Context, events []event.Event, bodies [][]byte) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	errs := make([]error, len(events))
	for i := range events {
		if len(bodies[i]) == 0 {
			errs[i] = errors.New("empty body")
		}
		if f.fail != nil {
			errs[i] = f.fail
			continue
		}
		f.got = append(f.got, events[i].ID)
	}
	return errs
}

func (f *fakePublisher) set(err error) { f.mu.Lock(); f.fail = err; f.mu.Unlock() }

type permanentTestErr struct{}

func (permanentTestErr) Error() string   { return "too large for the broker" }
func (permanentTestErr) Permanent() bool { return true }

// TestPublisherPeer drives a sender whose only peer is a Publisher: acknowledged events
// are delivered rows; a transient error leaves them retrying until it clears; a permanent
// one fails them at once. Relay widens the sent sources.
func TestPublisherPeer(t *testing.T) {
	tests := []struct {
		name      string
		fail      error
		heal      bool // clear the error once the rows are retrying
		wantState string
	}{
		{name: "acknowledged", wantState: store.DeliveryDelivered},
		{name: "broker down, then back", fail: errors.New("not connected"), heal: true, wantState: store.DeliveryDelivered},
		{name: "refused for good", fail: permanentTestErr{}, wantState: store.DeliveryFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, "a")
			pub := &fakePublisher{fail: tt.fail}
			s, err := NewSender(SenderOptions{Group: "lab", LocalNode: "a", Outbox: st, PollInterval: 5 * time.Millisecond,
				RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
				Peers: []Peer{{Name: "jetstream:S", Publisher: pub, Relay: func(src string) bool { return src == "p" }}}})
			if err != nil {
				t.Fatal(err)
			}
			local, relayed, other := newEvent("lab", "a"), newEvent("lab", "p"), newEvent("lab", "n")
			if _, err := st.InsertEvents(context.Background(), []event.Event{local, relayed, other}); err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rows := func(state string) int {
				r, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Group: "lab", Peer: "jetstream:S", State: state})
				if err != nil {
					t.Fatal(err)
				}
				return len(r)
			}
			if tt.heal {
				transporttest.WaitUntil(t, 10*time.Second, "retrying rows", func() bool { return rows(store.DeliveryRetrying) == 2 })
				pub.set(nil)
			}
			transporttest.WaitUntil(t, 10*time.Second, "rows "+tt.wantState, func() bool { return rows(tt.wantState) == 2 })
			pub.mu.Lock()
			defer pub.mu.Unlock()
			// Retries are jittered per event, so only a first attempt keeps store order.
			slices.Sort(pub.got)
			if want := []string{local.ID, relayed.ID}; tt.wantState == store.DeliveryDelivered && !slices.Equal(pub.got, want) {
				t.Errorf("published %v, want %v (never %s: its source is not relayed)", pub.got, want, other.ID)
			}
		})
	}
}
