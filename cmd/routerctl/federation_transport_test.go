package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
)

// ctl runs routerctl in-process and returns stdout and the exit code run() would give.
func ctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := runCtl(t, "", args...)
	return r.stdout + r.stderr + r.err, r.code
}

// outboxState fills a store with 3 local events: delivered to b, one retrying and one
// failed for c, and writes a config dir naming peers b, c and d.
func outboxState(t *testing.T) (state, conf string) {
	t.Helper()
	dir := t.TempDir()
	state, conf = filepath.Join(dir, "state"), filepath.Join(dir, "conf.d")
	st, err := store.Open(filepath.Join(state, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	var evs []event.Event
	for i := range 3 {
		evs = append(evs, event.Event{ID: fmt.Sprintf("ev-%d", i), Group: "lab", SourceNode: "a", Type: "t.observed", ObservedAt: now})
	}
	if _, err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{"b", "c"} {
		if _, err := st.EnqueueDeliveries(ctx, store.EnqueueRequest{Group: "lab", Peer: peer, SourceNode: "a", Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	var toB []store.DeliveryOutcome
	for _, e := range evs {
		toB = append(toB, store.DeliveryOutcome{EventID: e.ID, State: store.DeliveryDelivered, Attempts: 1, DeliveredAt: now})
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.RecordDeliveries(ctx, "lab", "b", toB))
	must(st.RecordDeliveries(ctx, "lab", "c", []store.DeliveryOutcome{
		{EventID: "ev-0", State: store.DeliveryDelivered, Attempts: 1, DeliveredAt: now},
		{EventID: "ev-1", State: store.DeliveryRetrying, Attempts: 2, LastError: "push: peer answered 500 (store_error)", NextAttemptAt: now.Add(time.Second)},
		{EventID: "ev-2", State: store.DeliveryFailed, Attempts: 1, LastError: "push: peer answered 400 (validation)"},
	}))
	must(os.MkdirAll(conf, 0o755))
	must(os.WriteFile(filepath.Join(conf, "lab.secret"), []byte("lab-secret-0123456789abcdef"), 0o600))
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata:\n  name: lab\nspec:\n  nodeName: a\n  auth:\n    secretFile: %s\n  peersFrom:\n  - resource: OverlayPeer/dc1\n", filepath.Join(conf, "lab.secret"))
	b.WriteString("---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: OverlayPeer\nmetadata:\n  name: dc1\nspec:\n  role: cloud\n  underlay:\n    type: wireguard\n    interface: wg0\n  remote:\n    nodeID: dc1-node\n    address: 10.255.1.2\n")
	for _, p := range []string{"b", "c", "d"} {
		fmt.Fprintf(&b, "---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata:\n  name: %s\nspec:\n  groupRef: lab\n  nodeName: node-%s\n  endpoint: http://127.0.0.1:1\n", p, p)
	}
	must(os.WriteFile(filepath.Join(conf, "lab.yaml"), []byte(b.String()), 0o644))
	return state, conf
}

func TestFederationDeliveries(t *testing.T) {
	t.Setenv("ROUTERD_SETTINGS", "")
	state, conf := outboxState(t)
	base := []string{"federation", "deliveries", "--state-dir", state, "--config-dir", conf}
	tests := []struct {
		name  string
		args  []string
		code  int
		rows  int
		check func(t *testing.T, out string)
	}{
		{name: "all", args: []string{"-o", "json"}, rows: 6},
		{name: "by peer", args: []string{"--peer", "c", "-o", "json"}, rows: 3},
		{name: "by state", args: []string{"--state", "failed", "-o", "json"}, rows: 1, check: func(t *testing.T, out string) {
			if !strings.Contains(out, `"lastError": "push: peer answered 400 (validation)"`) {
				t.Errorf("failed row lacks its error:\n%s", out)
			}
		}},
		{name: "other group", args: []string{"--group", "corp", "-o", "json"}, rows: 0},
		{name: "table", args: nil, rows: -1, check: func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "EVENT") || !strings.Contains(out, "retrying") {
				t.Errorf("table:\n%s", out)
			}
		}},
		{name: "bad state", args: []string{"--state", "lost"}, code: exitUsage, rows: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := ctl(t, append(base, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, out)
			}
			if tt.rows >= 0 {
				var rows []store.DeliveryRow
				if err := json.Unmarshal([]byte(out), &rows); err != nil {
					t.Fatalf("%v:\n%s", err, out)
				}
				if len(rows) != tt.rows {
					t.Errorf("%d rows, want %d:\n%s", len(rows), tt.rows, out)
				}
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

func TestFederationPeers(t *testing.T) {
	t.Setenv("ROUTERD_SETTINGS", "")
	state, conf := outboxState(t)
	out, code := ctl(t, "federation", "peers", "--state-dir", state, "--config-dir", conf, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	var rows []peerRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rows) != 4 {
		t.Fatalf("%d peers, want b, c, d and dc1:\n%s", len(rows), out)
	}
	b, c, d, dc1 := rows[0], rows[1], rows[2], rows[3]
	if b.Peer != "b" || b.Delivered != 3 || b.Backlog != 0 || b.LastSuccess.IsZero() || b.NodeName != "node-b" {
		t.Errorf("peer b = %+v", b)
	}
	if c.Peer != "c" || c.Delivered != 1 || c.Backlog != 1 || c.Failed != 1 || c.LastError == "" || c.LagSeconds <= 0 {
		t.Errorf("peer c = %+v", c)
	}
	if d.Peer != "d" || d.Delivered != 0 || d.Endpoint == "" {
		t.Errorf("peer d (configured, never used) = %+v", d)
	}
	if dc1.Peer != "dc1" || dc1.NodeName != "dc1-node" || dc1.Endpoint != "" {
		t.Errorf("peer dc1 (spec.peersFrom OverlayPeer/dc1, no EventPeer) = %+v", dc1)
	}
	table, code := ctl(t, "federation", "peers", "--state-dir", state, "--config-dir", conf)
	if code != exitOK || !strings.HasPrefix(table, "GROUP") || !strings.Contains(table, "push: peer answered") {
		t.Errorf("table (exit %d):\n%s", code, table)
	}
}

func TestRenderCommands(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
		file string
	}{
		{name: "systemd", args: []string{"render", "systemd"}, want: "ProtectSystem=strict"},
		{name: "systemd dynamic user", args: []string{"render", "systemd", "--dynamic-user"}, want: "DynamicUser=yes"},
		{name: "rc.d", args: []string{"render", "rc.d", "--user", "router"}, want: `routerd_eventd_user:="router"`},
		{name: "systemd to dir", args: []string{"render", "systemd", "--binary", "/opt/bin/routerd-eventd"}, want: "wrote ", file: "routerd-eventd@.service"},
		{name: "relative binary", args: []string{"render", "systemd", "--binary", "bin/x"}, code: exitUsage, want: "absolute"},
		{name: "no kind", args: []string{"render", "launchd"}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			dir := t.TempDir()
			if tt.file != "" {
				args = append(args, "--out", dir)
			}
			out, code := ctl(t, args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
			if tt.file != "" {
				b, err := os.ReadFile(filepath.Join(dir, tt.file))
				if err != nil || !strings.Contains(string(b), "ExecStart=/opt/bin/routerd-eventd --group %i") {
					t.Errorf("written file: %v\n%s", err, b)
				}
			}
		})
	}
}
