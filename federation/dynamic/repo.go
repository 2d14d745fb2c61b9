package dynamic

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

// Part is one stored DynamicConfigPart. Each part carries exactly one resource; it is
// keyed by its source and the resource's Kind and name.
type Part struct {
	// Source is the owner, e.g. EventSubscription/claims.
	Source string `json:"source"`
	// Kind and Name identify the resource the part carries.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Generation increases each time the source replaces the part.
	Generation int64 `json:"generation"`
	// ExpiresAt is when the part is withdrawn (zero: never).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// EventIDs are the ids of the events the part was produced from.
	EventIDs []string `json:"events"`
	// CreatedAt and UpdatedAt are when the part was first stored and last replaced.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Document is the complete DynamicConfigPart.
	Document *schemas.DynamicConfigPart `json:"document"`
}

// Resource returns the resource the part carries (nil when the document has none).
func (p Part) Resource() schemas.Object {
	if p.Document == nil || len(p.Document.Spec.Resources) == 0 {
		return nil
	}
	return p.Document.Spec.Resources[0].Object
}

// Expired reports whether the part has expired at now.
func (p Part) Expired(now time.Time) bool { return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) }

// Key is "source kind/name".
func (p Part) Key() string { return p.Source + " " + p.Kind + "/" + p.Name }

// ErrNotFound is returned for a part that does not exist.
var ErrNotFound = errors.New("dynamic: part not found")

// Repo keeps parts.
type Repo interface {
	// Get returns the part of source for kind/name, or ErrNotFound.
	Get(ctx context.Context, source, kind, name string) (Part, error)
	// Put inserts or replaces a part.
	Put(ctx context.Context, p Part) error
	// Delete removes the part and reports whether it existed.
	Delete(ctx context.Context, source, kind, name string) (bool, error)
	// List returns every part, ordered by kind, name, source.
	List(ctx context.Context) ([]Part, error)
	// Commit applies changes atomically: every put, delete and audit entry, or none.
	Commit(ctx context.Context, c Changes) error
}

// Changes are the writes of one plugin result (or one expiry or withdrawal round),
// committed in one transaction.
type Changes struct {
	Put    []Part
	Delete []PartRef
	Audit  []store.AuditEntry
}

// PartRef names a part: its source and the Kind and name of its resource.
type PartRef struct{ Source, Kind, Name string }

// Empty reports whether there is nothing to commit.
func (c Changes) Empty() bool { return len(c.Put) == 0 && len(c.Delete) == 0 && len(c.Audit) == 0 }

// SQLRepo keeps parts in the store's dynamic_parts table.
type SQLRepo struct {
	st   *store.Store
	w, r *sql.DB
}

// NewSQLRepo returns a Repo on st's dynamic_parts table.
func NewSQLRepo(st *store.Store) *SQLRepo { return &SQLRepo{st: st, w: st.DB(), r: st.ReadDB()} }

const (
	upsertPartSQL = `INSERT INTO dynamic_parts (` + partColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, kind, name) DO UPDATE SET generation = excluded.generation,
		expires_at = excluded.expires_at, document = excluded.document, event_ids = excluded.event_ids,
		updated_at = excluded.updated_at`
	deletePartSQL = `DELETE FROM dynamic_parts WHERE source = ? AND kind = ? AND name = ?`
)

// partArgs returns the upsert arguments of p.
func partArgs(p Part) ([]any, error) {
	doc, err := json.Marshal(p.Document)
	if err != nil {
		return nil, fmt.Errorf("dynamic: put %s: encode document: %w", p.Key(), err)
	}
	ids, err := json.Marshal(nonNil(p.EventIDs))
	if err != nil {
		return nil, fmt.Errorf("dynamic: put %s: encode event ids: %w", p.Key(), err)
	}
	return []any{p.Source, p.Kind, p.Name, p.Generation, store.TimeToDB(p.ExpiresAt), string(doc), string(ids),
		p.CreatedAt.UnixNano(), p.UpdatedAt.UnixNano()}, nil
}

// Commit implements Repo.
func (s *SQLRepo) Commit(ctx context.Context, c Changes) error {
	if c.Empty() {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dynamic: commit: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, p := range c.Put {
		args, err := partArgs(p)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, upsertPartSQL, args...); err != nil {
			return fmt.Errorf("dynamic: commit: put %s: %w", p.Key(), err)
		}
	}
	for _, d := range c.Delete {
		if _, err := tx.ExecContext(ctx, deletePartSQL, d.Source, d.Kind, d.Name); err != nil {
			return fmt.Errorf("dynamic: commit: delete %s %s/%s: %w", d.Source, d.Kind, d.Name, err)
		}
	}
	for _, a := range c.Audit {
		// Through the store, so the entry joins the audit chain in this transaction.
		if err := s.st.AppendAuditTx(ctx, tx, a); err != nil {
			return fmt.Errorf("dynamic: commit: audit %s %s: %w", a.Actor, a.Action, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("dynamic: commit: %w", err)
	}
	return nil
}

const partColumns = `source, kind, name, generation, expires_at, document, event_ids, created_at, updated_at`

func scanPart(sc interface{ Scan(...any) error }) (Part, error) {
	var p Part
	var exp sql.NullInt64
	var doc, ids string
	var created, updated int64
	if err := sc.Scan(&p.Source, &p.Kind, &p.Name, &p.Generation, &exp, &doc, &ids, &created, &updated); err != nil {
		return Part{}, err
	}
	p.ExpiresAt = store.TimeFromDB(exp)
	p.CreatedAt, p.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if err := json.Unmarshal([]byte(ids), &p.EventIDs); err != nil {
		return Part{}, fmt.Errorf("part %s %s/%s: event ids: %w", p.Source, p.Kind, p.Name, err)
	}
	p.Document = &schemas.DynamicConfigPart{}
	if err := json.Unmarshal([]byte(doc), p.Document); err != nil {
		return Part{}, fmt.Errorf("part %s %s/%s: document: %w", p.Source, p.Kind, p.Name, err)
	}
	return p, nil
}

// Get implements Repo.
func (s *SQLRepo) Get(ctx context.Context, source, kind, name string) (Part, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+partColumns+` FROM dynamic_parts WHERE source = ? AND kind = ? AND name = ?`,
		source, kind, name)
	p, err := scanPart(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Part{}, fmt.Errorf("dynamic: get %s %s/%s: %w", source, kind, name, ErrNotFound)
	}
	if err != nil {
		return Part{}, fmt.Errorf("dynamic: get %s %s/%s: %w", source, kind, name, err)
	}
	return p, nil
}

// Put implements Repo.
func (s *SQLRepo) Put(ctx context.Context, p Part) error {
	args, err := partArgs(p)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, upsertPartSQL, args...); err != nil {
		return fmt.Errorf("dynamic: put %s: %w", p.Key(), err)
	}
	return nil
}

// Delete implements Repo.
func (s *SQLRepo) Delete(ctx context.Context, source, kind, name string) (bool, error) {
	res, err := s.w.ExecContext(ctx, deletePartSQL, source, kind, name)
	if err != nil {
		return false, fmt.Errorf("dynamic: delete %s %s/%s: %w", source, kind, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("dynamic: delete %s %s/%s: %w", source, kind, name, err)
	}
	return n > 0, nil
}

// List implements Repo.
func (s *SQLRepo) List(ctx context.Context) ([]Part, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+partColumns+` FROM dynamic_parts ORDER BY kind, name, source`)
	if err != nil {
		return nil, fmt.Errorf("dynamic: list parts: %w", err)
	}
	defer rows.Close()
	out := []Part{}
	for rows.Next() {
		p, err := scanPart(rows)
		if err != nil {
			return nil, fmt.Errorf("dynamic: list parts: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dynamic: list parts: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
