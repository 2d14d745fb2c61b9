// Package store is the node's local SQLite store: federation events, per-peer deliveries,
// subscription cursors and runs, plugin key/value state, the audit log, action plans and
// dynamic config parts.
//
// One file per node (settings.StorePath()) is shared by routerd and routerd-eventd. The
// file runs in WAL mode with a busy timeout, foreign keys on and synchronous=NORMAL: a
// transaction that returned is durable against the death of the process (SIGKILL, panic,
// OOM kill), because its pages are in the WAL file in the OS page cache; only a power loss
// or kernel crash can lose the last transactions (never corrupt the file). Options.Durable
// selects synchronous=FULL, which fsyncs the WAL on every commit, for that case.
//
// Concurrency: each Store holds one write connection (every write transaction is BEGIN
// IMMEDIATE, so a writer never has to upgrade a read lock and deadlock) and a small pool of
// read-only connections. Writers in other processes on the same file wait for each other
// through SQLite's busy timeout; readers never block writers and are never blocked by them.
// A background goroutine checkpoints the WAL on its own connection, so that writers do not
// pay for the checkpoint's fsync.
//
// The schema is versioned (schema_version table, migrations.go): opening an older file
// migrates it, opening a file written by a newer routerd fails with ErrSchemaTooNew.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Errors shared by the store's operations.
var (
	// ErrNotFound is returned when the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by operations on a closed Store.
	ErrClosed = errors.New("store: closed")
)

// driverName is go-sqlite3 registered with the store's per-connection settings.
const driverName = "routerd_sqlite3"

// walAutoCheckpointPages is the WAL size (in pages) at which a committing writer runs a
// checkpoint itself. The store's background checkpointer normally keeps the WAL far
// below it, so that writers do not pay for the checkpoint's fsync; this is the safety net
// for when it cannot keep up.
const walAutoCheckpointPages = 16384

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutoCheckpointPages), nil)
			return err
		},
	})
}

// Defaults for Options.
const (
	// DefaultCheckpointInterval is how often the background checkpointer runs.
	DefaultCheckpointInterval = 250 * time.Millisecond
	DefaultBusyTimeout        = 10 * time.Second
	DefaultReadConns          = 4
	DefaultPruneBatchSize     = 5000
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Logger receives migration and prune notices (default: discard).
	Logger *slog.Logger
	// BusyTimeout is how long an operation waits for a lock held by another connection or
	// process before failing with SQLITE_BUSY (default DefaultBusyTimeout).
	BusyTimeout time.Duration
	// Durable selects synchronous=FULL (fsync on every commit, survives power loss)
	// instead of NORMAL (survives process death only). See the package comment.
	Durable bool
	// ReadConns is the size of the read-only connection pool (default DefaultReadConns).
	ReadConns int
	// CheckpointInterval is how often a background goroutine copies the WAL into the
	// database file (PRAGMA wal_checkpoint(PASSIVE)) on its own connection, keeping that
	// work and its fsync off the writers' path (default DefaultCheckpointInterval;
	// negative: none, and writers checkpoint when the WAL reaches 16384 pages).
	CheckpointInterval time.Duration
	// MeterProvider provides the store's metrics (default: no-op).
	MeterProvider metric.MeterProvider
	// Now is the clock for received_at, cursor and audit times (default time.Now).
	Now func() time.Time
	// AuditKey chains the audit log with HMAC-SHA256 so that VerifyAudit finds edited,
	// deleted and reordered records (LoadAuditKey reads or creates it). Nil: audit
	// records are written unchained.
	AuditKey []byte
}

// Store is an open store file. Its methods are safe for concurrent use.
type Store struct {
	path    string
	w       *sql.DB // one connection; every transaction BEGIN IMMEDIATE
	r       *sql.DB // read-only pool
	ck      *sql.DB // checkpointer connection (nil when disabled)
	log     *slog.Logger
	now     func() time.Time
	metrics storeMetrics
	// auditKey chains audit_log (nil: unchained); see auditchain.go.
	auditKey []byte

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
	wg        sync.WaitGroup
}

// dsn builds the go-sqlite3 connection string for path.
func dsn(path string, busy time.Duration, durable, readOnly bool) string {
	sync := "NORMAL"
	if durable {
		sync = "FULL"
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", sync)
	if readOnly {
		q.Set("_query_only", "on")
	} else {
		q.Set("_txlock", "immediate")
		q.Set("_journal_mode", "WAL")
	}
	q.Set("_stmt_cache_size", "32")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating when needed) the store file at path, switches it to WAL, and
// migrates its schema to SchemaVersion.
//
// # Errors
//
// ErrSchemaTooNew when the file was written by a newer routerd; otherwise the failing
// step (create directory, open, set WAL, migrate) wrapped with the path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = DefaultReadConns
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = noop.NewMeterProvider()
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
		}
	}
	w, err := sql.Open(driverName, dsn(path, opts.BusyTimeout, opts.Durable, false))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("store: open %s: journal_mode is %q, want wal (is the file on a filesystem without shared memory?)", path, mode)
	}
	s := &Store{path: path, w: w, log: opts.Logger, now: opts.Now, closed: make(chan struct{}), auditKey: opts.AuditKey}
	logMigration := func(v int, d string) {
		s.log.Info("store: migrated schema", "path", path, "version", v, "description", d)
	}
	if err := migrate(ctx, w, path, migrations, opts.Now, logMigration); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open(driverName, dsn(path, opts.BusyTimeout, opts.Durable, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	s.r = r
	if s.metrics, err = newStoreMetrics(opts.MeterProvider); err != nil {
		s.Close()
		return nil, err
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.CheckpointInterval > 0 {
		ck, err := sql.Open(driverName, dsn(path, opts.BusyTimeout, opts.Durable, false))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("store: open %s for checkpoints: %w", path, err)
		}
		ck.SetMaxOpenConns(1)
		s.ck = ck
		s.wg.Add(1)
		go s.checkpointLoop(opts.CheckpointInterval)
	}
	return s, nil
}

// checkpointLoop runs PASSIVE checkpoints until Close. A PASSIVE checkpoint never waits
// for writers or readers; it copies what it can and leaves the rest for the next round.
func (s *Store) checkpointLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		var busy, logFrames, done int
		if err := s.ck.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil && !IsBusy(err) {
			s.log.Warn("store: checkpoint failed", "path", s.path, "err", err)
		}
	}
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// DB returns the write handle (a single connection whose transactions are BEGIN
// IMMEDIATE) for rooms that add their own queries in their own files. Keep transactions
// short, always close Rows, and do not call other Store methods while holding a
// transaction or open Rows from DB: they would wait for the same connection.
func (s *Store) DB() *sql.DB { return s.w }

// ReadDB returns the read-only connection pool, for queries that need not see the result
// of a transaction still open on DB.
func (s *Store) ReadDB() *sql.DB { return s.r }

// Close closes the store; calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.wg.Wait()
		var errs []error
		if s.ck != nil {
			errs = append(errs, s.ck.Close())
		}
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			// A final checkpoint keeps the WAL file small between runs; it is an
			// optimization, so a busy file (another process reading) is not an error.
			_, _ = s.w.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			errs = append(errs, s.w.Close())
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("store: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// isClosed reports whether Close was called.
func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// IntegrityCheck runs PRAGMA integrity_check and returns nil when it reports ok.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("store: integrity check %s: %w", s.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("store: integrity check %s: %w", s.path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check %s: %w", s.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check %s: %v", s.path, problems)
	}
	return nil
}

// IsBusy reports whether err is SQLite's "database is locked/busy" after the busy timeout.
func IsBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// timeToDB converts t to the stored form (Unix nanoseconds; NULL for the zero time).
func timeToDB(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// timeFromDB converts a stored time back (UTC; zero for NULL).
func timeFromDB(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// TimeToDB converts t to the form the store keeps times in (Unix nanoseconds, NULL for the
// zero time), for rooms writing their own queries.
func TimeToDB(t time.Time) sql.NullInt64 { return timeToDB(t) }

// TimeFromDB converts a stored time back (UTC; the zero time for NULL).
func TimeFromDB(n sql.NullInt64) time.Time { return timeFromDB(n) }
