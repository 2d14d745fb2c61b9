package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openAudit opens a store with an audit key under its state dir and a settable clock.
func openAudit(t *testing.T, dir string) (*Store, *fakeClock) {
	t.Helper()
	key, err := LoadAuditKey(filepath.Join(dir, AuditKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: t0}
	s, err := Open(filepath.Join(dir, "routerd.db"), Options{Now: clk.Now, AuditKey: key, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

// appendN appends n audit records a minute apart, starting at the clock's time.
func appendN(t *testing.T, s *Store, clk *fakeClock, n int) {
	t.Helper()
	for i := range n {
		if err := s.AppendAudit(context.Background(), AuditEntry{Actor: "routerctl", Action: "actionplan.approved",
			Target: fmt.Sprintf("plan-%d", i+1), Outcome: "ok", Detail: "approved by alice"}); err != nil {
			t.Fatal(err)
		}
		clk.Set(clk.Now().Add(time.Minute))
	}
}

func sqlExec(t *testing.T, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.DB().Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestAuditChainVerify(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, s *Store)
		// want is the first problem; zero for an intact chain.
		want      AuditProblem
		wantCount int // number of problems (0: any when want is set)
	}{
		{name: "intact", tamper: func(t *testing.T, s *Store) {}},
		{name: "detail edited", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `UPDATE audit_log SET detail = 'approved by mallory' WHERE seq = 3`)
		}, want: AuditProblem{Seq: 3, Kind: AuditEdited}, wantCount: 1},
		{name: "time edited", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `UPDATE audit_log SET time = time + 1 WHERE seq = 5`)
		}, want: AuditProblem{Seq: 5, Kind: AuditEdited}, wantCount: 1},
		{name: "middle record deleted", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_log WHERE seq = 3`)
		}, want: AuditProblem{Seq: 4, Kind: AuditDeleted, Detail: "deleted between seq 2 and 4"}, wantCount: 1},
		{name: "first record deleted", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_log WHERE seq = 1`)
		}, want: AuditProblem{Seq: 2, Kind: AuditDeleted, Detail: "deleted between seq 0 and 2"}, wantCount: 1},
		{name: "two records swapped", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `UPDATE audit_log SET seq = -1 WHERE seq = 3`)
			sqlExec(t, s, `UPDATE audit_log SET seq = 3 WHERE seq = 4`)
			sqlExec(t, s, `UPDATE audit_log SET seq = 4 WHERE seq = -1`)
		}, want: AuditProblem{Seq: 3, Kind: AuditReordered, Detail: "follows record 4 in the chain, not record 2"}, wantCount: 3},
		{name: "last record deleted", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_log WHERE seq = 6`)
		}, want: AuditProblem{Seq: 6, Kind: AuditTruncated, Detail: "the last record is 5"}, wantCount: 1},
		{name: "all records deleted", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_log`)
		}, want: AuditProblem{Seq: 6, Kind: AuditTruncated}, wantCount: 1},
		{name: "last record deleted and head moved back", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_log WHERE seq = 6`)
			sqlExec(t, s, `UPDATE audit_chain SET head_seq = 5, head_mac = (SELECT mac FROM audit_log WHERE seq = 5)`)
		}, want: AuditProblem{Seq: 0, Kind: AuditState}, wantCount: 1},
		{name: "start cut and anchor moved", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_log WHERE seq <= 2`)
			sqlExec(t, s, `UPDATE audit_chain SET anchor_seq = 2, anchor_mac = (SELECT prev_mac FROM audit_log WHERE seq = 3)`)
		}, want: AuditProblem{Seq: 0, Kind: AuditState}, wantCount: 1},
		{name: "chain state deleted", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `DELETE FROM audit_chain`)
		}, want: AuditProblem{Seq: 0, Kind: AuditState, Detail: "6 records are chained"}, wantCount: 1},
		{name: "row inserted without mac", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `INSERT INTO audit_log (time, actor, action) VALUES (0, 'x', 'forged')`)
		}, want: AuditProblem{Seq: 7, Kind: AuditUnchained}, wantCount: 1},
		{name: "record replayed at the end", tamper: func(t *testing.T, s *Store) {
			sqlExec(t, s, `INSERT INTO audit_log (time, actor, action, target, outcome, detail, prev_mac, mac)
				SELECT time, actor, action, target, outcome, detail, prev_mac, mac FROM audit_log WHERE seq = 2`)
		}, want: AuditProblem{Seq: 7, Kind: AuditReordered, Detail: "follows record 1"}, wantCount: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := openAudit(t, t.TempDir())
			appendN(t, s, clk, 6)
			tt.tamper(t, s)
			v, err := s.VerifyAudit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Kind == "" {
				if !v.OK() || v.Checked != 6 || v.HeadSeq != 6 {
					t.Fatalf("intact chain: %+v", v)
				}
				return
			}
			if v.OK() {
				t.Fatalf("tampering not detected: %+v", v)
			}
			got := v.Problems[0]
			if got.Seq != tt.want.Seq || got.Kind != tt.want.Kind || !strings.Contains(got.Detail, tt.want.Detail) {
				t.Errorf("first problem %+v, want %+v", got, tt.want)
			}
			if tt.wantCount > 0 && len(v.Problems) != tt.wantCount {
				t.Errorf("%d problems, want %d: %+v", len(v.Problems), tt.wantCount, v.Problems)
			}
			if !strings.Contains(v.Error(), fmt.Sprintf("record %d %s", got.Seq, got.Kind)) {
				t.Errorf("Error() = %q", v.Error())
			}
		})
	}
}

func TestAuditChainPrune(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// times are the records' offsets from t0 in minutes, in seq order.
		times      []int
		cutMinutes int // HistoryMaxAge cut = t0 + cutMinutes
		batch      int
		wantPruned int64
		wantAnchor int64
	}{
		{name: "old prefix pruned", times: []int{0, 1, 2, 3, 4, 5}, cutMinutes: 3, wantPruned: 3, wantAnchor: 3},
		{name: "small batches move the anchor each time", times: []int{0, 1, 2, 3, 4, 5, 6, 7}, cutMinutes: 7, batch: 2, wantPruned: 7, wantAnchor: 7},
		{name: "a newer record stops the prefix", times: []int{0, 10, 1, 2}, cutMinutes: 5, wantPruned: 1, wantAnchor: 1},
		{name: "everything pruned", times: []int{0, 1, 2}, cutMinutes: 59, wantPruned: 3, wantAnchor: 3},
		{name: "nothing old", times: []int{30, 31}, cutMinutes: 5, wantPruned: 0, wantAnchor: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clk := openAudit(t, t.TempDir())
			for i, m := range tt.times {
				clk.Set(t0.Add(time.Duration(m) * time.Minute))
				if err := s.AppendAudit(ctx, AuditEntry{Actor: "a", Action: "x", Target: fmt.Sprint(i + 1)}); err != nil {
					t.Fatal(err)
				}
			}
			now := t0.Add(time.Hour)
			res, err := s.Prune(ctx, PruneOptions{Now: now, HistoryMaxAge: now.Sub(t0.Add(time.Duration(tt.cutMinutes) * time.Minute)), BatchSize: tt.batch, Pause: -1})
			if err != nil {
				t.Fatal(err)
			}
			if res.History != tt.wantPruned {
				t.Errorf("pruned %d, want %d", res.History, tt.wantPruned)
			}
			v, err := s.VerifyAudit(ctx)
			if err != nil || !v.OK() || v.AnchorSeq != tt.wantAnchor {
				t.Fatalf("after prune: %+v, %v (want anchor %d)", v, err, tt.wantAnchor)
			}
			// The chain goes on from the new anchor.
			clk.Set(now)
			appendN(t, s, clk, 2)
			if v, err := s.VerifyAudit(ctx); err != nil || !v.OK() || v.Checked != len(tt.times)-int(tt.wantPruned)+2 {
				t.Fatalf("after prune and append: %+v, %v", v, err)
			}
			// Deleting what is left after the anchor is still caught.
			sqlExec(t, s, `DELETE FROM audit_log WHERE seq = (SELECT MIN(seq) FROM audit_log)`)
			if v, _ := s.VerifyAudit(ctx); v.OK() {
				t.Errorf("deletion after prune not detected")
			}
		})
	}
	t.Run("dry run counts the prefix", func(t *testing.T) {
		s, clk := openAudit(t, t.TempDir())
		for _, m := range []int{0, 10, 1} {
			clk.Set(t0.Add(time.Duration(m) * time.Minute))
			if err := s.AppendAudit(ctx, AuditEntry{Actor: "a", Action: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Prune(ctx, PruneOptions{Now: t0.Add(time.Hour), HistoryMaxAge: 55 * time.Minute, DryRun: true})
		if err != nil || res.History != 1 {
			t.Errorf("dry run %+v, %v; want 1", res, err)
		}
	})
}

func TestAuditChainTamperedStateStopsWrites(t *testing.T) {
	ctx := context.Background()
	s, clk := openAudit(t, t.TempDir())
	appendN(t, s, clk, 3)
	sqlExec(t, s, `UPDATE audit_chain SET anchor_seq = 1`)
	if err := s.AppendAudit(ctx, AuditEntry{Actor: "a", Action: "x"}); !errors.Is(err, ErrAuditTampered) {
		t.Errorf("append on a forged chain state: %v, want ErrAuditTampered", err)
	}
	if _, err := s.Prune(ctx, PruneOptions{Now: t0.Add(time.Hour), HistoryMaxAge: time.Second}); !errors.Is(err, ErrAuditTampered) {
		t.Errorf("prune on a forged chain state: %v, want ErrAuditTampered", err)
	}
	// Deleting the chain state does not let the next append start a fresh chain.
	sqlExec(t, s, `DELETE FROM audit_chain`)
	if err := s.AppendAudit(ctx, AuditEntry{Actor: "a", Action: "x"}); !errors.Is(err, ErrAuditTampered) {
		t.Errorf("append after the chain state was deleted: %v, want ErrAuditTampered", err)
	}
}

func TestAuditChainActionPlanTransitions(t *testing.T) {
	ctx := context.Background()
	s, _ := openAudit(t, t.TempDir())
	if _, err := s.ProposeActionPlan(ctx, ActionPlanRecord{ID: "plan-1", Name: "plan-1", Source: "Plugin/provider-aws", Provider: "aws", Action: "assign-private-ip", Document: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{PlanApproved, PlanExecuting, PlanExecuted} {
		if _, err := s.TransitionActionPlan(ctx, "plan-1", PlanTransition{To: to, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.OK() || v.Checked != 3 {
		t.Fatalf("%+v, %v", v, err)
	}
	sqlExec(t, s, `UPDATE audit_log SET actor = 'mallory' WHERE action = 'actionplan.approved'`)
	if v, _ := s.VerifyAudit(ctx); v.OK() || v.Problems[0].Seq != 1 || v.Problems[0].Kind != AuditEdited {
		t.Errorf("edited approval: %+v", v)
	}
}

func TestAuditChainStartsAfterUnchainedRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A store without a key (as before this schema) writes two rows.
	plain, err := Open(filepath.Join(dir, "routerd.db"), Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := plain.AppendAudit(ctx, AuditEntry{Actor: "a", Action: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plain.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), "without the audit key") {
		t.Errorf("verify without key: %v", err)
	}
	plain.Close()
	s, clk := openAudit(t, dir)
	appendN(t, s, clk, 2)
	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.OK() || v.AnchorSeq != 2 || v.Unverifiable != 2 || v.Checked != 2 {
		t.Fatalf("%+v, %v", v, err)
	}
}

func TestLoadAuditKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", AuditKeyFile)
	k1, err := LoadAuditKey(path)
	if err != nil || len(k1) != auditKeyBytes {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("state dir holds %v, want only %s", entries, AuditKeyFile)
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T)
		wantErr string
	}{
		{name: "same key again", prepare: func(t *testing.T) {}},
		{name: "group readable", prepare: func(t *testing.T) { os.Chmod(path, 0o640) }, wantErr: "run chmod 600 " + path},
		{name: "garbage", prepare: func(t *testing.T) { os.Chmod(path, 0o600); os.WriteFile(path, []byte("short"), 0o600) }, wantErr: "is not 32 hex-encoded bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare(t)
			k, err := LoadAuditKey(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(k) != string(k1) {
				t.Errorf("key changed or %v", err)
			}
		})
	}
}

// BenchmarkAuditChain prints the rate of chained audit appends (one transaction each)
// and the time VerifyAudit takes over 10,000 records: BENCH store_audit_append_per_s and
// store_audit_verify_10k_ms.
func BenchmarkAuditChain(b *testing.B) {
	key := make([]byte, auditKeyBytes)
	s, err := Open(filepath.Join(b.TempDir(), "routerd.db"), Options{AuditKey: key, CheckpointInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const n = 10000
	start := time.Now()
	for i := range n {
		if err := s.AppendAudit(ctx, AuditEntry{Actor: "routerctl", Action: "actionplan.approved", Target: fmt.Sprintf("plan-%d", i), Outcome: "proposed->approved"}); err != nil {
			b.Fatal(err)
		}
	}
	rate := n / time.Since(start).Seconds()
	start = time.Now()
	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.OK() || v.Checked != n {
		b.Fatalf("%+v, %v", v, err)
	}
	verify := time.Since(start)
	fmt.Printf("BENCH %s %.0f %s\n", "store_audit_append_per_s", rate, "records/s")
	fmt.Printf("BENCH %s %.2f %s\n", "store_audit_verify_10k_ms", float64(verify.Microseconds())/1000, "ms")
}
