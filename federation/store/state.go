package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GetCursor returns the last Seq the named consumer (e.g. a subscription) has processed,
// 0 when it has none yet.
func (s *Store) GetCursor(ctx context.Context, name string) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE name = ?`, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: get cursor %s: %w", name, err)
	}
	return seq, nil
}

// SetCursor records seq as the last Seq the named consumer has processed. The write is
// durable when SetCursor returns (see the package comment for the durability level).
func (s *Store) SetCursor(ctx context.Context, name string, seq int64) error {
	if s.isClosed() {
		return ErrClosed
	}
	if name == "" {
		return fmt.Errorf("store: set cursor: empty name")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO cursors (name, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
		name, seq, s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: set cursor %s to %d: %w", name, seq, err)
	}
	return nil
}

// KVGet returns the value a plugin stored under key, or ErrNotFound.
func (s *Store) KVGet(ctx context.Context, plugin, key string) ([]byte, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM plugin_kv WHERE plugin = ? AND key = ?`, plugin, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: kv %s/%s: %w", plugin, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: kv get %s/%s: %w", plugin, key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// KVSet stores value under key in the plugin's private namespace; a nil value deletes
// the key.
func (s *Store) KVSet(ctx context.Context, plugin, key string, value []byte) error {
	if s.isClosed() {
		return ErrClosed
	}
	if plugin == "" || key == "" {
		return fmt.Errorf("store: kv set %q/%q: plugin and key must not be empty", plugin, key)
	}
	var err error
	if value == nil {
		_, err = s.w.ExecContext(ctx, `DELETE FROM plugin_kv WHERE plugin = ? AND key = ?`, plugin, key)
	} else {
		_, err = s.w.ExecContext(ctx, `INSERT INTO plugin_kv (plugin, key, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			plugin, key, value, s.now().UnixNano())
	}
	if err != nil {
		return fmt.Errorf("store: kv set %s/%s: %w", plugin, key, err)
	}
	return nil
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	// Seq is assigned by the store (ignored by AppendAudit).
	Seq int64 `json:"seq"`
	// Time is when it happened (default: now).
	Time time.Time `json:"time"`
	// Actor is who did it: "routerctl", "plugin/<name>", "subscription/<name>", ...
	Actor string `json:"actor"`
	// Action is what was attempted, e.g. "event.emit", "hostcall.kv_set".
	Action string `json:"action"`
	// Target is what it was done to.
	Target string `json:"target,omitempty"`
	// Outcome is "ok", "denied", "failed", ...
	Outcome string `json:"outcome,omitempty"`
	// Detail is free text (never a secret).
	Detail string `json:"detail,omitempty"`
}

// AppendAudit writes one audit entry (Seq is assigned by the store).
func (s *Store) AppendAudit(ctx context.Context, a AuditEntry) error {
	if s.isClosed() {
		return ErrClosed
	}
	if a.Actor == "" || a.Action == "" {
		return fmt.Errorf("store: append audit: actor and action are required")
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error { return s.AppendAuditTx(ctx, tx, a) })
	if err != nil {
		return fmt.Errorf("store: append audit %s %s: %w", a.Actor, a.Action, err)
	}
	return nil
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Actor, Action string
	Since         time.Time
	AfterSeq      int64
	// Limit bounds the result (0: no limit).
	Limit int
}

// ListAudit returns audit entries in Seq order.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	q := `SELECT seq, time, actor, action, target, outcome, detail FROM audit_log WHERE seq > ?`
	args := []any{f.AfterSeq}
	if f.Actor != "" {
		q, args = q+` AND actor = ?`, append(args, f.Actor)
	}
	if f.Action != "" {
		q, args = q+` AND action = ?`, append(args, f.Action)
	}
	if !f.Since.IsZero() {
		q, args = q+` AND time >= ?`, append(args, f.Since.UnixNano())
	}
	q += ` ORDER BY seq`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	return queryList(ctx, s.r, "list audit", q, args, func(rows *sql.Rows) (AuditEntry, error) {
		var a AuditEntry
		var t int64
		err := rows.Scan(&a.Seq, &t, &a.Actor, &a.Action, &a.Target, &a.Outcome, &a.Detail)
		a.Time = time.Unix(0, t).UTC()
		return a, err
	})
}
