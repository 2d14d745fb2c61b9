package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"
)

// TypeCount counts the events of one group and type.
type TypeCount struct {
	Group  string    `json:"group"`
	Type   string    `json:"type"`
	Count  int64     `json:"count"`
	Oldest time.Time `json:"oldest"` // earliest receivedAt
	Newest time.Time `json:"newest"` // latest receivedAt
}

// Stats summarises the store.
type Stats struct {
	Path          string `json:"path"`
	SchemaVersion int    `json:"schemaVersion"`
	// SizeBytes is the database file plus its WAL file.
	SizeBytes int64 `json:"sizeBytes"`
	// FreeBytes is the space of free pages inside the file (reused by inserts; Vacuum
	// returns it to the filesystem).
	FreeBytes int64 `json:"freeBytes"`
	Events    int64 `json:"events"`
	// LastSeq is the highest Seq ever assigned.
	LastSeq int64 `json:"lastSeq"`
	// Expired counts stored events whose expiresAt has passed.
	Expired int64       `json:"expired"`
	Oldest  time.Time   `json:"oldest,omitzero"`
	Newest  time.Time   `json:"newest,omitzero"`
	ByType  []TypeCount `json:"byType"`
	// Deliveries counts event_deliveries rows by state.
	Deliveries map[string]int64 `json:"deliveries"`
}

// Stats reads the summary in one read transaction.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	if s.isClosed() {
		return Stats{}, ErrClosed
	}
	st := Stats{Path: s.path, ByType: []TypeCount{}, Deliveries: map[string]int64{}}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("store: stats: %w", err)
	}
	defer tx.Rollback()
	var oldest, newest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(received_at), MAX(received_at),
		COALESCE(SUM(expires_at IS NOT NULL AND expires_at <= ?), 0) FROM events`, s.now().UnixNano()).
		Scan(&st.Events, &oldest, &newest, &st.Expired); err != nil {
		return st, fmt.Errorf("store: stats: count events: %w", err)
	}
	st.Oldest, st.Newest = timeFromDB(oldest), timeFromDB(newest)
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&st.SchemaVersion); err != nil {
		return st, fmt.Errorf("store: stats: schema version: %w", err)
	}
	var free, pageSize int64
	if err := tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
		return st, fmt.Errorf("store: stats: freelist: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return st, fmt.Errorf("store: stats: page size: %w", err)
	}
	st.FreeBytes = free * pageSize
	var seq sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq); err != nil {
		return st, fmt.Errorf("store: stats: last seq: %w", err)
	}
	st.LastSeq = seq.Int64
	rows, err := tx.QueryContext(ctx, `SELECT group_name, type, COUNT(*), MIN(received_at), MAX(received_at)
		FROM events GROUP BY group_name, type ORDER BY group_name, type`)
	if err != nil {
		return st, fmt.Errorf("store: stats: per type: %w", err)
	}
	for rows.Next() {
		var tc TypeCount
		var o, n int64
		if err := rows.Scan(&tc.Group, &tc.Type, &tc.Count, &o, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("store: stats: per type: %w", err)
		}
		tc.Oldest, tc.Newest = time.Unix(0, o).UTC(), time.Unix(0, n).UTC()
		st.ByType = append(st.ByType, tc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("store: stats: per type: %w", err)
	}
	drows, err := tx.QueryContext(ctx, `SELECT state, COUNT(*) FROM event_deliveries GROUP BY state`)
	if err != nil {
		return st, fmt.Errorf("store: stats: deliveries: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var state string
		var n int64
		if err := drows.Scan(&state, &n); err != nil {
			return st, fmt.Errorf("store: stats: deliveries: %w", err)
		}
		st.Deliveries[state] = n
	}
	if err := drows.Err(); err != nil {
		return st, fmt.Errorf("store: stats: deliveries: %w", err)
	}
	for _, p := range []string{s.path, s.path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			st.SizeBytes += fi.Size()
		}
	}
	return st, nil
}
