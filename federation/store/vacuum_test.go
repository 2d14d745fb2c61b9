package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

func TestVacuumShrinksAfterPrune(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	pad := strings.Repeat("x", 2000)
	batch := make([]event.Event, 2000)
	for i := range batch {
		batch[i] = ev(fmt.Sprintf("e%05d", i), "g", "t", "s", time.Second)
		batch[i].Payload["pad"] = pad
	}
	batch[0].ExpiresAt = time.Time{} // one event stays
	if _, err := s.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, PruneOptions{Now: t0.Add(time.Hour), Expired: true}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.FreeBytes < 4<<20 {
		t.Fatalf("only %d free bytes after pruning 4 MB of events", st.FreeBytes)
	}
	saved, err := s.Vacuum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if saved < 4<<20 || after.FreeBytes != 0 || after.Events != 1 {
		t.Errorf("saved %d bytes; after: %d free, %d events, %d bytes", saved, after.FreeBytes, after.Events, after.SizeBytes)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}
