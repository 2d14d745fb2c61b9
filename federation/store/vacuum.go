package store

import (
	"context"
	"fmt"
)

// Vacuum rebuilds the file without the free pages that pruning left behind, shrinking it.
//
// Free pages are reused by later inserts, so a node in a steady state needs no vacuum;
// use it after a one-off purge. VACUUM holds the write lock for the whole rebuild (seconds
// for a million events) and needs free disk space for a copy of the database: writers of
// other processes wait up to their busy timeout and then fail, so run it when routerd and
// routerd-eventd are stopped or idle. It returns the file size (database + WAL) saved.
func (s *Store) Vacuum(ctx context.Context) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	before, err := s.Stats(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return 0, fmt.Errorf("store: vacuum %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil && !IsBusy(err) {
		return 0, fmt.Errorf("store: vacuum %s: checkpoint: %w", s.path, err)
	}
	after, err := s.Stats(ctx)
	if err != nil {
		return 0, err
	}
	s.log.Info("store: vacuumed", "path", s.path, "before", before.SizeBytes, "after", after.SizeBytes)
	return before.SizeBytes - after.SizeBytes, nil
}
