package store

// The transport's delivery queries (room H5): the per-peer outbox over event_deliveries
// that routerd-eventd drives, TTL refresh, pruning, and the listings behind
// `routerctl federation deliveries|peers`.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"routerd.net/routerd/federation/event"
)

// Delivery states of event_deliveries.state.
const (
	DeliveryPending   = "pending"
	DeliveryRetrying  = "retrying"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// EnqueueRequest asks EnqueueDeliveries to create delivery rows for one peer.
type EnqueueRequest struct {
	// Group and Peer (EventPeer name) identify the outbox.
	Group, Peer string
	// SourceNode is the local node: only events it originated are pushed.
	SourceNode string
	// AnySource scans the events of every source node instead, leaving the choice to
	// Match (a router bridging a brokered group to push peers relays foreign events).
	AnySource bool
	// Match filters events for the peer (nil: all).
	Match func(*event.Event) bool
	// Limit bounds the events scanned in one call (default 1024).
	Limit int
	// After, when UseAfter is set, replaces the stored cursor as the scan start (NextEvents
	// only; used to read ahead while the previous page is still being pushed).
	After    int64
	UseAfter bool
	// Now is the creation time of the rows.
	Now time.Time
}

// Delivery is one due outbox row with its event.
type Delivery struct {
	// Seq is the event's local sequence number (push order).
	Seq int64
	// Event is the stored event.
	Event event.Event
	// StoredAt is when the event entered the local store (lag is measured from it).
	StoredAt time.Time
	// State, Attempts and CreatedAt are the row's current values; CreatedAt starts the
	// failAfter horizon (reset by a TTL refresh).
	State     string
	Attempts  int
	CreatedAt time.Time
	// DeliveredAt is set when the event was delivered before (a TTL refresh).
	DeliveredAt time.Time
	// TraceParent is the stored trace context of the event ("" without tracing).
	TraceParent string
}

// DeliveryOutcome is the result of one push attempt for RecordDeliveries.
type DeliveryOutcome struct {
	EventID  string
	State    string // DeliveryDelivered, DeliveryRetrying or DeliveryFailed
	Attempts int
	// LastError is the error of a failed attempt ("" when delivered).
	LastError string
	// NextAttemptAt is when a retrying delivery is due again.
	NextAttemptAt time.Time
	// DeliveredAt and DeliveredExpiresAt (the event's expiresAt as pushed) are set when
	// delivered.
	DeliveredAt, DeliveredExpiresAt time.Time
	// FirstDelivery and Lag are for the caller's metrics; they are not stored.
	FirstDelivery bool
	Lag           time.Duration
}

// RequeueResult counts what RequeueRefreshed put back into the outbox.
type RequeueResult struct {
	// Requeued deliveries whose event's expiresAt is later than what the peer has.
	Requeued int
	// Stale are those of Requeued whose copy at the peer had already expired.
	Stale int
}

// OutboxCursorName is the cursors row of one peer's outbox.
func OutboxCursorName(group, peer string) string { return "eventd/" + group + "/" + peer }

// FreshEvents is what NextEvents found after a peer's outbox cursor.
type FreshEvents struct {
	// Events are the scanned local events Match accepted, in order.
	Events []StoredEvent
	// After is the cursor the scan started from; Last is the last scanned Seq (== After
	// when nothing new was found).
	After, Last int64
}

// NextEvents reads up to req.Limit local events (SourceNode; every source with
// AnySource) of Group stored after the peer's outbox cursor and returns those Match
// accepts, without writing anything.
func (s *Store) NextEvents(ctx context.Context, req EnqueueRequest) (FreshEvents, error) {
	if s.isClosed() {
		return FreshEvents{}, ErrClosed
	}
	if req.Limit <= 0 {
		req.Limit = 1024
	}
	after := req.After
	if !req.UseAfter {
		var err error
		if after, err = s.GetCursor(ctx, OutboxCursorName(req.Group, req.Peer)); err != nil {
			return FreshEvents{}, fmt.Errorf("store: next events for %s: %w", req.Peer, err)
		}
	}
	out := FreshEvents{After: after, Last: after}
	q, args := `SELECT `+eventColumns+` FROM events
		WHERE group_name = ? AND seq > ? AND source_node = ? ORDER BY seq LIMIT ?`, []any{req.Group, after, req.SourceNode, req.Limit}
	if req.AnySource {
		q, args = `SELECT `+eventColumns+` FROM events
		WHERE group_name = ? AND seq > ? ORDER BY seq LIMIT ?`, []any{req.Group, after, req.Limit}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return FreshEvents{}, fmt.Errorf("store: next events for %s: %w", req.Peer, err)
	}
	defer rows.Close()
	for rows.Next() {
		se, err := scanEvent(rows)
		if err != nil {
			return FreshEvents{}, fmt.Errorf("store: next events for %s: %w", req.Peer, err)
		}
		out.Last = se.Seq
		if req.Match == nil || req.Match(&se.Event) {
			out.Events = append(out.Events, se)
		}
	}
	if err := rows.Err(); err != nil {
		return FreshEvents{}, fmt.Errorf("store: next events for %s: %w", req.Peer, err)
	}
	return out, nil
}

// EnqueueDeliveries creates pending delivery rows for the local events (SourceNode) of
// Group stored after the peer's outbox cursor, for those Match accepts, and advances the
// cursor past every scanned event, in one transaction. It returns the rows created.
func (s *Store) EnqueueDeliveries(ctx context.Context, req EnqueueRequest) (int, error) {
	fresh, err := s.NextEvents(ctx, req)
	if err != nil || fresh.Last == fresh.After {
		return 0, err
	}
	if req.Now.IsZero() {
		req.Now = s.now()
	}
	outcomes := make([]DeliveryOutcome, len(fresh.Events))
	for i, se := range fresh.Events {
		outcomes[i] = DeliveryOutcome{EventID: se.Event.ID, State: DeliveryPending, NextAttemptAt: req.Now}
	}
	return s.CommitFresh(ctx, req.Group, req.Peer, fresh, outcomes, req.Now)
}

// CommitFresh records, in one transaction, delivery rows for the events of fresh (one
// outcome each, in the same order; state pending for queued rows, or the result of a
// push already made) and advances the peer's cursor to fresh.Last. Nothing is written
// when the cursor has moved past fresh.Last meanwhile. It returns the rows created.
func (s *Store) CommitFresh(ctx context.Context, group, peer string, fresh FreshEvents, outcomes []DeliveryOutcome, now time.Time) (int, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if len(outcomes) != len(fresh.Events) {
		return 0, fmt.Errorf("store: commit deliveries for %s/%s: %d outcomes for %d events", group, peer, len(outcomes), len(fresh.Events))
	}
	cursorName := OutboxCursorName(group, peer)
	n := now.UnixNano()
	created := 0
	var delivered []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		delivered = delivered[:0]
		// Re-check the cursor inside the write lock: a second sender for the same peer
		// must not move it backwards.
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE name = ?`, cursorName).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read cursor: %w", err)
		}
		if cur >= fresh.Last {
			return nil
		}
		if len(outcomes) > 0 {
			ins, err := tx.PrepareContext(ctx, `INSERT INTO event_deliveries
				(event_id, peer, group_name, state, attempts, last_error, next_attempt_at, delivered_at,
				 delivered_expires_at, created_at, updated_at, event_seq)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, peer) DO NOTHING`)
			if err != nil {
				return fmt.Errorf("prepare insert delivery: %w", err)
			}
			defer ins.Close()
			for i, se := range fresh.Events {
				if se.Seq <= cur {
					continue
				}
				o := outcomes[i]
				switch o.State {
				case DeliveryPending, DeliveryRetrying, DeliveryDelivered, DeliveryFailed:
				default:
					return fmt.Errorf("delivery %s: unknown state %q", o.EventID, o.State)
				}
				res, err := ins.ExecContext(ctx, se.Event.ID, peer, group, o.State, o.Attempts, truncate(o.LastError, 512),
					timeToDB(o.NextAttemptAt), timeToDB(o.DeliveredAt), timeToDB(o.DeliveredExpiresAt), n, n, se.Seq)
				if err != nil {
					return fmt.Errorf("insert delivery %s: %w", se.Event.ID, err)
				}
				if k, _ := res.RowsAffected(); k == 1 {
					created++
				}
				if o.State == DeliveryDelivered {
					delivered = append(delivered, se.Event.ID)
				}
			}
			if err := requeueIfExtended(ctx, tx, peer, delivered, n); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO cursors (name, seq, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
			cursorName, fresh.Last, n)
		if err != nil {
			return fmt.Errorf("advance cursor: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: commit deliveries for %s/%s: %w", group, peer, err)
	}
	return created, nil
}

// HasBacklog reports whether the peer has pending or retrying deliveries.
func (s *Store) HasBacklog(ctx context.Context, group, peer string) (bool, error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM event_deliveries INDEXED BY event_deliveries_outbox
		WHERE group_name = ? AND peer = ? AND state IN ('pending', 'retrying'))`, group, peer).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: backlog of %s/%s: %w", group, peer, err)
	}
	return ok, nil
}

// DueDeliveries returns up to limit pending or retrying deliveries of the peer whose
// next attempt is due at now, in event order.
func (s *Store) DueDeliveries(ctx context.Context, group, peer string, now time.Time, limit int) ([]Delivery, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	rows, err := s.r.QueryContext(ctx, `SELECT d.state, d.attempts, d.created_at, d.delivered_at,
		e.seq, e.id, e.group_name, e.type, e.source_node, e.subject, e.dedupe_key, e.payload,
		e.observed_at, e.expires_at, e.received_at, e.trace_parent
		FROM event_deliveries d INDEXED BY event_deliveries_outbox JOIN events e ON e.id = d.event_id
		WHERE d.group_name = ? AND d.peer = ? AND d.state IN ('pending', 'retrying')
		AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)
		ORDER BY d.event_seq LIMIT ?`, group, peer, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due deliveries for %s/%s: %w", group, peer, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var (
			d                  Delivery
			created, delivered sql.NullInt64
		)
		sc := scanFunc(func(dest ...any) error {
			return rows.Scan(append([]any{&d.State, &d.Attempts, &created, &delivered}, dest...)...)
		})
		se, err := scanEvent(sc)
		if err != nil {
			return nil, fmt.Errorf("store: due deliveries for %s/%s: %w", group, peer, err)
		}
		d.Seq, d.Event, d.StoredAt, d.TraceParent = se.Seq, se.Event, se.ReceivedAt, se.TraceParent
		d.CreatedAt, d.DeliveredAt = timeFromDB(created), timeFromDB(delivered)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: due deliveries for %s/%s: %w", group, peer, err)
	}
	return out, nil
}

// scanFunc adapts a closure to scanEvent's Scan interface.
type scanFunc func(dest ...any) error

// Scan calls f.
func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// RecordDeliveries stores the outcomes of one push pass in one transaction.
func (s *Store) RecordDeliveries(ctx context.Context, group, peer string, outcomes []DeliveryOutcome) error {
	if s.isClosed() {
		return ErrClosed
	}
	if len(outcomes) == 0 {
		return nil
	}
	now := s.now().UnixNano()
	var delivered []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		delivered = delivered[:0]
		st, err := tx.PrepareContext(ctx, `UPDATE event_deliveries SET state = ?, attempts = ?, last_error = ?,
			next_attempt_at = ?, delivered_at = COALESCE(?, delivered_at),
			delivered_expires_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_expires_at END,
			updated_at = ? WHERE event_id = ? AND peer = ?`)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer st.Close()
		for _, o := range outcomes {
			switch o.State {
			case DeliveryDelivered, DeliveryRetrying, DeliveryFailed:
			default:
				return fmt.Errorf("delivery %s: state %q is not a push outcome", o.EventID, o.State)
			}
			if _, err := st.ExecContext(ctx, o.State, o.Attempts, truncate(o.LastError, 512),
				timeToDB(o.NextAttemptAt), timeToDB(o.DeliveredAt), o.State, timeToDB(o.DeliveredExpiresAt),
				now, o.EventID, peer); err != nil {
				return fmt.Errorf("update delivery %s: %w", o.EventID, err)
			}
			if o.State == DeliveryDelivered {
				delivered = append(delivered, o.EventID)
			}
		}
		return requeueIfExtended(ctx, tx, peer, delivered, now)
	})
	if err != nil {
		return fmt.Errorf("store: record %d deliveries for %s/%s: %w", len(outcomes), group, peer, err)
	}
	return nil
}

// requeueIfExtended puts just-delivered rows back to pending when their event's expiresAt
// moved past the one pushed while the push was in flight (ExtendExpiry only requeues rows
// that were already delivered), so such a refresh is never lost.
func requeueIfExtended(ctx context.Context, tx *sql.Tx, peer string, ids []string, now int64) error {
	if len(ids) == 0 {
		return nil
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("encode ids: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE event_deliveries SET state = 'pending', next_attempt_at = ?1, updated_at = ?1
		WHERE peer = ?2 AND event_id IN (SELECT value FROM json_each(?3)) AND state = 'delivered'
		AND delivered_expires_at IS NOT NULL
		AND EXISTS (SELECT 1 FROM events e WHERE e.id = event_deliveries.event_id AND e.expires_at > event_deliveries.delivered_expires_at)`,
		now, peer, string(b))
	if err != nil {
		return fmt.Errorf("requeue extended: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// RequeueRefreshed puts delivered rows of the peers back to pending when the peer's copy
// expires within before (or already has) while the local event lives on with a later
// expiresAt: the TTL refresh. The failAfter horizon restarts for them. One transaction
// covers every peer (a sender with 99 peers writes once per refresh, not 99 times); the
// result has an entry for each peer that had rows requeued.
//
// Rows are considered when the peer's copy expires in (since, now+before]: a caller that
// passes the previous call's now+before as since looks at each row once, when it enters
// the window (zero since: every row up to now+before). Extensions made through
// ExtendExpiry requeue at once; this is the safety net for other changes.
func (s *Store) RequeueRefreshed(ctx context.Context, group string, peers []string, since, now time.Time, before time.Duration) (map[string]RequeueResult, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	out := map[string]RequeueResult{}
	if len(peers) == 0 {
		return out, nil
	}
	n := now.UnixNano()
	lower := int64(math.MinInt64)
	if !since.IsZero() {
		lower = since.UnixNano()
	}
	list, err := json.Marshal(peers)
	if err != nil {
		return nil, fmt.Errorf("store: ttl refresh for %s: %w", group, err)
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		// peer IN (…) with the window on delivered_expires_at: one index range
		// (event_deliveries_refresh) per peer.
		rows, err := tx.QueryContext(ctx, `UPDATE event_deliveries SET state = 'pending', attempts = 0,
			next_attempt_at = ?1, created_at = ?1, updated_at = ?1
			WHERE group_name = ?2 AND peer IN (SELECT value FROM json_each(?3)) AND state = 'delivered'
			AND delivered_expires_at > ?5 AND delivered_expires_at <= ?4
			AND EXISTS (SELECT 1 FROM events e WHERE e.id = event_deliveries.event_id
				AND e.expires_at > event_deliveries.delivered_expires_at AND e.expires_at > ?1)
			RETURNING peer, delivered_expires_at`, n, group, string(list), n+before.Nanoseconds(), lower)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				peer string
				exp  int64
			)
			if err := rows.Scan(&peer, &exp); err != nil {
				return err
			}
			r := out[peer]
			r.Requeued++
			if exp <= n {
				r.Stale++
			}
			out[peer] = r
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: ttl refresh for %s: %w", group, err)
	}
	return out, nil
}

// BacklogPeers returns those of peers that have pending or retrying deliveries, in the
// order given: one read for a whole sender instead of one per peer.
func (s *Store) BacklogPeers(ctx context.Context, group string, peers []string) ([]string, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	list, err := json.Marshal(peers)
	if err != nil {
		return nil, fmt.Errorf("store: backlog of %s: %w", group, err)
	}
	// One probe of event_deliveries_due per peer and state.
	rows, err := s.r.QueryContext(ctx, `SELECT p.value FROM json_each(?2) p
		WHERE EXISTS (SELECT 1 FROM event_deliveries d INDEXED BY event_deliveries_due
			WHERE d.group_name = ?1 AND d.peer = p.value AND d.state IN ('pending', 'retrying'))
		ORDER BY p.key`, group, string(list))
	if err != nil {
		return nil, fmt.Errorf("store: backlog of %s: %w", group, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("store: backlog of %s: %w", group, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: backlog of %s: %w", group, err)
	}
	return out, nil
}

// ExtendExpiry raises the stored expiresAt of already stored events to the one given
// (never lowers it; the stored source node must match) and puts their delivered rows
// back to pending, so the origin re-pushes them at once (TTL refresh). It is how a
// re-observed fact keeps its event alive, and how a receiver applies a refreshed event it
// already has. It returns how many events were extended.
func (s *Store) ExtendExpiry(ctx context.Context, events []event.Event) (int, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	now := s.now().UnixNano()
	extended := 0
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		upd, err := tx.PrepareContext(ctx, `UPDATE events SET expires_at = ?
			WHERE id = ? AND source_node = ? AND expires_at IS NOT NULL AND expires_at < ?`)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer upd.Close()
		requeue, err := tx.PrepareContext(ctx, `UPDATE event_deliveries SET state = 'pending', attempts = 0,
			next_attempt_at = ?1, created_at = ?1, updated_at = ?1
			WHERE event_id = ?2 AND state = 'delivered'`)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer requeue.Close()
		for _, e := range events {
			if e.ExpiresAt.IsZero() {
				continue
			}
			exp := e.ExpiresAt.UnixNano()
			res, err := upd.ExecContext(ctx, exp, e.ID, e.SourceNode, exp)
			if err != nil {
				return fmt.Errorf("extend event %s: %w", e.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			extended++
			if _, err := requeue.ExecContext(ctx, now, e.ID); err != nil {
				return fmt.Errorf("requeue deliveries of %s: %w", e.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: extend expiry of %d events: %w", len(events), err)
	}
	return extended, nil
}

// PruneDeliveries removes delivery rows of group that are no longer useful, for each of
// peers: failed rows untouched for maxAge, and delivered rows whose event is no longer
// live (expired or gone) once the peer's copy expired too, or, for events without an
// expiry, once they are maxAge old. Rows of live events stay, for TTL refresh. Each part
// is an index range (never a scan of every delivered row). It returns the rows removed.
func (s *Store) PruneDeliveries(ctx context.Context, group string, peers []string, now time.Time, maxAge time.Duration) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	n := now.UnixNano()
	cutoff := now.Add(-maxAge).UnixNano()
	const notLive = `NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id AND e.expires_at > ?3)`
	parts := []string{
		// The peer's copy expired and so did ours.
		`SELECT d.event_id, d.peer FROM event_deliveries d INDEXED BY event_deliveries_refresh
			WHERE d.group_name = ?1 AND d.peer = ?2 AND d.state = 'delivered' AND d.delivered_expires_at < ?3
			AND ` + notLive + ` LIMIT ?5`,
		// Events without an expiry: kept maxAge after delivery.
		`SELECT d.event_id, d.peer FROM event_deliveries d INDEXED BY event_deliveries_refresh
			WHERE d.group_name = ?1 AND d.peer = ?2 AND d.state = 'delivered' AND d.delivered_expires_at IS NULL
			AND d.updated_at < ?4 AND ` + notLive + ` LIMIT ?5`,
		// Failed rows: kept maxAge for inspection and retry-failed-deliveries.
		`SELECT d.event_id, d.peer FROM event_deliveries d INDEXED BY event_deliveries_due
			WHERE d.group_name = ?1 AND d.peer = ?2 AND d.state = 'failed' AND d.updated_at < ?4 LIMIT ?5`,
	}
	var total int64
	for _, peer := range peers {
		for _, sel := range parts {
			for {
				var removed int64
				err := s.writeTx(ctx, func(tx *sql.Tx) error {
					res, err := tx.ExecContext(ctx, `DELETE FROM event_deliveries WHERE (event_id, peer) IN (`+sel+`)`,
						group, peer, n, cutoff, DefaultPruneBatchSize)
					if err != nil {
						return err
					}
					removed, err = res.RowsAffected()
					return err
				})
				if err != nil {
					return total, fmt.Errorf("store: prune deliveries of %s/%s: %w", group, peer, err)
				}
				total += removed
				if removed < DefaultPruneBatchSize {
					break
				}
			}
		}
	}
	return total, nil
}

// DeliveryFilter selects rows for ListDeliveries. Zero fields do not filter.
type DeliveryFilter struct {
	Group, Peer, State string
	// Limit bounds the rows returned (default 1000).
	Limit int
}

// DeliveryRow is one event_deliveries row for listings.
type DeliveryRow struct {
	EventID            string    `json:"eventID"`
	Group              string    `json:"group"`
	Peer               string    `json:"peer"`
	EventType          string    `json:"eventType"`
	State              string    `json:"state"`
	Attempts           int       `json:"attempts"`
	LastError          string    `json:"lastError,omitempty"`
	NextAttemptAt      time.Time `json:"nextAttemptAt,omitzero"`
	DeliveredAt        time.Time `json:"deliveredAt,omitzero"`
	DeliveredExpiresAt time.Time `json:"deliveredExpiresAt,omitzero"`
	CreatedAt          time.Time `json:"createdAt"`
	UpdatedAt          time.Time `json:"updatedAt"`
}

// ListDeliveries returns delivery rows, newest event first.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]DeliveryRow, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var (
		where []string
		args  []any
	)
	for _, c := range []struct{ col, v string }{{"d.group_name", f.Group}, {"d.peer", f.Peer}, {"d.state", f.State}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	q := `SELECT d.event_id, d.group_name, d.peer, COALESCE(e.type, ''), d.state, d.attempts, d.last_error,
		d.next_attempt_at, d.delivered_at, d.delivered_expires_at, d.created_at, d.updated_at
		FROM event_deliveries d LEFT JOIN events e ON e.id = d.event_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	q += " ORDER BY d.event_seq DESC, d.peer LIMIT ?"
	args = append(args, f.Limit)
	return queryList(ctx, s.r, "list deliveries", q, args, func(rows *sql.Rows) (DeliveryRow, error) {
		var (
			r                DeliveryRow
			next, deliv, exp sql.NullInt64
			created, updated int64
		)
		err := rows.Scan(&r.EventID, &r.Group, &r.Peer, &r.EventType, &r.State, &r.Attempts, &r.LastError,
			&next, &deliv, &exp, &created, &updated)
		r.NextAttemptAt, r.DeliveredAt, r.DeliveredExpiresAt = timeFromDB(next), timeFromDB(deliv), timeFromDB(exp)
		r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		return r, err
	})
}

// PeerDeliveryStats summarises one peer's outbox.
type PeerDeliveryStats struct {
	Group string `json:"group"`
	Peer  string `json:"peer"`
	// Delivered, Backlog (pending + retrying) and Failed count rows by state.
	Delivered int64 `json:"delivered"`
	Backlog   int64 `json:"backlog"`
	Failed    int64 `json:"failed"`
	// LastSuccess is the latest delivery time.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastError and LastErrorAt are the most recent failed attempt's.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// OldestPending is the creation time of the oldest undelivered row; Lag is now minus it.
	OldestPending time.Time     `json:"oldestPending,omitzero"`
	Lag           time.Duration `json:"lagNanos"`
}

// PeerStats returns per-peer outbox summaries of group ("" for every group), sorted by
// group and peer.
func (s *Store) PeerStats(ctx context.Context, group string, now time.Time) ([]PeerDeliveryStats, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	rows, err := s.r.QueryContext(ctx, `SELECT group_name, peer,
		SUM(state = 'delivered'), SUM(state IN ('pending', 'retrying')), SUM(state = 'failed'),
		MAX(delivered_at), MIN(CASE WHEN state IN ('pending', 'retrying') THEN created_at END),
		MAX(CASE WHEN last_error != '' THEN updated_at END)
		FROM event_deliveries WHERE ?1 = '' OR group_name = ?1
		GROUP BY group_name, peer ORDER BY group_name, peer`, group)
	if err != nil {
		return nil, fmt.Errorf("store: peer stats: %w", err)
	}
	var out []PeerDeliveryStats
	for rows.Next() {
		var (
			p                       PeerDeliveryStats
			last, oldest, lastErrAt sql.NullInt64
		)
		if err := rows.Scan(&p.Group, &p.Peer, &p.Delivered, &p.Backlog, &p.Failed, &last, &oldest, &lastErrAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: peer stats: %w", err)
		}
		p.LastSuccess, p.OldestPending, p.LastErrorAt = timeFromDB(last), timeFromDB(oldest), timeFromDB(lastErrAt)
		if !p.OldestPending.IsZero() {
			p.Lag = now.Sub(p.OldestPending)
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: peer stats: %w", err)
	}
	for i := range out {
		if out[i].LastErrorAt.IsZero() {
			continue
		}
		err := s.r.QueryRowContext(ctx, `SELECT last_error FROM event_deliveries
			WHERE group_name = ? AND peer = ? AND last_error != '' ORDER BY updated_at DESC LIMIT 1`,
			out[i].Group, out[i].Peer).Scan(&out[i].LastError)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: peer stats: last error of %s: %w", out[i].Peer, err)
		}
	}
	return out, nil
}
