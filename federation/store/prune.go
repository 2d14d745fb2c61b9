package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Prune pacing defaults.
const (
	// DefaultPrunePause is the default pause between prune batches.
	DefaultPrunePause = 2 * time.Millisecond
	// DefaultPruneBatchTarget is the default duration aimed at for one prune batch.
	DefaultPruneBatchTarget = 20 * time.Millisecond
	// minPruneBatch is the smallest adaptive batch.
	minPruneBatch = 100
)

// PruneOptions say which events retention removes. Rules that are zero are off; an event
// matching several rules is counted under the first: expired, then age, then max events.
type PruneOptions struct {
	// Now is the reference time (default: the store's clock).
	Now time.Time
	// Group limits pruning to one event group ("" for all; MaxEvents then counts all).
	Group string
	// Expired removes events whose expiresAt is at or before Now - ExpiredGrace.
	Expired bool
	// ExpiredGrace keeps expired events this long after expiry.
	ExpiredGrace time.Duration
	// MaxAge removes events without an expiry that were received before Now - MaxAge.
	// (Events with an expiry are removed by Expired, so a live event is never pruned by
	// age.) receivedAt is this node's clock, so a peer's clock skew cannot shorten or
	// extend retention.
	MaxAge time.Duration
	// MaxEvents keeps only the newest MaxEvents events (of Group, or overall).
	MaxEvents int64
	// BatchSize is the most rows deleted per transaction (default
	// DefaultPruneBatchSize), so that a writer never waits behind a long delete.
	BatchSize int
	// BatchTarget is the time one delete transaction should take (default
	// DefaultPruneBatchTarget): a slower batch halves the next one (down to
	// minPruneBatch rows), a batch under half of it doubles the next (up to BatchSize).
	// This keeps writers' waits short on a loaded machine too.
	BatchTarget time.Duration
	// Pause is slept between batches to let writers of other processes in (default
	// DefaultPrunePause; negative: none).
	Pause time.Duration
	// HistoryMaxAge removes history older than it: audit_log entries, finished
	// subscription_runs, and executed or rejected action_plans (0: keep all).
	HistoryMaxAge time.Duration
	// DryRun counts what would be removed without removing anything.
	DryRun bool
}

// GroupRetention returns the prune options for an EventGroup's retention{maxEvents,
// maxAge}: events with an expiry are kept maxAge after it, events without one maxAge
// after they were received, and at most maxEvents of the group (0 turns a rule off).
func GroupRetention(group string, maxAge time.Duration, maxEvents int64) PruneOptions {
	return PruneOptions{Group: group, Expired: true, ExpiredGrace: maxAge, MaxAge: maxAge, MaxEvents: maxEvents}
}

// PruneResult counts the events removed (or, with DryRun, that would be) per rule.
type PruneResult struct {
	Expired   int64 `json:"expired"`
	Aged      int64 `json:"aged"`
	OverLimit int64 `json:"overLimit"`
	// History counts audit entries, subscription runs and action plans removed by
	// HistoryMaxAge (not part of Total).
	History int64 `json:"history"`
	// Batches is the number of delete transactions run.
	Batches int  `json:"batches"`
	DryRun  bool `json:"dryRun"`
}

// Total is the number of events removed by all event rules.
func (r PruneResult) Total() int64 { return r.Expired + r.Aged + r.OverLimit }

// pruneRule is one retention rule as an SQL predicate over a table (events unless set).
type pruneRule struct {
	reason string
	where  string
	args   []any
	count  *int64
	table  string // default events
	key    string // default seq
	// run, when set, deletes one batch itself (the audit log keeps its chain anchor).
	run func(ctx context.Context, tx *sql.Tx, limit int) (int64, error)
}

// Prune deletes events by retention in bounded batches (deliveries of a deleted event go
// with it). It stops early, returning what it did so far, when ctx is done.
//
// # Errors
//
// The failing rule and step, wrapped; ctx.Err() when cancelled.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (PruneResult, error) {
	if s.isClosed() {
		return PruneResult{}, ErrClosed
	}
	if o.Now.IsZero() {
		o.Now = s.now()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultPruneBatchSize
	}
	if o.Pause == 0 {
		o.Pause = DefaultPrunePause
	}
	if o.BatchTarget <= 0 {
		o.BatchTarget = DefaultPruneBatchTarget
	}
	batch := min(o.BatchSize, 1000) // grows to BatchSize while batches stay fast
	res := PruneResult{DryRun: o.DryRun}
	groupWhere, groupArgs := "", []any{}
	if o.Group != "" {
		groupWhere, groupArgs = " AND group_name = ?", []any{o.Group}
	}

	var rules []pruneRule
	if o.Expired {
		cut := o.Now.Add(-o.ExpiredGrace).UnixNano()
		rules = append(rules, pruneRule{reason: "expired", where: "expires_at IS NOT NULL AND expires_at <= ?" + groupWhere,
			args: append([]any{cut}, groupArgs...), count: &res.Expired})
	}
	if o.MaxAge > 0 {
		cut := o.Now.Add(-o.MaxAge).UnixNano()
		rules = append(rules, pruneRule{reason: "age", where: "received_at < ? AND expires_at IS NULL" + groupWhere,
			args: append([]any{cut}, groupArgs...), count: &res.Aged})
	}
	if o.MaxEvents > 0 {
		// The seq of the MaxEvents-th newest event: everything older goes.
		var cutoff int64
		q := `SELECT seq FROM events WHERE 1=1` + groupWhere + ` ORDER BY seq DESC LIMIT 1 OFFSET ?`
		err := s.r.QueryRowContext(ctx, q, append(append([]any{}, groupArgs...), o.MaxEvents-1)...).Scan(&cutoff)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Fewer than MaxEvents events: nothing over the limit.
		case err != nil:
			return res, fmt.Errorf("store: prune: find max-events cutoff: %w", err)
		default:
			rules = append(rules, pruneRule{reason: "max_events", where: "seq < ?" + groupWhere,
				args: append([]any{cutoff}, groupArgs...), count: &res.OverLimit})
		}
	}

	if o.DryRun {
		// Count each event rule excluding rows an earlier rule already counts.
		exclude, excludeArgs := "", []any{}
		for _, r := range rules {
			q := `SELECT COUNT(*) FROM events WHERE ` + r.where + exclude
			if err := s.r.QueryRowContext(ctx, q, append(append([]any{}, r.args...), excludeArgs...)...).Scan(r.count); err != nil {
				return res, fmt.Errorf("store: prune dry run (%s): %w", r.reason, err)
			}
			exclude += ` AND NOT (` + r.where + `)`
			excludeArgs = append(excludeArgs, r.args...)
		}
	}
	if o.HistoryMaxAge > 0 {
		cut := o.Now.Add(-o.HistoryMaxAge).UnixNano()
		rules = append(rules,
			pruneRule{reason: "audit", table: "audit_log", key: "seq", where: auditPruneWhere, args: []any{cut}, count: &res.History,
				run: func(ctx context.Context, tx *sql.Tx, limit int) (int64, error) {
					return s.pruneAuditTx(ctx, tx, cut, limit)
				}},
			pruneRule{reason: "subscription_runs", table: "subscription_runs", key: "id",
				where: "state IN ('succeeded', 'failed') AND COALESCE(finished_at, created_at) < ?", args: []any{cut}, count: &res.History},
			pruneRule{reason: "action_plans", table: "action_plans", key: "id",
				where: "state IN ('executed', 'rejected') AND updated_at < ?", args: []any{cut}, count: &res.History})
	}
	if o.DryRun {
		for _, r := range rules {
			if r.table == "" {
				continue // counted above
			}
			var n int64
			if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+r.table+` WHERE `+r.where, r.args...).Scan(&n); err != nil {
				return res, fmt.Errorf("store: prune dry run (%s): %w", r.reason, err)
			}
			*r.count += n
		}
		return res, nil
	}

	for _, r := range rules {
		table, key := r.table, r.key
		if table == "" {
			table, key = "events", "seq"
		}
		q := `DELETE FROM ` + table + ` WHERE ` + key + ` IN (SELECT ` + key + ` FROM ` + table + ` WHERE ` + r.where + ` LIMIT ?)`
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			var n int64
			args := append(append([]any{}, r.args...), batch)
			start := time.Now()
			err := s.writeTx(ctx, func(tx *sql.Tx) error {
				if r.run != nil {
					var err error
					n, err = r.run(ctx, tx, batch)
					return err
				}
				out, err := tx.ExecContext(ctx, q, args...)
				if err != nil {
					return err
				}
				n, err = out.RowsAffected()
				return err
			})
			if err != nil {
				return res, fmt.Errorf("store: prune (%s): %w", r.reason, err)
			}
			res.Batches++
			*r.count += n
			if n > 0 && r.table == "" {
				s.metrics.pruned.Add(ctx, n, metric.WithAttributes(attribute.String("reason", r.reason)))
			}
			if n < int64(batch) {
				break
			}
			switch took := time.Since(start); {
			case took > o.BatchTarget:
				batch = max(batch/2, min(minPruneBatch, o.BatchSize))
			case took < o.BatchTarget/2:
				batch = min(batch*2, o.BatchSize)
			}
			if o.Pause > 0 {
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-time.After(o.Pause):
				}
			}
		}
	}
	if res.Total() > 0 || res.History > 0 {
		s.log.Info("store: pruned", "path", s.path, "group", o.Group, "expired", res.Expired,
			"aged", res.Aged, "overLimit", res.OverLimit, "history", res.History, "batches", res.Batches)
	}
	return res, nil
}
