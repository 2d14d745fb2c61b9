package store

// Read-only queries behind the federation health checks, the FederationSLO report and
// the remediation plan (federation/health, federation/slo, federation/remediation), and
// the two safe remediation executors. Every query reads through the read pool and is
// bounded by an index range or by the retention of the tables it reads.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"routerd.net/routerd/federation/event"
)

// BacklogHealth describes the undelivered rows (pending and retrying) of one peer.
type BacklogHealth struct {
	// Group and Peer identify the outbox.
	Group string `json:"group"`
	Peer  string `json:"peer"`
	// Pending and Retrying count rows by state.
	Pending  int64 `json:"pending"`
	Retrying int64 `json:"retrying"`
	// Overdue counts rows whose next attempt (or, without one, whose creation) is at or
	// before the OverdueBefore passed to BacklogHealth: the sender should have tried them.
	Overdue int64 `json:"overdue"`
	// OldestCreated is the creation time of the oldest row (queued, or re-queued by a TTL
	// refresh); the delivery lag is now minus it.
	OldestCreated time.Time `json:"oldestCreated,omitzero"`
	// OldestDue is the earliest next attempt (or creation) time of the rows.
	OldestDue time.Time `json:"oldestDue,omitzero"`
	// LastError is the error of the most recently updated row that has one.
	LastError string `json:"lastError,omitempty"`
	// LastSuccess is the latest delivery time among the peer's rows in state delivered
	// (zero when it has none).
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
}

// BacklogHealth returns, per peer of group with undelivered rows, the counts and ages of
// those rows, their latest error and the peer's last success, sorted by peer. A row
// counts as overdue when its next attempt is at or before overdueBefore. It reads the
// outbox index, and the delivered range of the TTL-refresh index of each peer with a
// backlog (for LastSuccess).
func (s *Store) BacklogHealth(ctx context.Context, group string, overdueBefore time.Time) ([]BacklogHealth, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	q := `SELECT d.peer, SUM(d.state = 'pending'), SUM(d.state = 'retrying'),
		SUM(COALESCE(d.next_attempt_at, d.created_at) <= ?2), MIN(d.created_at), MIN(COALESCE(d.next_attempt_at, d.created_at)),
		COALESCE((SELECT x.last_error FROM event_deliveries x INDEXED BY event_deliveries_outbox
			WHERE x.group_name = ?1 AND x.peer = d.peer AND x.state IN ('pending', 'retrying') AND x.last_error != ''
			ORDER BY x.updated_at DESC LIMIT 1), ''),
		(SELECT MAX(x.delivered_at) FROM event_deliveries x INDEXED BY event_deliveries_refresh
			WHERE x.group_name = ?1 AND x.peer = d.peer AND x.state = 'delivered')
		FROM event_deliveries d INDEXED BY event_deliveries_outbox
		WHERE d.group_name = ?1 AND d.state IN ('pending', 'retrying')
		GROUP BY d.peer ORDER BY d.peer`
	return queryList(ctx, s.r, "backlog health of "+group, q, []any{group, overdueBefore.UnixNano()},
		func(rows *sql.Rows) (BacklogHealth, error) {
			b := BacklogHealth{Group: group}
			var oldest, due int64
			var success sql.NullInt64
			err := rows.Scan(&b.Peer, &b.Pending, &b.Retrying, &b.Overdue, &oldest, &due, &b.LastError, &success)
			b.OldestCreated, b.OldestDue = time.Unix(0, oldest).UTC(), time.Unix(0, due).UTC()
			b.LastSuccess = timeFromDB(success)
			return b, err
		})
}

// FailedHealth describes the failed delivery rows of one peer (the sender gave up on
// them).
type FailedHealth struct {
	// Group and Peer identify the outbox.
	Group string `json:"group"`
	Peer  string `json:"peer"`
	// Failed counts the rows.
	Failed int64 `json:"failed"`
	// LastError and LastFailedAt are those of the most recently updated row.
	LastError    string    `json:"lastError,omitempty"`
	LastFailedAt time.Time `json:"lastFailedAt,omitzero"`
}

// FailedHealth returns, per peer of group with failed rows, their count and latest
// error, sorted by peer. It reads the failed range of the delivery index only.
func (s *Store) FailedHealth(ctx context.Context, group string) ([]FailedHealth, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	// The group's peers are enumerated by a loose index scan (one seek per peer), then
	// each peer's failed rows are an index range: the delivered and pending rows, the
	// bulk of the table, are never read.
	q := `WITH RECURSIVE peers(peer) AS (
			SELECT MIN(peer) FROM event_deliveries INDEXED BY event_deliveries_due WHERE group_name = ?1
			UNION ALL
			SELECT (SELECT MIN(x.peer) FROM event_deliveries x INDEXED BY event_deliveries_due
				WHERE x.group_name = ?1 AND x.peer > peers.peer)
			FROM peers WHERE peers.peer IS NOT NULL)
		SELECT p.peer, COUNT(*), MAX(d.updated_at),
			COALESCE((SELECT x.last_error FROM event_deliveries x INDEXED BY event_deliveries_due
				WHERE x.group_name = ?1 AND x.peer = p.peer AND x.state = 'failed' ORDER BY x.updated_at DESC LIMIT 1), '')
		FROM peers p CROSS JOIN event_deliveries d INDEXED BY event_deliveries_due
		WHERE p.peer IS NOT NULL AND d.group_name = ?1 AND d.peer = p.peer AND d.state = 'failed'
		GROUP BY p.peer ORDER BY p.peer`
	return queryList(ctx, s.r, "failed deliveries of "+group, q, []any{group}, func(rows *sql.Rows) (FailedHealth, error) {
		f := FailedHealth{Group: group}
		var at int64
		err := rows.Scan(&f.Peer, &f.Failed, &at, &f.LastError)
		f.LastFailedAt = time.Unix(0, at).UTC()
		return f, err
	})
}

// StaleTTLHealth describes the delivered rows of one peer whose local event has since
// been extended (a later expiresAt) while the peer still holds the copy it was pushed:
// the peer's TTL is stale until the event is pushed again.
type StaleTTLHealth struct {
	// Group and Peer identify the outbox.
	Group string `json:"group"`
	Peer  string `json:"peer"`
	// Stale counts such rows whose local event is still live.
	Stale int64 `json:"stale"`
	// ExpiredAtPeer counts those whose copy at the peer has already expired.
	ExpiredAtPeer int64 `json:"expiredAtPeer"`
	// ExpiringSoon counts those whose copy at the peer expires within the soon window
	// passed to StaleTTLHealth (ExpiredAtPeer included).
	ExpiringSoon int64 `json:"expiringSoon"`
	// SoonestPeerExpiry is the earliest expiresAt among the peer's stale copies.
	SoonestPeerExpiry time.Time `json:"soonestPeerExpiry,omitzero"`
}

// StaleTTLHealth returns, per peer of group with stale copies, the rows that are
// delivered while their local event's expiresAt is later than the one delivered and the
// event is still live at now, sorted by peer. soon is the window counted as ExpiringSoon.
func (s *Store) StaleTTLHealth(ctx context.Context, group string, now time.Time, soon time.Duration) ([]StaleTTLHealth, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	n := now.UnixNano()
	q := `SELECT d.peer, COUNT(*), SUM(d.delivered_expires_at <= ?2), SUM(d.delivered_expires_at <= ?3),
		MIN(d.delivered_expires_at)
		FROM event_deliveries d INDEXED BY event_deliveries_refresh JOIN events e ON e.id = d.event_id
		WHERE d.group_name = ?1 AND d.state = 'delivered' AND d.delivered_expires_at IS NOT NULL
		AND e.expires_at > d.delivered_expires_at AND e.expires_at > ?2
		GROUP BY d.peer ORDER BY d.peer`
	return queryList(ctx, s.r, "stale TTL health of "+group, q, []any{group, n, n + soon.Nanoseconds()},
		func(rows *sql.Rows) (StaleTTLHealth, error) {
			h := StaleTTLHealth{Group: group}
			var soonest int64
			err := rows.Scan(&h.Peer, &h.Stale, &h.ExpiredAtPeer, &h.ExpiringSoon, &soonest)
			h.SoonestPeerExpiry = time.Unix(0, soonest).UTC()
			return h, err
		})
}

// MissingDeliveryQuery selects the events MissingDeliveries checks, for several peers
// of one group at once.
type MissingDeliveryQuery struct {
	// Group names the group; SourceNode is the local node: only events it originated
	// are pushed.
	Group, SourceNode string
	// Peers are the peers to check.
	Peers []MissingPeer
	// StoredSince excludes events stored before it (delivery rows older than the
	// retention may have been pruned).
	StoredSince time.Time
	// LiveAt excludes events that expired at or before it (their rows may have been
	// pruned).
	LiveAt time.Time
	// Samples is how many event ids to return per peer (default 5).
	Samples int
	// Limit bounds the events scanned (default 200000).
	Limit int
}

// MissingPeer is one peer of a MissingDeliveryQuery.
type MissingPeer struct {
	// Name is the EventPeer name (the peer column of event_deliveries).
	Name string
	// Match is the peer's filter (types, subject prefixes, never its own events); nil
	// matches every event. It sees ID, Group, Type, SourceNode and Subject only.
	Match func(*event.Event) bool
	// StoredBefore excludes events stored at or after it (the sender's grace period).
	StoredBefore time.Time
}

// MissingDeliveries is what MissingDeliveries found for one peer.
type MissingDeliveries struct {
	// Missing counts the matching events with no delivery row for the peer.
	Missing int64 `json:"missing"`
	// SampleIDs are the first few of them, oldest first.
	SampleIDs []string `json:"sampleIDs,omitempty"`
	// OldestStoredAt is when the first (lowest Seq) of them was stored.
	OldestStoredAt time.Time `json:"oldestStoredAt,omitzero"`
	// Scanned counts the candidate events looked at; Truncated is set when Limit
	// stopped the scan.
	Scanned   int64 `json:"scanned"`
	Truncated bool  `json:"truncated,omitempty"`
}

// MissingDeliveries finds, for each peer of q, the local events of the group that the
// peer's filter accepts, that are live and were stored in [StoredSince, StoredBefore),
// yet have no delivery row for the peer: events the sender should have queued for it and
// did not. It reads the group's local events once, with the peers that have a row for
// each (one primary-key range per event). The result maps peer name to its findings.
func (s *Store) MissingDeliveries(ctx context.Context, q MissingDeliveryQuery) (map[string]MissingDeliveries, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	out := make(map[string]MissingDeliveries, len(q.Peers))
	if len(q.Peers) == 0 {
		return out, nil
	}
	if q.Samples <= 0 {
		q.Samples = 5
	}
	if q.Limit <= 0 {
		q.Limit = 200000
	}
	since := int64(0)
	if !q.StoredSince.IsZero() {
		since = q.StoredSince.UnixNano()
	}
	var before int64
	for _, p := range q.Peers {
		before = max(before, p.StoredBefore.UnixNano())
	}
	rows, err := s.r.QueryContext(ctx, `SELECT e.id, e.type, e.subject, e.received_at,
		COALESCE((SELECT group_concat(d.peer, char(31)) FROM event_deliveries d WHERE d.event_id = e.id), '')
		FROM events e INDEXED BY events_group_source_seq
		WHERE e.group_name = ?1 AND e.source_node = ?2 AND e.received_at < ?3 AND e.received_at >= ?4
		AND (e.expires_at IS NULL OR e.expires_at > ?5)
		ORDER BY e.seq LIMIT ?6`,
		q.Group, q.SourceNode, before, since, q.LiveAt.UnixNano(), q.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: missing deliveries of %s: %w", q.Group, err)
	}
	defer rows.Close()
	res := make([]MissingDeliveries, len(q.Peers))
	var scanned int64
	for rows.Next() {
		e := event.Event{Group: q.Group, SourceNode: q.SourceNode}
		var (
			stored int64
			have   string
		)
		if err := rows.Scan(&e.ID, &e.Type, &e.Subject, &stored, &have); err != nil {
			return nil, fmt.Errorf("store: missing deliveries of %s: %w", q.Group, err)
		}
		scanned++
		for i, p := range q.Peers {
			if stored >= p.StoredBefore.UnixNano() || hasPeer(have, p.Name) {
				continue
			}
			if p.Match != nil && !p.Match(&e) {
				continue
			}
			r := &res[i]
			if r.Missing == 0 {
				r.OldestStoredAt = time.Unix(0, stored).UTC()
			}
			r.Missing++
			if len(r.SampleIDs) < q.Samples {
				r.SampleIDs = append(r.SampleIDs, e.ID)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: missing deliveries of %s: %w", q.Group, err)
	}
	for i, p := range q.Peers {
		res[i].Scanned = scanned
		res[i].Truncated = scanned >= int64(q.Limit)
		out[p.Name] = res[i]
	}
	return out, nil
}

// hasPeer reports whether peer is one of the unit-separator-joined names in list.
func hasPeer(list, peer string) bool {
	for list != "" {
		name, rest, _ := strings.Cut(list, "\x1f")
		if name == peer {
			return true
		}
		list = rest
	}
	return false
}

// SubscriptionRunHealth summarises the recorded runs of one subscription.
type SubscriptionRunHealth struct {
	// Subscription is the EventSubscription name.
	Subscription string `json:"subscription"`
	// Runs counts the recorded runs (pruned by the store's retention).
	Runs int64 `json:"runs"`
	// Failing counts the failed runs since the last succeeded one (all failed runs when
	// none succeeded): 0 when the subscription's latest run succeeded.
	Failing int64 `json:"failing"`
	// Waiting counts runs in state pending or running.
	Waiting int64 `json:"waiting"`
	// LastState, LastError and LastAt describe the newest run.
	LastState string    `json:"lastState"`
	LastError string    `json:"lastError,omitempty"`
	LastAt    time.Time `json:"lastAt,omitzero"`
}

// SubscriptionRunHealth returns the run summary of each subscription that has runs,
// sorted by subscription name.
func (s *Store) SubscriptionRunHealth(ctx context.Context) ([]SubscriptionRunHealth, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	q := `WITH agg AS (
			SELECT subscription, COUNT(*) AS runs, MAX(id) AS last_id,
				COALESCE(MAX(CASE WHEN state = 'succeeded' THEN id END), 0) AS last_ok,
				SUM(state IN ('pending', 'running')) AS waiting
			FROM subscription_runs GROUP BY subscription)
		SELECT a.subscription, a.runs, a.waiting,
			(SELECT COUNT(*) FROM subscription_runs f WHERE f.subscription = a.subscription AND f.id > a.last_ok AND f.state = 'failed'),
			l.state, l.error, COALESCE(l.finished_at, l.started_at, l.created_at)
		FROM agg a JOIN subscription_runs l ON l.id = a.last_id
		ORDER BY a.subscription`
	return queryList(ctx, s.r, "subscription run health", q, nil, func(rows *sql.Rows) (SubscriptionRunHealth, error) {
		var (
			h  SubscriptionRunHealth
			at sql.NullInt64
		)
		err := rows.Scan(&h.Subscription, &h.Runs, &h.Waiting, &h.Failing, &h.LastState, &h.LastError, &at)
		h.LastAt = timeFromDB(at)
		return h, err
	})
}

// RetryFailedDeliveries puts the failed delivery rows of group and peer back to pending,
// due at now, with their attempts reset and their failAfter horizon restarted (the last
// error is kept until the next attempt). An empty peer retries every peer of the group.
// It is the retry-failed-deliveries remediation; it returns the rows re-queued.
func (s *Store) RetryFailedDeliveries(ctx context.Context, group, peer string, now time.Time) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	if group == "" {
		return 0, fmt.Errorf("store: retry failed deliveries: empty group")
	}
	n := now.UnixNano()
	var retried int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE event_deliveries INDEXED BY event_deliveries_due
			SET state = 'pending', attempts = 0, next_attempt_at = ?1, created_at = ?1, updated_at = ?1
			WHERE group_name = ?2 AND (?3 = '' OR peer = ?3) AND state = 'failed'`, n, group, peer)
		if err != nil {
			return err
		}
		retried, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: retry failed deliveries of %s/%s: %w", group, peer, err)
	}
	return retried, nil
}

// staleHorizon is how far ahead ForceRepushStaleTTL looks: far enough to cover every
// expiry a stored event can have, near enough that now+staleHorizon fits in int64
// nanoseconds until the year 2200.
const staleHorizon = 100 * 365 * 24 * time.Hour

// ForceRepushStaleTTL puts every delivered row of group and peer whose local event has
// since been extended (and is still live) back to pending, so the sender pushes the
// newer expiresAt at once instead of shortly before the peer's copy expires. It is the
// force-repush-stale-ttl remediation, the sender's TTL refresh (RequeueRefreshed) with an
// unbounded window.
func (s *Store) ForceRepushStaleTTL(ctx context.Context, group, peer string, now time.Time) (RequeueResult, error) {
	r, err := s.RequeueRefreshed(ctx, group, []string{peer}, time.Time{}, now, staleHorizon)
	return r[peer], err
}
