package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrNoIncrementalVacuum is returned by Reclaim on a file created without incremental
// auto-vacuum (by a routerd before it was enabled); VACUUM it offline instead.
var ErrNoIncrementalVacuum = errors.New("store: file was created without incremental auto-vacuum")

// ReclaimOptions pace Reclaim.
type ReclaimOptions struct {
	// StepPages is the number of free pages returned per write transaction (default 1024:
	// 4 MiB with the default page size).
	StepPages int
	// MaxPages stops after this many pages (0: until none are free).
	MaxPages int64
	// Pause is slept between steps (default DefaultPrunePause; negative: none).
	Pause time.Duration
}

// Reclaim returns free pages (left behind by pruning) to the filesystem, shrinking the
// file, in small steps so that writers are not held up. It returns the number of pages
// released.
//
// # Errors
//
// ErrNoIncrementalVacuum for a file created without incremental auto-vacuum; ctx.Err()
// when cancelled (with the pages released so far); the failing step otherwise.
func (s *Store) Reclaim(ctx context.Context, o ReclaimOptions) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if o.StepPages <= 0 {
		o.StepPages = 1024
	}
	if o.Pause == 0 {
		o.Pause = DefaultPrunePause
	}
	var mode int
	if err := s.r.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return 0, fmt.Errorf("store: reclaim: %w", err)
	}
	if mode != 2 { // 2 = INCREMENTAL
		return 0, fmt.Errorf("store: reclaim %s: %w", s.path, ErrNoIncrementalVacuum)
	}
	var released int64
	for o.MaxPages <= 0 || released < o.MaxPages {
		if err := ctx.Err(); err != nil {
			return released, err
		}
		step := int64(o.StepPages)
		if o.MaxPages > 0 {
			step = min(step, o.MaxPages-released)
		}
		var before, after int64
		err := s.writeTx(ctx, func(tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&before); err != nil {
				return err
			}
			if before == 0 {
				return nil
			}
			// incremental_vacuum returns no rows; Exec runs it to completion.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, step)); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&after)
		})
		if err != nil {
			return released, fmt.Errorf("store: reclaim %s: %w", s.path, err)
		}
		if before == 0 || after >= before {
			break
		}
		released += before - after
		if o.Pause > 0 {
			select {
			case <-ctx.Done():
				return released, ctx.Err()
			case <-time.After(o.Pause):
			}
		}
	}
	if released > 0 {
		s.log.Info("store: reclaimed free pages", "path", s.path, "pages", released)
	}
	return released, nil
}
