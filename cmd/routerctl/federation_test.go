package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
)

// runFederationCtl runs routerctl with args and returns stdout, stderr and the exit code
// run() would return.
func runFederationCtl(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	r := runCtl(t, stdin, args...)
	return r.stdout, r.stderr + r.err, r.code
}

// TestFederationEventCLI walks through emit, duplicate emit, list, show, stats and prune
// on one state dir, each step checking output and exit code.
func TestFederationEventCLI(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ROUTERD_SETTINGS", "")
	sd := []string{"--state-dir", filepath.Join(dir, "state")}
	oldEvent := filepath.Join(dir, "old.json")
	if err := os.WriteFile(oldEvent, []byte(`{"id":"old-1","group":"lab","type":"neighbor.moved","subject":"10.1.1.1",
		"observedAt":"2020-01-01T00:00:00Z","expiresAt":"2020-01-01T00:30:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var emittedID string
	steps := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		check    func(t *testing.T, stdout, stderr string)
	}{
		{
			name: "emit with the original flags",
			args: []string{"federation", "event", "emit", "--group", "cloudedge", "--type", event.TypeClientIPv4Observed,
				"--subject", "10.88.60.9", "--source-node", "onprem-router", "--payload", "address=10.88.60.9",
				"--payload", "ownerSide=onprem", "--ttl", "30m"},
			check: func(t *testing.T, stdout, _ string) {
				emittedID = strings.TrimSpace(stdout)
				if len(emittedID) != 26 {
					t.Fatalf("emit printed %q, want a ULID", stdout)
				}
			},
		},
		{
			name: "emit from a file",
			args: []string{"federation", "event", "emit", "--file", oldEvent},
			check: func(t *testing.T, stdout, _ string) {
				if strings.TrimSpace(stdout) != "old-1" {
					t.Errorf("stdout %q", stdout)
				}
			},
		},
		{
			name:  "emit a duplicate from stdin",
			args:  []string{"federation", "event", "emit", "--file", "-"},
			stdin: `{"id":"old-1","group":"lab","type":"neighbor.moved","subject":"10.1.1.1"}`,
			check: func(t *testing.T, stdout, stderr string) {
				if strings.TrimSpace(stdout) != "old-1" || !strings.Contains(stderr, "already stored") {
					t.Errorf("stdout %q stderr %q", stdout, stderr)
				}
			},
		},
		{
			name:     "emit without type is a usage error",
			args:     []string{"federation", "event", "emit", "--group", "g"},
			wantCode: exitUsage,
		},
		{
			name:     "emit of a built-in type checks its payload",
			args:     []string{"federation", "event", "emit", "--group", "g", "--type", event.TypeClientIPv4Observed, "--subject", "2001:db8::1"},
			wantCode: exitFailed,
			check: func(t *testing.T, _, stderr string) {
				if !strings.Contains(stderr, "not an IPv4 address") || !strings.Contains(stderr, "--skip-type-check") {
					t.Errorf("stderr %q", stderr)
				}
			},
		},
		{
			name:     "emit with --file and event flags is a usage error",
			args:     []string{"federation", "event", "emit", "--file", "-", "--ttl", "5m"},
			wantCode: exitUsage,
		},
		{
			name:     "emit with a bad payload flag",
			args:     []string{"federation", "event", "emit", "--group", "g", "--type", "t", "--payload", "novalue"},
			wantCode: exitUsage,
		},
		{
			name:     "emit an invalid file names the problem",
			args:     []string{"federation", "event", "emit", "--file", "-"},
			stdin:    `{"id":"x","group":"g","type":"t","payload":{"n":1}}`,
			wantCode: exitFailed,
			check: func(t *testing.T, _, stderr string) {
				if !strings.Contains(stderr, "payload values must be strings") {
					t.Errorf("stderr %q", stderr)
				}
			},
		},
		{
			name: "list as table",
			args: []string{"federation", "event", "list"},
			check: func(t *testing.T, stdout, _ string) {
				lines := strings.Split(strings.TrimSpace(stdout), "\n")
				if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[2], "(expired)") {
					t.Errorf("table:\n%s", stdout)
				}
			},
		},
		{
			name: "list filtered as json",
			args: []string{"federation", "event", "list", "--group", "cloudedge", "--type", event.TypeClientIPv4Observed, "--source", "onprem-router", "--subject", "10.88.", "--since", "1h", "-o", "json"},
			check: func(t *testing.T, stdout, _ string) {
				var rows []eventRow
				if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
					t.Fatalf("%v\n%s", err, stdout)
				}
				if len(rows) != 1 || rows[0].Event.ID != emittedID || rows[0].Event.Payload["ownerSide"] != "onprem" {
					t.Errorf("rows %+v", rows)
				}
			},
		},
		{
			name: "list paging with --after",
			args: []string{"federation", "event", "list", "--limit", "1", "--after", "1", "-o", "yaml"},
			check: func(t *testing.T, stdout, _ string) {
				if !strings.Contains(stdout, "id: old-1") || strings.Contains(stdout, emittedID) {
					t.Errorf("page:\n%s", stdout)
				}
			},
		},
		{
			name: "list empty result is [] in json",
			args: []string{"federation", "event", "list", "--group", "none", "-o", "json"},
			check: func(t *testing.T, stdout, _ string) {
				if strings.TrimSpace(stdout) != "[]" {
					t.Errorf("stdout %q", stdout)
				}
			},
		},
		{
			name:     "list with a bad --since",
			args:     []string{"federation", "event", "list", "--since", "yesterday"},
			wantCode: exitUsage,
		},
		{
			name: "show as table",
			args: []string{"federation", "event", "show", "old-1"},
			check: func(t *testing.T, stdout, _ string) {
				for _, want := range []string{"neighbor.moved", "2020-01-01T00:30:00Z (expired)", "receivedAt"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("show lacks %q:\n%s", want, stdout)
					}
				}
			},
		},
		{
			name:     "show a missing event",
			args:     []string{"federation", "event", "show", "nope"},
			wantCode: exitFailed,
		},
		{
			name: "emits are audited",
			args: []string{"federation", "event", "list", "-o", "json"}, // opens the store; the check reads the audit log
			check: func(t *testing.T, _, _ string) {
				st, err := store.Open(filepath.Join(dir, "state", "routerd.db"), store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				audit, err := st.ListAudit(t.Context(), store.AuditFilter{Action: "event.emit"})
				if err != nil || len(audit) != 2 || audit[0].Actor != "routerctl" || audit[1].Target != "old-1" {
					t.Errorf("audit %+v, %v", audit, err)
				}
			},
		},
		{
			name: "stats as json",
			args: []string{"federation", "stats", "-o", "json"},
			check: func(t *testing.T, stdout, _ string) {
				var s store.Stats
				if err := json.Unmarshal([]byte(stdout), &s); err != nil {
					t.Fatal(err)
				}
				if s.Events != 2 || s.Expired != 1 || len(s.ByType) != 2 || s.SizeBytes == 0 {
					t.Errorf("stats %+v", s)
				}
			},
		},
		{
			name: "stats as table",
			args: []string{"federation", "stats"},
			check: func(t *testing.T, stdout, _ string) {
				if !strings.Contains(stdout, "GROUP") || !strings.Contains(stdout, "cloudedge") || !strings.Contains(stdout, "events:      2 (1 expired)") {
					t.Errorf("stats:\n%s", stdout)
				}
			},
		},
		{
			name: "prune dry run deletes nothing",
			args: []string{"federation", "prune", "--dry-run", "-o", "json"},
			check: func(t *testing.T, stdout, _ string) {
				var rows []pruneRow
				if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
					t.Fatal(err)
				}
				if len(rows) != 1 || !rows[0].DryRun || rows[0].Expired != 1 || rows[0].Total() != 1 {
					t.Errorf("dry run %+v", rows)
				}
			},
		},
		{
			name: "prune removes the expired event and vacuums",
			args: []string{"federation", "prune", "--vacuum"},
			check: func(t *testing.T, stdout, stderr string) {
				if !strings.Contains(stdout, "DELETED") || !strings.Contains(stderr, "vacuum: file") {
					t.Errorf("prune:\n%s\n%s", stdout, stderr)
				}
			},
		},
		{
			name:     "the pruned event is gone",
			args:     []string{"federation", "event", "show", "old-1"},
			wantCode: exitFailed,
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			stdout, stderr, code := runFederationCtl(t, st.stdin, append(st.args, sd...)...)
			if code != st.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, st.wantCode, stdout, stderr)
			}
			if st.check != nil {
				st.check(t, stdout, stderr)
			}
		})
	}
}

func TestFederationStoreFromEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "from-env")
	t.Setenv("ROUTERD_SETTINGS", "")
	t.Setenv("ROUTERD_STATE_DIR", dir)
	stdout, stderr, code := runFederationCtl(t, "", "federation", "event", "emit", "--group", "g", "--type", "t", "--id", "env-1", "--source-node", "a")
	if code != exitOK || strings.TrimSpace(stdout) != "env-1" {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "routerd.db")); err != nil {
		t.Fatalf("store not created in ROUTERD_STATE_DIR: %v", err)
	}
}

func TestAddFederationCommand(t *testing.T) {
	saved := federationSubcommands
	t.Cleanup(func() { federationSubcommands = saved })
	addFederationCommand(func() *cobra.Command {
		return &cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			_, err = cmd.OutOrStdout().Write([]byte(st.Path()))
			return err
		}}
	})
	dir := t.TempDir()
	t.Setenv("ROUTERD_SETTINGS", "")
	stdout, stderr, code := runFederationCtl(t, "", "federation", "probe", "--state-dir", dir)
	if code != exitOK || stdout != filepath.Join(dir, "routerd.db") {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

func TestFederationPruneFromConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ROUTERD_SETTINGS", "")
	confDir := filepath.Join(dir, "conf.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "group.yaml"), []byte(`apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata:
  name: cloudedge
spec:
  nodeName: router-a
  auth:
    mode: hmac
    secretFile: /etc/routerd/secrets/cloudedge.key
  retention:
    maxEvents: 2
    maxAge: 1h
`), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--state-dir", filepath.Join(dir, "state"), "--config-dir", confDir}
	for _, e := range []struct{ id, group string }{{"c1", "cloudedge"}, {"c2", "cloudedge"}, {"c3", "cloudedge"}, {"o1", "other"}} {
		args := append([]string{"federation", "event", "emit", "--id", e.id, "--group", e.group, "--type", "t", "--ttl", "0", "--source-node", "router-a"}, common...)
		if _, stderr, code := runFederationCtl(t, "", args...); code != exitOK {
			t.Fatalf("emit %s: exit %d: %s", e.id, code, stderr)
		}
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []pruneRow
		left     int
	}{
		{name: "explicit rules conflict with --from-config", args: []string{"--from-config", "--max-age", "1h"}, wantCode: exitUsage, left: 4},
		{name: "unknown group", args: []string{"--from-config", "--group", "nope"}, wantCode: exitFailed, left: 4},
		{name: "dry run", args: []string{"--from-config", "--dry-run"},
			want: []pruneRow{{Group: "cloudedge", PruneResult: store.PruneResult{OverLimit: 1, DryRun: true}}}, left: 4},
		{name: "prune keeps maxEvents of the group and other groups untouched", args: []string{"--from-config", "--history-max-age", "1h"},
			want: []pruneRow{{Group: "cloudedge", PruneResult: store.PruneResult{OverLimit: 1, Batches: 1}}, {PruneResult: store.PruneResult{}}}, left: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"federation", "prune", "-o", "json"}, tc.args...), common...)
			stdout, stderr, code := runFederationCtl(t, "", args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d: %s", code, tc.wantCode, stderr)
			}
			if tc.want != nil {
				var rows []pruneRow
				if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
					t.Fatalf("%v: %s", err, stdout)
				}
				if len(rows) != len(tc.want) {
					t.Fatalf("rows %+v, want %+v", rows, tc.want)
				}
				for i := range rows {
					w, g := tc.want[i], rows[i]
					if g.Group != w.Group || g.Expired != w.Expired || g.Aged != w.Aged || g.OverLimit != w.OverLimit || g.DryRun != w.DryRun {
						t.Errorf("row %d = %+v, want %+v", i, g, w)
					}
				}
			}
			out, _, _ := runFederationCtl(t, "", append([]string{"federation", "event", "list", "-o", "json"}, common...)...)
			var evs []eventRow
			if err := json.Unmarshal([]byte(out), &evs); err != nil {
				t.Fatal(err)
			}
			if len(evs) != tc.left {
				t.Errorf("%d events left, want %d", len(evs), tc.left)
			}
			if tc.left == 3 && evs[0].Event.ID != "c2" {
				t.Errorf("the oldest event of the group was not the one pruned: %+v", evs)
			}
		})
	}
}

// TestEmitDefaultsSourceNode: without --source-node the event's source is the group's
// spec.nodeName (so the sender pushes it); without a config naming one, emit refuses.
func TestEmitDefaultsSourceNode(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ROUTERD_SETTINGS", "")
	confDir := filepath.Join(dir, "conf.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "group.yaml"), []byte(`apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata:
  name: cloudedge
spec:
  nodeName: router-a
  auth:
    secretFile: /etc/routerd/secrets/cloudedge.key
`), 0o600); err != nil {
		t.Fatal(err)
	}
	state := []string{"--state-dir", filepath.Join(dir, "state")}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantSource string
		wantErr    string
	}{
		{name: "from the group's nodeName", args: []string{"--id", "e1", "--group", "cloudedge", "--config-dir", confDir}, wantSource: "router-a"},
		{name: "explicit source wins", args: []string{"--id", "e2", "--group", "cloudedge", "--config-dir", confDir, "--source-node", "router-z"}, wantSource: "router-z"},
		{name: "group not in the config", args: []string{"--id", "e3", "--group", "other", "--config-dir", confDir}, wantCode: exitUsage,
			wantErr: `--source-node is not set and config dir ` + confDir + ` has no EventGroup "other" naming this node (spec.nodeName); give --source-node NODE, or --config-dir DIR holding the EventGroup "other" with spec.nodeName`},
		{name: "no config dir", args: []string{"--id", "e4", "--group", "cloudedge", "--config-dir", filepath.Join(dir, "missing")}, wantCode: exitUsage,
			wantErr: "give --source-node NODE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"federation", "event", "emit", "--type", "t"}, tt.args...), state...)
			_, stderr, code := runFederationCtl(t, "", args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.wantCode, stderr, tt.wantErr)
			}
			if tt.wantSource == "" {
				return
			}
			st, err := store.Open(filepath.Join(dir, "state", "routerd.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			evs, err := st.ListEvents(t.Context(), store.EventFilter{Group: "cloudedge", SourceNode: tt.wantSource})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Event.ID != tt.args[1] {
				t.Errorf("events from %s = %+v, want %s", tt.wantSource, evs, tt.args[1])
			}
		})
	}
}
