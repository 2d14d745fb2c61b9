package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

func TestReclaim(t *testing.T) {
	ctx := context.Background()
	pragma := func(s *Store, name string) int64 {
		var n int64
		if err := s.DB().QueryRow(`PRAGMA ` + name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tests := []struct {
		name     string
		opts     ReclaimOptions
		wantAll  bool
		maxPages int64
	}{
		{name: "all free pages in small steps", opts: ReclaimOptions{StepPages: 50, Pause: -1}, wantAll: true},
		{name: "bounded by MaxPages", opts: ReclaimOptions{StepPages: 50, MaxPages: 120, Pause: -1}, maxPages: 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t)
			pad := strings.Repeat("x", 2000)
			batch := make([]event.Event, 2000)
			for i := range batch {
				batch[i] = ev(fmt.Sprintf("e%05d", i), "g", "t", "s", time.Second)
				batch[i].Payload["pad"] = pad
			}
			if _, err := s.InsertEvents(ctx, batch); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Prune(ctx, PruneOptions{Now: t0.Add(time.Hour), Expired: true}); err != nil {
				t.Fatal(err)
			}
			freeBefore, pagesBefore := pragma(s, "freelist_count"), pragma(s, "page_count")
			if freeBefore < 500 {
				t.Fatalf("only %d free pages after pruning 4 MB of events", freeBefore)
			}
			released, err := s.Reclaim(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			freeAfter, pagesAfter := pragma(s, "freelist_count"), pragma(s, "page_count")
			// Pointer-map pages go too, so the file may shrink by a little more.
			if released != freeBefore-freeAfter || pagesAfter > pagesBefore-released {
				t.Errorf("released %d; free %d -> %d; pages %d -> %d", released, freeBefore, freeAfter, pagesBefore, pagesAfter)
			}
			if tc.wantAll && freeAfter != 0 {
				t.Errorf("%d free pages left", freeAfter)
			}
			if tc.maxPages > 0 && released != tc.maxPages {
				t.Errorf("released %d, want exactly %d", released, tc.maxPages)
			}
			if err := s.IntegrityCheck(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReclaimNeedsIncrementalVacuum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	// A file whose tables were created before incremental vacuum was enabled.
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE legacy (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Reclaim(context.Background(), ReclaimOptions{}); !errors.Is(err, ErrNoIncrementalVacuum) {
		t.Fatalf("err = %v, want ErrNoIncrementalVacuum", err)
	}
}
