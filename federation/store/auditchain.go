package store

// Tamper-evident audit log.
//
// With Options.AuditKey set, every audit_log row carries prev_mac (the MAC of the record
// before it) and mac = HMAC-SHA256(key, prev_mac || canonical bytes of the record). The
// single audit_chain row holds the anchor (the seq and MAC the chain starts after: the
// genesis, or the last record retention pruned) and the head (the seq and MAC of the
// last record), with a tag (an HMAC over both) so that neither can be moved without the
// key. Appends and prunes update audit_chain in the same transaction as audit_log.
//
// VerifyAudit walks the chain and names, by seq, every record that was edited (its MAC
// does not match its content), deleted (its predecessor's MAC is nowhere), reordered
// (it links to another record than the one before it) or cut off the end (the head
// names a later record). The seq is not part of the MAC, so a record moved to another
// seq is reported as reordered rather than edited.
//
// Without the key the store writes unchained rows as before; VerifyAudit reports such a
// row after the anchor as unchained.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Audit chain constants.
const (
	// AuditKeyFile is the key's file name in the daemon's state directory.
	AuditKeyFile = "audit.key"
	// auditKeyBytes is the key length written by LoadAuditKey.
	auditKeyBytes = 32
)

// ErrAuditTampered is returned by an append or prune that finds the chain's anchor or
// head changed by someone without the key: routerd stops writing audited decisions
// rather than re-sealing a forged chain.
var ErrAuditTampered = errors.New("audit chain state was modified outside routerd; run routerctl audit verify")

// LoadAuditKey reads the audit key from path, creating it (32 random bytes, hex, mode
// 0600) when it does not exist. The new key is written to a temporary file, synced and
// linked into place, so a crash never leaves a partial key and two processes starting
// at once end up with the same key.
//
// # Errors
//
// A key file readable by group or others (with the chmod fix), a short or non-hex key,
// or the failing file operation, all naming the path.
func LoadAuditKey(path string) ([]byte, error) {
	raw := make([]byte, auditKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("store: audit key %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: audit key %s: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path, raw); err == nil {
			return raw, nil
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("store: create audit key %s: %w", path, err)
		}
		// Another process created it first: read theirs.
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: audit key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("store: audit key %s has mode %04o; it must be readable by its owner only: run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: read audit key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < auditKeyBytes {
		return nil, fmt.Errorf("store: audit key %s is not %d hex-encoded bytes; restore it from backup (a new key cannot verify the old chain)", path, auditKeyBytes)
	}
	return key, nil
}

// createKeyFile writes key (hex) to a synced 0600 temporary file in path's directory and
// links it to path; fs.ErrExist when path appeared meanwhile.
func createKeyFile(path string, key []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// auditCanonical is the byte form of an entry the MAC covers: a version tag, then the
// time and each text field length-prefixed, so no two entries share a form.
func auditCanonical(a AuditEntry, unixNano int64) []byte {
	b := []byte("routerd-audit-v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano))
	for _, s := range []string{a.Actor, a.Action, a.Target, a.Outcome, a.Detail} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// auditMAC is HMAC-SHA256(key, prev || canonical).
func auditMAC(key, prev, canonical []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(prev)
	m.Write(canonical)
	return m.Sum(nil)
}

// auditGenesis is the MAC the first record of a fresh chain links to.
func auditGenesis(key []byte) []byte { return auditMAC(key, nil, []byte("routerd-audit-genesis-v1")) }

// chainState is the audit_chain row.
type chainState struct {
	anchorSeq int64
	anchorMAC []byte
	headSeq   int64
	headMAC   []byte
	tag       []byte
}

// sealTag is the tag over anchor and head.
func (c chainState) sealTag(key []byte) []byte {
	b := []byte("routerd-audit-chain-v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(c.anchorSeq))
	b = append(b, c.anchorMAC...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.headSeq))
	b = append(b, c.headMAC...)
	return auditMAC(key, nil, b)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readChain reads the audit_chain row; ok is false when there is none.
func readChain(ctx context.Context, q queryer) (c chainState, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT anchor_seq, anchor_mac, head_seq, head_mac, tag FROM audit_chain WHERE id = 1`).
		Scan(&c.anchorSeq, &c.anchorMAC, &c.headSeq, &c.headMAC, &c.tag)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// writeChain seals and stores c.
func writeChain(ctx context.Context, tx *sql.Tx, key []byte, c chainState) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_chain (id, anchor_seq, anchor_mac, head_seq, head_mac, tag) VALUES (1, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET anchor_seq = excluded.anchor_seq, anchor_mac = excluded.anchor_mac,
		head_seq = excluded.head_seq, head_mac = excluded.head_mac, tag = excluded.tag`,
		c.anchorSeq, c.anchorMAC, c.headSeq, c.headMAC, c.sealTag(key))
	return err
}

// AppendAuditTx appends a to the audit log inside tx (another room's transaction on
// DB()), chaining it when the store has an audit key. Seq and a zero Time are filled in
// by the store. Use it instead of inserting into audit_log directly, or VerifyAudit
// reports the row as unchained.
//
// # Errors
//
// ErrAuditTampered when the chain's anchor or head was changed without the key; the
// failing statement otherwise.
func (s *Store) AppendAuditTx(ctx context.Context, tx *sql.Tx, a AuditEntry) error {
	if a.Time.IsZero() {
		a.Time = s.now()
	}
	t := a.Time.UnixNano()
	if s.auditKey == nil {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (time, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)`,
			t, a.Actor, a.Action, a.Target, a.Outcome, a.Detail)
		return err
	}
	c, ok, err := readChain(ctx, tx)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	if !ok {
		// A fresh chain starts after whatever unchained rows exist; if chained rows exist,
		// the chain state was deleted and starting afresh would hide that.
		var chained bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE mac IS NOT NULL)`).Scan(&chained); err != nil {
			return fmt.Errorf("start audit chain: %w", err)
		}
		if chained {
			return ErrAuditTampered
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_log`).Scan(&c.anchorSeq); err != nil {
			return fmt.Errorf("start audit chain: %w", err)
		}
		c.anchorMAC = auditGenesis(s.auditKey)
		c.headSeq, c.headMAC = c.anchorSeq, c.anchorMAC
	} else if !hmac.Equal(c.tag, c.sealTag(s.auditKey)) {
		return ErrAuditTampered
	}
	mac := auditMAC(s.auditKey, c.headMAC, auditCanonical(a, t))
	res, err := tx.ExecContext(ctx, `INSERT INTO audit_log (time, actor, action, target, outcome, detail, prev_mac, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t, a.Actor, a.Action, a.Target, a.Outcome, a.Detail, c.headMAC, mac)
	if err != nil {
		return err
	}
	if c.headSeq, err = res.LastInsertId(); err != nil {
		return err
	}
	c.headMAC = mac
	return writeChain(ctx, tx, s.auditKey, c)
}

// auditPruneWhere selects the oldest audit records older than a cut (one argument, Unix
// nanoseconds) as a prefix by seq: a record is pruned only if every record before it is,
// so the chain stays whole from its new anchor.
const auditPruneWhere = `seq < COALESCE((SELECT MIN(seq) FROM audit_log WHERE time >= ?), 9223372036854775807)`

// pruneAuditTx deletes up to limit audit records of the prefix auditPruneWhere selects
// for cut and moves the chain's anchor to the last one deleted, in tx.
func (s *Store) pruneAuditTx(ctx context.Context, tx *sql.Tx, cut int64, limit int) (int64, error) {
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM (SELECT seq FROM audit_log WHERE `+auditPruneWhere+` ORDER BY seq LIMIT ?)`,
		cut, limit).Scan(&last); err != nil {
		return 0, err
	}
	if !last.Valid {
		return 0, nil
	}
	var mac []byte
	if err := tx.QueryRowContext(ctx, `SELECT mac FROM audit_log WHERE seq = ?`, last.Int64).Scan(&mac); err != nil {
		return 0, err
	}
	c, chained, err := readChain(ctx, tx)
	if err != nil {
		return 0, err
	}
	if chained {
		if s.auditKey == nil {
			return 0, errors.New("the audit log is chained but the store was opened without its key (Options.AuditKey); pruning it would break the chain")
		}
		if !hmac.Equal(c.tag, c.sealTag(s.auditKey)) {
			return 0, ErrAuditTampered
		}
	}
	out, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE seq <= ?`, last.Int64)
	if err != nil {
		return 0, err
	}
	n, err := out.RowsAffected()
	if err != nil {
		return 0, err
	}
	if chained && last.Int64 > c.anchorSeq && mac != nil {
		c.anchorSeq, c.anchorMAC = last.Int64, mac
		if err := writeChain(ctx, tx, s.auditKey, c); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Kinds of AuditProblem.
const (
	AuditEdited    = "edited"
	AuditDeleted   = "deleted"
	AuditReordered = "reordered"
	AuditTruncated = "truncated"
	AuditUnchained = "unchained"
	AuditState     = "chain-state"
)

// AuditProblem is one break in the chain.
type AuditProblem struct {
	// Seq is the record where the break shows.
	Seq int64 `json:"seq"`
	// Kind is edited, deleted, reordered, truncated, unchained or chain-state.
	Kind string `json:"kind"`
	// Detail says what was found.
	Detail string `json:"detail"`
}

// AuditVerification is the result of VerifyAudit.
type AuditVerification struct {
	// Checked is the number of chained records verified.
	Checked int `json:"checked"`
	// AnchorSeq is the seq the chain starts after (the genesis or the last pruned record).
	AnchorSeq int64 `json:"anchorSeq"`
	// HeadSeq is the seq of the last record as the chain state records it.
	HeadSeq int64 `json:"headSeq"`
	// Unverifiable counts rows before the anchor without a MAC (written before the chain
	// started); they are not covered.
	Unverifiable int `json:"unverifiable"`
	// Problems lists every break found, by seq (empty: the chain is intact).
	Problems []AuditProblem `json:"problems,omitempty"`
}

// OK reports an intact chain.
func (v AuditVerification) OK() bool { return len(v.Problems) == 0 }

// Error describes the first problem ("" when OK).
func (v AuditVerification) Error() string {
	if v.OK() {
		return ""
	}
	p := v.Problems[0]
	s := fmt.Sprintf("audit log: record %d %s: %s", p.Seq, p.Kind, p.Detail)
	if n := len(v.Problems) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more problems)", n)
	}
	return s
}

// VerifyAudit checks the whole audit chain in one read transaction.
//
// # Errors
//
// A store opened without an audit key, or a failing query; a broken chain is reported
// in the result, not as an error.
func (s *Store) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	var v AuditVerification
	if s.isClosed() {
		return v, ErrClosed
	}
	if s.auditKey == nil {
		return v, errors.New("store: verify audit: the store was opened without the audit key (Options.AuditKey, file " + AuditKeyFile + " in the state dir)")
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return v, fmt.Errorf("store: verify audit: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	c, ok, err := readChain(ctx, tx)
	if err != nil {
		return v, fmt.Errorf("store: verify audit: read chain state: %w", err)
	}
	problem := func(seq int64, kind, format string, args ...any) {
		v.Problems = append(v.Problems, AuditProblem{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	if !ok {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE mac IS NOT NULL`).Scan(&n); err != nil {
			return v, fmt.Errorf("store: verify audit: %w", err)
		}
		if n > 0 {
			problem(0, AuditState, "the chain state row (table audit_chain) is missing but %d records are chained", n)
		}
		return v, nil
	}
	v.AnchorSeq, v.HeadSeq = c.anchorSeq, c.headSeq
	if !hmac.Equal(c.tag, c.sealTag(s.auditKey)) {
		problem(0, AuditState, "the chain's anchor (seq %d) or head (seq %d) was changed without the key", c.anchorSeq, c.headSeq)
	}

	type link struct {
		seq       int64
		prev, mac []byte
		selfOK    bool
	}
	var links []link
	bySeq := map[string]int64{string(c.anchorMAC): c.anchorSeq}
	rows, err := tx.QueryContext(ctx, `SELECT seq, time, actor, action, target, outcome, detail, prev_mac, mac FROM audit_log ORDER BY seq`)
	if err != nil {
		return v, fmt.Errorf("store: verify audit: %w", err)
	}
	for rows.Next() {
		var (
			a         AuditEntry
			t         int64
			prev, mac []byte
		)
		if err := rows.Scan(&a.Seq, &t, &a.Actor, &a.Action, &a.Target, &a.Outcome, &a.Detail, &prev, &mac); err != nil {
			rows.Close()
			return v, fmt.Errorf("store: verify audit: %w", err)
		}
		switch {
		case a.Seq <= c.anchorSeq && mac == nil:
			v.Unverifiable++
		case a.Seq <= c.anchorSeq:
			problem(a.Seq, AuditReordered, "a chained record sits at or before the anchor (seq %d), where only pruned or pre-chain records belong", c.anchorSeq)
		case mac == nil:
			problem(a.Seq, AuditUnchained, "the record has no MAC: it was written without the audit key, or its MAC was removed")
		default:
			l := link{seq: a.Seq, prev: prev, mac: mac, selfOK: hmac.Equal(mac, auditMAC(s.auditKey, prev, auditCanonical(a, t)))}
			links = append(links, l)
			bySeq[string(mac)] = a.Seq
		}
	}
	if err := rows.Close(); err != nil {
		return v, fmt.Errorf("store: verify audit: %w", err)
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("store: verify audit: %w", err)
	}

	expect, prevSeq := c.anchorMAC, c.anchorSeq
	for _, l := range links {
		v.Checked++
		switch {
		case !l.selfOK:
			problem(l.seq, AuditEdited, "its content or MAC does not match the MAC the key gives")
		case hmac.Equal(l.prev, expect):
		default:
			if other, ok := bySeq[string(l.prev)]; ok {
				problem(l.seq, AuditReordered, "it follows record %d in the chain, not record %d", other, prevSeq)
			} else {
				problem(l.seq, AuditDeleted, "the record before it in the chain is gone (deleted between seq %d and %d)", prevSeq, l.seq)
			}
		}
		expect, prevSeq = l.mac, l.seq
	}
	switch {
	case len(links) == 0 && c.headSeq > c.anchorSeq:
		problem(c.headSeq, AuditTruncated, "the chain head is record %d but no record after the anchor (seq %d) is left", c.headSeq, c.anchorSeq)
	case len(links) > 0 && (prevSeq < c.headSeq || prevSeq == c.headSeq && !hmac.Equal(expect, c.headMAC)):
		problem(c.headSeq, AuditTruncated, "the chain head is record %d but the last record is %d: records after it were deleted", c.headSeq, prevSeq)
	case len(links) > 0 && prevSeq > c.headSeq:
		problem(prevSeq, AuditReordered, "records after the chain head (seq %d) were added outside routerd", c.headSeq)
	}
	return v, nil
}
