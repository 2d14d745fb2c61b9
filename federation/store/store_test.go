package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// openTest opens a store in a fresh temp dir with a settable clock.
func openTest(t *testing.T) (*Store, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: t0}
	s, err := Open(filepath.Join(t.TempDir(), "state", "routerd.db"), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// ev builds a valid event.
func ev(id, group, typ, subject string, ttl time.Duration) event.Event {
	e := event.Event{ID: id, Group: group, Type: typ, SourceNode: "node-a", Subject: subject,
		Payload: map[string]string{"address": subject}, ObservedAt: t0}
	if ttl > 0 {
		e.ExpiresAt = t0.Add(ttl)
	}
	return e
}

func TestOpenCreatesWALAndSchema(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	var mode string
	if err := s.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	var fk, sync int
	if err := s.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v", fk, err)
	}
	if err := s.DB().QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
		t.Fatalf("synchronous = %d (want 1 NORMAL), %v", sync, err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SchemaVersion != SchemaVersion() || st.Events != 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, table := range []string{"events", "event_deliveries", "cursors", "plugin_kv", "audit_log", "action_plans", "dynamic_parts", "subscription_runs"} {
		var n int
		if err := s.ReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s missing (%d, %v)", table, n, err)
		}
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr error
		check   func(t *testing.T, s *Store)
	}{
		{
			name: "older file is migrated and keeps its events",
			prepare: func(t *testing.T, path string) {
				// A file written by a binary that knew only migration 1.
				db := openRaw(t, path)
				if err := migrate(ctx, db, path, migrations[:1], time.Now, func(int, string) {}); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(`INSERT INTO events (id, group_name, type, dedupe_key, received_at) VALUES ('old-1', 'g', 't', 'old-1', 1)`); err != nil {
					t.Fatal(err)
				}
				db.Close()
			},
			check: func(t *testing.T, s *Store) {
				if _, err := s.GetEvent(ctx, "old-1"); err != nil {
					t.Errorf("event from the old file: %v", err)
				}
				var n int
				s.DB().QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n)
				if n != SchemaVersion() {
					t.Errorf("schema_version rows = %d, want %d", n, SchemaVersion())
				}
			},
		},
		{
			name: "action plans survive the rebuild of migration 6",
			prepare: func(t *testing.T, path string) {
				db := openRaw(t, path)
				if err := migrate(ctx, db, path, migrations[:5], time.Now, func(int, string) {}); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(`INSERT INTO action_plans (id, name, provider, state, document, created_at, updated_at, executed_at)
					VALUES ('p-old', 'assign', 'aws', 'executed', '{}', 1, 2, 3)`); err != nil {
					t.Fatal(err)
				}
				db.Close()
			},
			check: func(t *testing.T, s *Store) {
				p, err := s.GetActionPlan(ctx, "p-old")
				if err != nil || p.State != PlanExecuted || p.Provider != "aws" || p.ExecutedAt.IsZero() {
					t.Fatalf("plan from the old file: %+v, %v", p, err)
				}
				if _, err := s.TransitionActionPlan(ctx, "p-old", PlanTransition{To: PlanUndoing, Actor: "t"}); err != nil {
					t.Errorf("the new states are not allowed after the migration: %v", err)
				}
			},
		},
		{
			name: "newer file is refused",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.DB().Exec(`INSERT INTO schema_version VALUES (?, 'from the future', 0)`, SchemaVersion()+5); err != nil {
					t.Fatal(err)
				}
				s.Close()
			},
			wantErr: ErrSchemaTooNew,
		},
		{
			name: "reopening a current file changes nothing",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			},
			check: func(t *testing.T, s *Store) {
				var n int
				s.DB().QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n)
				if n != SchemaVersion() {
					t.Errorf("schema_version rows = %d, want %d", n, SchemaVersion())
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "routerd.db")
			tc.prepare(t, path)
			s, err := Open(path, Options{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open error = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "upgrade routerd") {
					t.Errorf("error does not say what to do: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tc.check(t, s)
		})
	}
}

func TestCheckMigrations(t *testing.T) {
	if err := checkMigrations(migrations); err != nil {
		t.Fatal(err)
	}
	bad := []Migration{{Version: 1, SQL: "SELECT 1"}, {Version: 3, SQL: "SELECT 1"}}
	if err := checkMigrations(bad); err == nil {
		t.Fatal("a gap in versions was accepted")
	}
}

func TestInsertEvents(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	first, err := s.InsertEvents(ctx, []event.Event{ev("a", "g", "t", "10.0.0.1", time.Hour), ev("b", "g", "t", "10.0.0.2", 0)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		batch   []event.Event
		want    []InsertResult
		wantErr string
	}{
		{
			name:  "new and stored duplicate",
			batch: []event.Event{ev("c", "g", "t", "x", 0), ev("a", "g", "t", "changed", 0)},
			want:  []InsertResult{{ID: "c", Seq: first[1].Seq + 1}, {ID: "a", Seq: first[0].Seq, Duplicate: true}},
		},
		{
			name:  "duplicate inside one batch",
			batch: []event.Event{ev("d", "g", "t", "x", 0), ev("d", "g", "t", "y", 0)},
			// A duplicate may consume a sequence number (AUTOINCREMENT): seqs increase, with gaps.
			want: []InsertResult{{ID: "d", Seq: first[1].Seq + 3}, {ID: "d", Seq: first[1].Seq + 3, Duplicate: true}},
		},
		{
			name:  "ids are trimmed before the duplicate check",
			batch: []event.Event{ev("  b ", "g", "t", "x", 0)},
			want:  []InsertResult{{ID: "b", Seq: first[1].Seq, Duplicate: true}},
		},
		{
			name:    "an invalid event rejects the whole batch",
			batch:   []event.Event{ev("e", "g", "t", "x", 0), {ID: "f", Group: "g"}},
			wantErr: "insert event 1 (f): type: is required",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.InsertEvents(ctx, tc.batch)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, event.ErrInvalid) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, e := range tc.batch {
					if _, err := s.GetEvent(ctx, e.ID); !errors.Is(err, ErrNotFound) {
						t.Errorf("event %s of the rejected batch: %v", e.ID, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// The stored duplicate kept its first content.
	got, err := s.GetEvent(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Event.Subject != "10.0.0.1" {
		t.Errorf("duplicate overwrote the event: %+v", got.Event)
	}
}

func TestDuplicateLookupUsesIDIndex(t *testing.T) {
	s, _ := openTest(t)
	for _, q := range []string{`SELECT seq FROM events WHERE id = ?`, insertEventSQL} {
		rows, err := s.DB().Query(`EXPLAIN QUERY PLAN `+q, make([]any, strings.Count(q, "?"))...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if strings.Contains(joined, "SCAN") {
			t.Errorf("%s: plan scans the table: %s", q, joined)
		}
		if strings.HasPrefix(q, "SELECT") && !strings.Contains(joined, "INDEX sqlite_autoindex_events_1 (id=?)") {
			t.Errorf("lookup does not use the id key: %s", joined)
		}
	}
}

func TestGetEventRoundTrip(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	clk.Set(t0.Add(time.Second))
	in := event.Event{ID: "01JABC", Group: "cloudedge", SourceNode: "onprem", Type: event.TypeClientIPv4Observed,
		Subject: "10.88.60.9", DedupeKey: "claim-10.88.60.9", Payload: map[string]string{"address": "10.88.60.9", "ownerSide": "onprem"},
		ObservedAt: t0.Add(123456789 * time.Nanosecond), ExpiresAt: t0.Add(30 * time.Minute)}
	want, _ := in.Marshal()
	if _, err := s.InsertEvent(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEvent(ctx, "01JABC")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := got.Event.Marshal()
	if string(b) != string(want) {
		t.Errorf("stored event encodes differently:\n%s\n%s", b, want)
	}
	if !got.ReceivedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("receivedAt = %v", got.ReceivedAt)
	}
	if _, err := s.GetEvent(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing event: %v", err)
	}
}

func TestListEvents(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	mk := func(id, group, typ, src, subject string, obs time.Time) event.Event {
		return event.Event{ID: id, Group: group, Type: typ, SourceNode: src, Subject: subject, ObservedAt: obs}
	}
	batch := []event.Event{
		mk("e1", "g1", "a.observed", "n1", "10.0.0.1", t0),
		mk("e2", "g1", "b.moved", "n2", "10.0.1.1", t0.Add(time.Minute)),
		mk("e3", "g2", "a.observed", "n1", "10.0.0.2", t0.Add(2*time.Minute)),
		mk("e4", "g1", "a.observed", "n1", "192.168.0.1", t0.Add(3*time.Minute)),
		mk("e5", "g1", "c.other", "n3", "10.0.0.3", time.Time{}), // no observedAt: receivedAt counts
	}
	clk.Set(t0.Add(10 * time.Minute))
	res, err := s.InsertEvents(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    EventFilter
		want string
	}{
		{name: "all", f: EventFilter{}, want: "e1 e2 e3 e4 e5"},
		{name: "group", f: EventFilter{Group: "g1"}, want: "e1 e2 e4 e5"},
		{name: "types", f: EventFilter{Types: []string{"b.moved", "c.other"}}, want: "e2 e5"},
		{name: "source", f: EventFilter{SourceNode: "n1"}, want: "e1 e3 e4"},
		{name: "subject prefix", f: EventFilter{SubjectPrefix: "10.0.0."}, want: "e1 e3 e5"},
		{name: "since until", f: EventFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, want: "e2 e3"},
		{name: "since counts receivedAt without observedAt", f: EventFilter{Since: t0.Add(5 * time.Minute)}, want: "e5"},
		{name: "after seq with limit", f: EventFilter{AfterSeq: res[1].Seq, Limit: 2}, want: "e3 e4"},
		{name: "descending", f: EventFilter{Group: "g1", Descending: true, Limit: 2}, want: "e5 e4"},
		{name: "combined", f: EventFilter{Group: "g1", Types: []string{"a.observed"}, SubjectPrefix: "10."}, want: "e1"},
		{name: "nothing", f: EventFilter{Group: "none"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListEvents(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("nil result")
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.Event.ID)
			}
			if strings.Join(ids, " ") != tc.want {
				t.Errorf("got %v, want %s", ids, tc.want)
			}
			n, err := s.CountEvents(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if tc.f.Limit == 0 && n != int64(len(got)) {
				t.Errorf("CountEvents = %d, ListEvents %d", n, len(got))
			}
		})
	}
}

func TestCursorsKVAudit(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()

	if seq, err := s.GetCursor(ctx, "sub-a"); err != nil || seq != 0 {
		t.Fatalf("fresh cursor = %d, %v", seq, err)
	}
	for _, seq := range []int64{5, 42} {
		if err := s.SetCursor(ctx, "sub-a", seq); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetCursor(ctx, "sub-a"); err != nil || got != seq {
			t.Fatalf("cursor = %d, %v; want %d", got, err, seq)
		}
	}

	if _, err := s.KVGet(ctx, "p1", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	kvTests := []struct {
		name           string
		plugin, key    string
		value          []byte
		wantP1, wantP2 string // "-" = not found
	}{
		{name: "set", plugin: "p1", key: "k", value: []byte("v1"), wantP1: "v1", wantP2: "-"},
		{name: "overwrite", plugin: "p1", key: "k", value: []byte("v2"), wantP1: "v2", wantP2: "-"},
		{name: "other plugin is separate", plugin: "p2", key: "k", value: []byte{}, wantP1: "v2", wantP2: ""},
		{name: "nil deletes", plugin: "p1", key: "k", value: nil, wantP1: "-", wantP2: ""},
	}
	for _, tc := range kvTests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.KVSet(ctx, tc.plugin, tc.key, tc.value); err != nil {
				t.Fatal(err)
			}
			for plugin, want := range map[string]string{"p1": tc.wantP1, "p2": tc.wantP2} {
				v, err := s.KVGet(ctx, plugin, "k")
				got := string(v)
				if errors.Is(err, ErrNotFound) {
					got = "-"
				} else if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s: got %q, want %q", plugin, got, want)
				}
			}
		})
	}

	clk.Set(t0.Add(time.Hour))
	entries := []AuditEntry{
		{Actor: "plugin/x", Action: "hostcall.kv_set", Target: "k", Outcome: "denied", Detail: "grant kv missing"},
		{Actor: "routerctl", Action: "event.emit", Target: "e1", Outcome: "ok", Time: t0},
	}
	for _, a := range entries {
		if err := s.AppendAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAudit(ctx, AuditEntry{Action: "x"}); err == nil {
		t.Error("audit without actor accepted")
	}
	got, err := s.ListAudit(ctx, AuditFilter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("audit = %+v, %v", got, err)
	}
	if !got[0].Time.Equal(t0.Add(time.Hour)) || got[0].Outcome != "denied" || got[1].Actor != "routerctl" || got[1].Seq <= got[0].Seq {
		t.Errorf("audit entries %+v", got)
	}
	if got, _ := s.ListAudit(ctx, AuditFilter{Actor: "routerctl"}); len(got) != 1 {
		t.Errorf("filtered audit %+v", got)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s, _ := openTest(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, err := s.InsertEvent(ctx, ev("a", "g", "t", "x", 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("insert after close: %v", err)
	}
	if _, err := s.ListEvents(ctx, EventFilter{}); !errors.Is(err, ErrClosed) {
		t.Errorf("list after close: %v", err)
	}
}

// TestTwoHandlesOneFile stands in for routerd and routerd-eventd sharing the file: two
// Stores write and read concurrently; nothing is lost and nobody gets SQLITE_BUSY.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routerd.db")
	ctx := context.Background()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(path, Options{BusyTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const batches, perBatch = 40, 25
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w, s := range stores {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for b := range batches {
				batch := make([]event.Event, perBatch)
				for i := range batch {
					batch[i] = ev(fmt.Sprintf("w%d-b%d-e%d", w, b, i), "g", "t", "x", 0)
				}
				if _, err := s.InsertEvents(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range batches {
				if _, err := s.ListEvents(ctx, EventFilter{Limit: 50, Descending: true}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := stores[0].CountEvents(ctx, EventFilter{})
	if err != nil || n != 2*batches*perBatch {
		t.Fatalf("count = %d, %v; want %d", n, err, 2*batches*perBatch)
	}
}

// openRaw opens path with the store's write settings but without migrating.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn(path, time.Second, false, false))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func TestEncodePayload(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want string
	}{
		{name: "empty", in: nil, want: `{}`},
		{name: "plain ascii sorted", in: map[string]string{"b": "2", "a": "1"}, want: `{"a":"1","b":"2"}`},
		{name: "quotes and backslashes", in: map[string]string{"k": `say "hi" \ bye`}, want: `{"k":"say \"hi\" \\ bye"}`},
		{name: "control and unicode", in: map[string]string{"ü": "line\nbreak\ttab é <b>"}, want: `{"ü":"line\nbreak\ttab é \u003cb\u003e"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := encodePayload(tc.in)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			var back map[string]string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if len(back) != len(tc.in) {
				t.Fatalf("round trip %v", back)
			}
			for k, v := range tc.in {
				if back[k] != v {
					t.Errorf("%s: %q, want %q", k, back[k], v)
				}
			}
		})
	}
}

func TestSynchronousSetting(t *testing.T) {
	tests := []struct {
		name    string
		durable bool
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{name: "default survives process death", durable: false, want: 1},
		{name: "durable survives power loss", durable: true, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "routerd.db"), Options{Durable: tc.durable})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for name, db := range map[string]*sql.DB{"write": s.DB(), "read": s.ReadDB()} {
				var got int
				if err := db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil || got != tc.want {
					t.Errorf("%s connection: synchronous = %d, %v; want %d", name, got, err, tc.want)
				}
			}
			if _, err := s.ReadDB().Exec(`DELETE FROM events`); err == nil {
				t.Error("the read pool accepted a write")
			}
		})
	}
}

func TestInsertEventsLeavesCallerEventsAlone(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		payload map[string]string
	}{
		{name: "payload needing trim", payload: map[string]string{" k ": " v "}},
		{name: "unicode edges", payload: map[string]string{"k": "\u00a0v\u00a0"}},
		{name: "clean payload", payload: map[string]string{"k": "v"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := event.Event{ID: fmt.Sprintf(" id-%d ", i), Group: "g", Type: "t", Payload: tc.payload}
			before := fmt.Sprint(in.Payload)
			if _, err := s.InsertEvent(ctx, in); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(in.Payload) != before || in.ID != fmt.Sprintf(" id-%d ", i) || in.DedupeKey != "" {
				t.Errorf("caller's event changed: %+v", in)
			}
			got, err := s.GetEvent(ctx, fmt.Sprintf("id-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range got.Event.Payload {
				if k != strings.TrimSpace(k) || v != strings.TrimSpace(v) {
					t.Errorf("stored payload not trimmed: %q=%q", k, v)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "not a database", path: garbage, wantErr: "garbage.db"},
		{name: "directory cannot be created", path: filepath.Join(blocker, "sub", "routerd.db"), wantErr: "create directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}
