package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/tracectx"
)

// InsertResult reports what happened to one event of InsertEvents.
type InsertResult struct {
	// ID is the event id.
	ID string `json:"id"`
	// Seq is the event's local sequence number (of the row already stored when Duplicate).
	Seq int64 `json:"seq"`
	// Duplicate is true when an event with this id was already stored; nothing changed.
	Duplicate bool `json:"duplicate"`
}

// StoredEvent is an event as kept in the store.
type StoredEvent struct {
	// Seq is the local insert order (strictly increasing, never reused, with gaps where a
	// duplicate was refused): use it for cursors.
	Seq int64 `json:"seq"`
	// Event is the envelope as received.
	Event event.Event `json:"event"`
	// ReceivedAt is when this node stored the event.
	ReceivedAt time.Time `json:"receivedAt"`
	// TraceParent is the W3C traceparent of the span that stored the event ("" when
	// tracing was off): later work on the event continues or links to that trace.
	TraceParent string `json:"traceParent,omitempty"`
}

// EventFilter selects events for ListEvents. Zero fields do not filter.
type EventFilter struct {
	// Group selects one event group.
	Group string
	// Types selects any of these event types.
	Types []string
	// SourceNode selects events observed by this node.
	SourceNode string
	// SubjectPrefix selects events whose subject starts with it.
	SubjectPrefix string
	// Since and Until bound the event time (observedAt, or receivedAt when the event has
	// none): Since <= t < Until.
	Since, Until time.Time
	// AfterSeq selects events with Seq > AfterSeq (cursor paging).
	AfterSeq int64
	// Limit bounds the number of events returned (0: no limit).
	Limit int
	// Descending returns the newest first (Seq descending) instead of oldest first.
	Descending bool
}

const insertEventSQL = `INSERT INTO events
	(id, group_name, type, source_node, subject, dedupe_key, payload, observed_at, expires_at, received_at, trace_parent)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

// InsertEvents validates the events and stores them in one transaction, in order, each
// with the trace context of ctx's span (tracectx.Format; "" when tracing is off). An
// event whose id is already stored (or appears earlier in the same batch) is not written
// again: its result has Duplicate set and the stored row's Seq. Either every event of the
// batch is stored or, on error, none is.
//
// # Errors
//
// A validation failure (wrapping event.ErrInvalid) names the batch index and event id;
// database errors name the failing step. Both roll the whole batch back.
func (s *Store) InsertEvents(ctx context.Context, events []event.Event) ([]InsertResult, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if len(events) == 0 {
		return nil, nil
	}
	type row struct {
		ev      *event.Event
		payload string
	}
	rows := make([]row, len(events))
	for i := range events {
		// Validate normalizes in place: copy the payload map first when trimming would
		// change it, so the caller's events are never modified.
		ev := events[i]
		if payloadNeedsTrim(ev.Payload) {
			ev = ev.Clone()
		}
		if err := ev.Validate(); err != nil {
			return nil, fmt.Errorf("store: insert event %d (%s): %w", i, ev.ID, err)
		}
		rows[i] = row{ev: &ev, payload: encodePayload(ev.Payload)}
	}

	start := time.Now()
	received := s.now().UnixNano()
	traceParent := tracectx.Format(ctx)
	results := make([]InsertResult, len(events))
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, insertEventSQL)
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		defer ins.Close()
		var lookup *sql.Stmt
		for i, r := range rows {
			e := r.ev
			res, err := ins.ExecContext(ctx, e.ID, e.Group, e.Type, e.SourceNode, e.Subject, e.DedupeKey,
				r.payload, nanosOrNil(e.ObservedAt), nanosOrNil(e.ExpiresAt), received, traceParent)
			if err != nil {
				return fmt.Errorf("insert event %s: %w", e.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("insert event %s: %w", e.ID, err)
			}
			results[i].ID = e.ID
			if n == 1 {
				if results[i].Seq, err = res.LastInsertId(); err != nil {
					return fmt.Errorf("insert event %s: %w", e.ID, err)
				}
				continue
			}
			// Duplicate: find the stored row through the id key.
			if lookup == nil {
				if lookup, err = tx.PrepareContext(ctx, `SELECT seq FROM events WHERE id = ?`); err != nil {
					return fmt.Errorf("prepare duplicate lookup: %w", err)
				}
				defer lookup.Close()
			}
			results[i].Duplicate = true
			if err := lookup.QueryRowContext(ctx, e.ID).Scan(&results[i].Seq); err != nil {
				return fmt.Errorf("look up duplicate event %s: %w", e.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: insert %d events: %w", len(events), err)
	}
	groups := make([]string, len(rows))
	for i, r := range rows {
		groups[i] = r.ev.Group
	}
	s.metrics.recordInsert(ctx, groups, results, time.Since(start))
	return results, nil
}

// payloadNeedsTrim reports whether a payload key or value may start or end with white
// space (bytes >= 0x80 count, as they may be Unicode spaces).
func payloadNeedsTrim(p map[string]string) bool {
	edge := func(s string) bool {
		if s == "" {
			return false
		}
		a, z := s[0], s[len(s)-1]
		return a <= ' ' || z <= ' ' || a >= 0x80 || z >= 0x80
	}
	for k, v := range p {
		if edge(k) || edge(v) {
			return true
		}
	}
	return false
}

// encodePayload renders a payload as a JSON object with sorted keys. Strings of plain
// printable ASCII are copied as they are; anything else goes through encoding/json.
func encodePayload(p map[string]string) string {
	if len(p) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(p))
	size := 2
	for k, v := range p {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, k)
		b.WriteByte(':')
		writeJSONString(&b, p[k])
	}
	b.WriteByte('}')
	return b.String()
}

// writeJSONString writes s as a JSON string.
func writeJSONString(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// nanosOrNil is timeToDB as a plain driver value (int64 or nil), which database/sql
// passes through without the driver.Valuer round trip; it matters on the ingest path.
func nanosOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// InsertEvent stores one event (see InsertEvents).
func (s *Store) InsertEvent(ctx context.Context, e event.Event) (InsertResult, error) {
	res, err := s.InsertEvents(ctx, []event.Event{e})
	if err != nil {
		return InsertResult{}, err
	}
	return res[0], nil
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (s *Store) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

const eventColumns = `seq, id, group_name, type, source_node, subject, dedupe_key, payload, observed_at, expires_at, received_at, trace_parent`

// scanEvent reads one row of eventColumns.
func scanEvent(sc interface{ Scan(...any) error }) (StoredEvent, error) {
	var (
		se                 StoredEvent
		payload            string
		obs, exp, received sql.NullInt64
	)
	e := &se.Event
	if err := sc.Scan(&se.Seq, &e.ID, &e.Group, &e.Type, &e.SourceNode, &e.Subject, &e.DedupeKey,
		&payload, &obs, &exp, &received, &se.TraceParent); err != nil {
		return StoredEvent{}, err
	}
	if payload != "" && payload != "{}" {
		if err := json.Unmarshal([]byte(payload), &e.Payload); err != nil {
			return StoredEvent{}, fmt.Errorf("event %s: decode stored payload: %w", e.ID, err)
		}
	}
	e.ObservedAt, e.ExpiresAt, se.ReceivedAt = timeFromDB(obs), timeFromDB(exp), timeFromDB(received)
	return se, nil
}

// GetEvent returns the stored event with the given id, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, id string) (StoredEvent, error) {
	if s.isClosed() {
		return StoredEvent{}, ErrClosed
	}
	se, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events WHERE id = ?`, strings.TrimSpace(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return StoredEvent{}, fmt.Errorf("store: event %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return StoredEvent{}, fmt.Errorf("store: get event %s: %w", id, err)
	}
	return se, nil
}

// filterSQL builds the WHERE clause and arguments for f.
func filterSQL(f EventFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.Group != "" {
		where, args = append(where, "group_name = ?"), append(args, f.Group)
	}
	if len(f.Types) > 0 {
		where = append(where, "type IN (?"+strings.Repeat(", ?", len(f.Types)-1)+")")
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if f.SourceNode != "" {
		where, args = append(where, "source_node = ?"), append(args, f.SourceNode)
	}
	if f.SubjectPrefix != "" {
		where, args = append(where, "substr(subject, 1, ?) = ?"), append(args, len(f.SubjectPrefix), f.SubjectPrefix)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "COALESCE(observed_at, received_at) >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "COALESCE(observed_at, received_at) < ?"), append(args, f.Until.UnixNano())
	}
	if f.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// ListEvents returns the events matching f in Seq order (ascending unless f.Descending).
// The result is never nil.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]StoredEvent, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	where, args := filterSQL(f)
	q := `SELECT ` + eventColumns + ` FROM events` + where + ` ORDER BY seq`
	if f.Descending {
		q += ` DESC`
	}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return queryList(ctx, s.r, "list events", q, args, func(rows *sql.Rows) (StoredEvent, error) {
		return scanEvent(rows)
	})
}

// CountEvents returns how many events match f (Limit and AfterSeq apply as in ListEvents
// except that Limit is ignored).
func (s *Store) CountEvents(ctx context.Context, f EventFilter) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	where, args := filterSQL(f)
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count events: %w", err)
	}
	return n, nil
}

// LastSeq returns the highest event Seq ever assigned (0 for an empty store); pruning
// does not lower it.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: last seq: %w", err)
	}
	return seq.Int64, nil
}

// LastSourceSeq returns the highest sequence number among the stored events of group
// that source originated (0 when there are none): what a sender watches for new local
// events, unmoved by the events this router receives from others.
func (s *Store) LastSourceSeq(ctx context.Context, group, source string) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	var seq sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT max(seq) FROM events WHERE group_name = ? AND source_node = ?`, group, source).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("store: last seq of %s/%s: %w", group, source, err)
	}
	return seq.Int64, nil
}

// storeMetrics are the store's OTel instruments.
type storeMetrics struct {
	inserted   metric.Int64Counter
	duplicates metric.Int64Counter
	pruned     metric.Int64Counter
	insertDur  metric.Float64Histogram
}

func newStoreMetrics(mp metric.MeterProvider) (storeMetrics, error) {
	m := mp.Meter("routerd.net/routerd/federation/store")
	var (
		sm   storeMetrics
		errs []error
		err  error
	)
	sm.inserted, err = m.Int64Counter("routerd_store_events_inserted_total",
		metric.WithDescription("Events written to the store."))
	errs = append(errs, err)
	sm.duplicates, err = m.Int64Counter("routerd_store_events_duplicate_total",
		metric.WithDescription("Events not written because their id was already stored."))
	errs = append(errs, err)
	sm.pruned, err = m.Int64Counter("routerd_store_events_pruned_total",
		metric.WithDescription("Events deleted by retention, by reason (expired, age, max_events)."))
	errs = append(errs, err)
	sm.insertDur, err = m.Float64Histogram("routerd_store_insert_batch_duration_seconds",
		metric.WithDescription("Time to store one batch of events."), metric.WithUnit("s"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return sm, fmt.Errorf("store: create metrics: %w", err)
	}
	return sm, nil
}

// recordInsert counts a stored batch per group (groups[i] is the group of res[i]).
func (m storeMetrics) recordInsert(ctx context.Context, groups []string, res []InsertResult, d time.Duration) {
	type counts struct{ ins, dup int64 }
	// Batches almost always hold one group: count runs of equal groups.
	flush := func(group string, c counts) {
		attrs := metric.WithAttributes(attribute.String("group", group))
		if c.ins > 0 {
			m.inserted.Add(ctx, c.ins, attrs)
		}
		if c.dup > 0 {
			m.duplicates.Add(ctx, c.dup, attrs)
		}
	}
	var cur counts
	for i, r := range res {
		if i > 0 && groups[i] != groups[i-1] {
			flush(groups[i-1], cur)
			cur = counts{}
		}
		if r.Duplicate {
			cur.dup++
		} else {
			cur.ins++
		}
	}
	if len(res) > 0 {
		flush(groups[len(res)-1], cur)
	}
	m.insertDur.Record(ctx, d.Seconds())
}
