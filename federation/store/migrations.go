package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Migration is one step of the schema. Migrations are applied in order, each in its own
// write transaction, and recorded in schema_version.
type Migration struct {
	// Version is the schema version after this step: its 1-based position in migrations.
	Version int
	// Description says what the step does (stored in schema_version).
	Description string
	// SQL is executed as one script; use Func instead when the step needs Go code.
	SQL string
	// Func, when set, runs after SQL inside the same transaction.
	Func func(ctx context.Context, tx *sql.Tx) error
}

// migrations is the ordered, append-only list of schema steps. Never edit or reorder an
// entry that has been committed: files in the field carry its version. Another room may
// append a step at the end (the next Version) in its own commit.
//
// Conventions: times are INTEGER Unix nanoseconds (UTC), NULL when absent; JSON documents
// are TEXT; booleans are INTEGER 0/1.
var migrations = []Migration{
	{
		Version:     1,
		Description: "events, event_deliveries, cursors, plugin_kv, audit_log",
		SQL: `
CREATE TABLE events (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- local insert order, for cursors
	id          TEXT    NOT NULL UNIQUE,
	group_name  TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	source_node TEXT    NOT NULL DEFAULT '',
	subject     TEXT    NOT NULL DEFAULT '',
	dedupe_key  TEXT    NOT NULL,
	payload     TEXT    NOT NULL DEFAULT '{}',    -- JSON object of strings
	observed_at INTEGER,
	expires_at  INTEGER,
	received_at INTEGER NOT NULL
);
CREATE INDEX events_group_seq ON events (group_name, seq);
CREATE INDEX events_expires_at ON events (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE event_deliveries (
	event_id             TEXT    NOT NULL REFERENCES events (id) ON DELETE CASCADE,
	peer                 TEXT    NOT NULL,
	group_name           TEXT    NOT NULL,
	state                TEXT    NOT NULL DEFAULT 'pending'
	                     CHECK (state IN ('pending', 'retrying', 'delivered', 'failed')),
	attempts             INTEGER NOT NULL DEFAULT 0,
	last_error           TEXT    NOT NULL DEFAULT '',
	next_attempt_at      INTEGER,
	delivered_at         INTEGER,
	delivered_expires_at INTEGER, -- the event's expiresAt at delivery, for TTL refresh
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL,
	PRIMARY KEY (event_id, peer)
) WITHOUT ROWID;
CREATE INDEX event_deliveries_due ON event_deliveries (group_name, peer, state, next_attempt_at);

CREATE TABLE cursors (
	name       TEXT    PRIMARY KEY,
	seq        INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE plugin_kv (
	plugin     TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	value      BLOB    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (plugin, key)
) WITHOUT ROWID;

CREATE TABLE audit_log (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	target  TEXT    NOT NULL DEFAULT '',
	outcome TEXT    NOT NULL DEFAULT '',
	detail  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log (time);
`,
	},
	{
		Version:     2,
		Description: "action_plans, dynamic_parts, subscription_runs",
		SQL: `
CREATE TABLE action_plans (
	id          TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	provider    TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL DEFAULT '',
	target      TEXT    NOT NULL DEFAULT '',
	source      TEXT    NOT NULL DEFAULT '',   -- e.g. Plugin/<name>
	state       TEXT    NOT NULL DEFAULT 'proposed'
	            CHECK (state IN ('proposed', 'approved', 'rejected', 'executing', 'executed', 'failed')),
	risk_level  TEXT    NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	document    TEXT    NOT NULL,              -- the ActionPlan JSON
	result      TEXT    NOT NULL DEFAULT '',   -- execution result JSON or error text
	approved_by TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	approved_at INTEGER,
	executed_at INTEGER
) WITHOUT ROWID;
CREATE INDEX action_plans_state ON action_plans (state, created_at);

CREATE TABLE dynamic_parts (
	source     TEXT    NOT NULL,               -- e.g. EventSubscription/<name>
	kind       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	generation INTEGER NOT NULL DEFAULT 1,
	expires_at INTEGER,
	document   TEXT    NOT NULL,               -- the DynamicConfigPart JSON
	event_ids  TEXT    NOT NULL DEFAULT '[]',  -- JSON array of origin event ids
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (source, kind, name)
) WITHOUT ROWID;
CREATE INDEX dynamic_parts_expires_at ON dynamic_parts (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE subscription_runs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	subscription TEXT    NOT NULL,
	batch_id     TEXT    NOT NULL DEFAULT '',
	state        TEXT    NOT NULL DEFAULT 'pending'
	             CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	event_count  INTEGER NOT NULL DEFAULT 0,
	first_seq    INTEGER NOT NULL DEFAULT 0,
	last_seq     INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	started_at   INTEGER,
	finished_at  INTEGER
);
CREATE INDEX subscription_runs_sub ON subscription_runs (subscription, id);
CREATE INDEX subscription_runs_state ON subscription_runs (state, created_at);
`,
	},
	{
		Version:     3,
		Description: "event_deliveries.event_seq and outbox/TTL-refresh indexes (transport)",
		SQL: `
ALTER TABLE event_deliveries ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
UPDATE event_deliveries SET event_seq = COALESCE((SELECT seq FROM events WHERE events.id = event_deliveries.event_id), 0);
CREATE INDEX event_deliveries_outbox ON event_deliveries (group_name, peer, event_seq)
	WHERE state IN ('pending', 'retrying');
CREATE INDEX event_deliveries_refresh ON event_deliveries (group_name, peer, delivered_expires_at)
	WHERE state = 'delivered';
`,
	},
	{
		Version:     4,
		Description: "events by group, source node and seq (transport outbox scan)",
		// The sender reads only this node's events after its cursor; without this index a
		// node that mostly receives rescans every foreign event on each pass.
		SQL: `
CREATE INDEX events_group_source_seq ON events (group_name, source_node, seq);
`,
	},
	{
		Version:     5,
		Description: "tamper-evident audit log: audit_log.prev_mac/mac and the audit_chain anchor and head",
		// See auditchain.go. Existing rows keep NULL MACs and stay before the anchor.
		SQL: `
ALTER TABLE audit_log ADD COLUMN prev_mac BLOB;
ALTER TABLE audit_log ADD COLUMN mac BLOB;
CREATE TABLE audit_chain (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	anchor_seq INTEGER NOT NULL, -- the chain starts after this record (genesis or last pruned)
	anchor_mac BLOB    NOT NULL,
	head_seq   INTEGER NOT NULL, -- the last record
	head_mac   BLOB    NOT NULL,
	tag        BLOB    NOT NULL  -- HMAC over anchor and head
);
`,
	},
	{
		Version:     6,
		Description: "action_plans: states refused, undoing and undone (SQLite cannot widen a CHECK: the table is rebuilt)",
		SQL: `
CREATE TABLE action_plans_v6 (
	id          TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	provider    TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL DEFAULT '',
	target      TEXT    NOT NULL DEFAULT '',
	source      TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL DEFAULT 'proposed'
	            CHECK (state IN ('proposed', 'approved', 'rejected', 'refused', 'executing', 'executed', 'failed', 'undoing', 'undone')),
	risk_level  TEXT    NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	document    TEXT    NOT NULL,
	result      TEXT    NOT NULL DEFAULT '',   -- execution result JSON or error text; the refusal for refused
	approved_by TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	approved_at INTEGER,
	executed_at INTEGER
) WITHOUT ROWID;
INSERT INTO action_plans_v6 SELECT id, name, provider, action, target, source, state, risk_level, idempotency_key,
	document, result, approved_by, created_at, updated_at, approved_at, executed_at FROM action_plans;
DROP TABLE action_plans;
ALTER TABLE action_plans_v6 RENAME TO action_plans;
CREATE INDEX action_plans_state ON action_plans (state, created_at);
CREATE INDEX action_plans_provider_executed ON action_plans (provider, executed_at) WHERE executed_at IS NOT NULL;
`,
	},
	{
		Version:     7,
		Description: "events.trace_parent: the W3C trace context of the span that stored the event ('' without tracing)",
		SQL: `
ALTER TABLE events ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
`,
	},
}

// SchemaVersion is the schema version this binary writes: the last migration's.
func SchemaVersion() int { return len(migrations) }

// checkMigrations verifies the list is numbered 1..n in order.
func checkMigrations(ms []Migration) error {
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("store: migration %d (%q) has version %d, want %d", i, m.Description, m.Version, i+1)
		}
		if m.SQL == "" && m.Func == nil {
			return fmt.Errorf("store: migration %d (%q) has neither SQL nor Func", m.Version, m.Description)
		}
	}
	return nil
}

// ErrSchemaTooNew is returned by Open for a file written by a newer routerd.
var ErrSchemaTooNew = fmt.Errorf("store: schema is newer than this binary supports")

// migrate brings the schema of db up to the end of ms. It runs each step in a BEGIN
// IMMEDIATE transaction and re-reads the version inside it, so two processes opening the
// same file at once apply each step exactly once.
func migrate(ctx context.Context, db *sql.DB, path string, ms []Migration, now func() time.Time, log func(version int, desc string)) error {
	if err := checkMigrations(ms); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version     INTEGER PRIMARY KEY,
	description TEXT    NOT NULL,
	applied_at  INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("store: %s: create schema_version: %w", path, err)
	}
	for {
		done, err := migrateStep(ctx, db, path, ms, now, log)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next pending migration; done is true when none is pending.
func migrateStep(ctx context.Context, db *sql.DB, path string, ms []Migration, now func() time.Time, log func(int, string)) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: %s: begin migration: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return false, fmt.Errorf("store: %s: read schema version: %w", path, err)
	}
	if cur > len(ms) {
		return false, fmt.Errorf("%w: %s has schema version %d, this routerd knows up to %d; upgrade routerd or use a new state dir",
			ErrSchemaTooNew, path, cur, len(ms))
	}
	if cur == len(ms) {
		return true, tx.Commit()
	}
	m := ms[cur]
	if m.SQL != "" {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return false, fmt.Errorf("store: %s: migration %d (%s): %w", path, m.Version, m.Description, err)
		}
	}
	if m.Func != nil {
		if err := m.Func(ctx, tx); err != nil {
			return false, fmt.Errorf("store: %s: migration %d (%s): %w", path, m.Version, m.Description, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Description, now().UnixNano()); err != nil {
		return false, fmt.Errorf("store: %s: record migration %d: %w", path, m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: %s: commit migration %d: %w", path, m.Version, err)
	}
	log(m.Version, m.Description)
	return false, nil
}
