package subscribe

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
)

// StoreAdapter makes a *store.Store the engine's Source, Cursors and RunRecorder.
type StoreAdapter struct {
	// Store is the node's event store.
	Store *store.Store
}

var (
	_ Source      = StoreAdapter{}
	_ Cursors     = StoreAdapter{}
	_ RunRecorder = StoreAdapter{}
)

// Events lists events of group and types after the cursor, oldest first.
func (a StoreAdapter) Events(ctx context.Context, group string, types []string, after int64, limit int) ([]Record, error) {
	evs, err := a.Store.ListEvents(ctx, store.EventFilter{Group: group, Types: types, AfterSeq: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(evs))
	for _, se := range evs {
		r, err := RecordOf(se.Event)
		if err != nil {
			return nil, fmt.Errorf("subscribe: event seq %d: %w", se.Seq, err)
		}
		r.Seq, r.ReceivedAt, r.TraceParent = se.Seq, se.ReceivedAt, se.TraceParent
		out = append(out, r)
	}
	return out, nil
}

// MaxSeq returns the highest sequence number the store has assigned.
func (a StoreAdapter) MaxSeq(ctx context.Context) (int64, error) { return a.Store.LastSeq(ctx) }

// GetCursor reads a subscription cursor.
func (a StoreAdapter) GetCursor(ctx context.Context, name string) (int64, error) {
	return a.Store.GetCursor(ctx, cursorName(name))
}

// SetCursor saves a subscription cursor.
func (a StoreAdapter) SetCursor(ctx context.Context, name string, seq int64) error {
	return a.Store.SetCursor(ctx, cursorName(name), seq)
}

// cursorName keeps subscription cursors apart from other users of the cursors table.
func cursorName(sub string) string { return "subscription/" + sub }

// RecordRun appends a row to subscription_runs.
func (a StoreAdapter) RecordRun(ctx context.Context, r Run) error {
	state := "succeeded"
	if r.Outcome != "ok" {
		state = "failed"
	}
	_, err := a.Store.DB().ExecContext(ctx, `INSERT INTO subscription_runs
		(subscription, batch_id, state, attempts, event_count, first_seq, last_seq, error, created_at, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Subscription, r.BatchID, state, r.Attempt, r.Events, r.FirstSeq, r.LastSeq, r.Error,
		r.StartedAt.UnixNano(), store.TimeToDB(r.StartedAt), store.TimeToDB(r.FinishedAt))
	if err != nil {
		return fmt.Errorf("subscribe: record run of %s batch %s: %w", r.Subscription, r.BatchID, err)
	}
	return nil
}

// RunRow is one row of subscription_runs: one dispatch of one batch.
type RunRow struct {
	// ID is the row id (newest highest).
	ID int64 `json:"id"`
	// Subscription and BatchID name the batch.
	Subscription string `json:"subscription"`
	BatchID      string `json:"batchID"`
	// State is succeeded or failed.
	State string `json:"state"`
	// Attempts is the attempt number of this dispatch (1 for the first).
	Attempts int `json:"attempts"`
	// Events, FirstSeq and LastSeq describe the batch.
	Events   int   `json:"events"`
	FirstSeq int64 `json:"firstSeq"`
	LastSeq  int64 `json:"lastSeq"`
	// Error is the failure, if any.
	Error string `json:"error,omitempty"`
	// StartedAt and FinishedAt bound the dispatch.
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Runs returns the newest limit runs of subscription (all subscriptions when empty),
// newest first.
func (a StoreAdapter) Runs(ctx context.Context, subscription string, limit int) ([]RunRow, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT id, subscription, batch_id, state, attempts, event_count, first_seq, last_seq, error, started_at, finished_at
		FROM subscription_runs`
	args := []any{}
	if subscription != "" {
		q += ` WHERE subscription = ?`
		args = append(args, subscription)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := a.Store.ReadDB().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("subscribe: list runs: %w", err)
	}
	defer rows.Close()
	out := []RunRow{}
	for rows.Next() {
		var r RunRow
		var started, finished sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Subscription, &r.BatchID, &r.State, &r.Attempts, &r.Events, &r.FirstSeq,
			&r.LastSeq, &r.Error, &started, &finished); err != nil {
			return nil, fmt.Errorf("subscribe: list runs: %w", err)
		}
		r.StartedAt, r.FinishedAt = store.TimeFromDB(started), store.TimeFromDB(finished)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subscribe: list runs: %w", err)
	}
	return out, nil
}

// RecordOf is the Record of a stored event as the engine sees it: the envelope fields and
// its JSON as sent to plugins (Seq and ReceivedAt are the store's to set). The daemon
// (StoreAdapter) and `routerctl plugin dry-run` both build records with it.
func RecordOf(e event.Event) (Record, error) {
	js, err := e.Marshal()
	if err != nil {
		return Record{}, fmt.Errorf("subscribe: %w", err)
	}
	return Record{
		ID: e.ID, Group: e.Group, Type: e.Type, SourceNode: e.SourceNode,
		Subject: e.Subject, Payload: e.Payload, JSON: js, ExpiresAt: e.ExpiresAt,
	}, nil
}
