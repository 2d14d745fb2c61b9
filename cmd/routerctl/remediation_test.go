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

// healthState writes a config dir (group lab on node a with peer b and a FederationSLO)
// and a store where b has one failed delivery and one delivered copy whose event was
// extended since (a stale TTL expiring within a minute).
func healthState(t *testing.T) (state, conf string) {
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
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	evs := []event.Event{
		{ID: "ev-failed", Group: "lab", SourceNode: "a", Type: "t.observed", ExpiresAt: now.Add(time.Hour)},
		{ID: "ev-stale", Group: "lab", SourceNode: "a", Type: "t.observed", ExpiresAt: now.Add(time.Minute)},
	}
	_, err = st.InsertEvents(ctx, evs)
	must(err)
	_, err = st.EnqueueDeliveries(ctx, store.EnqueueRequest{Group: "lab", Peer: "b", SourceNode: "a", Now: now})
	must(err)
	must(st.RecordDeliveries(ctx, "lab", "b", []store.DeliveryOutcome{
		{EventID: "ev-failed", State: store.DeliveryFailed, Attempts: 4, LastError: "push: peer answered 400 (validation)"},
		{EventID: "ev-stale", State: store.DeliveryDelivered, Attempts: 1, DeliveredAt: now, DeliveredExpiresAt: now.Add(time.Minute)},
	}))
	_, err = st.DB().ExecContext(ctx, `UPDATE events SET expires_at = ? WHERE id = 'ev-stale'`, now.Add(time.Hour).UnixNano())
	must(err)
	must(os.MkdirAll(conf, 0o755))
	must(os.WriteFile(filepath.Join(conf, "lab.secret"), []byte("lab-secret-0123456789abcdef"), 0o600))
	doc := fmt.Sprintf(`apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: lab}
spec: {nodeName: a, auth: {secretFile: %s}}
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata: {name: b}
spec: {groupRef: lab, nodeName: b, endpoint: "http://127.0.0.1:1"}
---
apiVersion: federation.routerd.net/v1alpha1
kind: FederationSLO
metadata: {name: lab-slo}
spec: {groupRef: lab}
`, filepath.Join(conf, "lab.secret"))
	must(os.WriteFile(filepath.Join(conf, "lab.yaml"), []byte(doc), 0o644))
	return state, conf
}

func TestFederationSLOCommand(t *testing.T) {
	t.Setenv("ROUTERD_SETTINGS", "")
	state, conf := healthState(t)
	r := runCtl(t, "", "federation", "slo", "--state-dir", state, "--config-dir", conf, "-o", "json")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want 1 (objectives violated); %s %s", r.code, r.stderr, r.err)
	}
	var rep struct {
		Federation struct {
			SLO struct {
				Groups []struct {
					Group      string
					Defined    bool
					Thresholds map[string]float64
					Violations []struct {
						Check             string
						Threshold, Actual float64
						Severity          string
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v in %s", err, r.stdout)
	}
	gs := rep.Federation.SLO.Groups
	if len(gs) != 1 || gs[0].Group != "lab" || !gs[0].Defined || gs[0].Thresholds["lagFailSeconds"] != 180 {
		t.Fatalf("groups = %+v, want lab defined with default thresholds", gs)
	}
	var checks []string
	for _, v := range gs[0].Violations {
		checks = append(checks, v.Check+"/"+v.Severity)
	}
	if got := strings.Join(checks, " "); got != "failed-deliveries/fail stale-ttl/warn" {
		t.Errorf("violations %s, want failed-deliveries/fail stale-ttl/warn", got)
	}
	table := runCtl(t, "", "federation", "slo", "--state-dir", state, "--config-dir", conf)
	if !strings.Contains(table.stdout, "failed-deliveries") || !strings.Contains(table.stdout, "THRESHOLD") {
		t.Errorf("table output:\n%s", table.stdout)
	}

	empty := filepath.Join(t.TempDir(), "state")
	r = runCtl(t, "", "federation", "slo", "--state-dir", empty, "--config-dir", conf)
	if r.code != exitFailed || !strings.Contains(r.err, "does not exist") {
		t.Errorf("missing store: exit %d, %q; want 1 naming the missing file", r.code, r.err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("slo created the state dir %s", empty)
	}
}

func TestRemediationCommands(t *testing.T) {
	t.Setenv("ROUTERD_SETTINGS", "")
	state, conf := healthState(t)
	flags := []string{"--state-dir", state, "--config-dir", conf}
	plan := func() string {
		t.Helper()
		r := runCtl(t, "", append([]string{"remediation", "plan", "-o", "json"}, flags...)...)
		if r.code != exitOK {
			t.Fatalf("plan: exit %d: %s %s", r.code, r.stderr, r.err)
		}
		return r.stdout
	}
	first, second := plan(), plan()
	if first != second {
		t.Errorf("plan is not byte-identical for the same state:\n%s\n---\n%s", first, second)
	}
	for _, want := range []string{`"action": "retry-failed-deliveries"`, `"action": "force-repush-stale-ttl"`, `"targetPeer": "b"`} {
		if !strings.Contains(first, want) {
			t.Errorf("plan lacks %s:\n%s", want, first)
		}
	}

	if r := runCtl(t, "", append([]string{"remediation", "run", "--approve", "reboot"}, flags...)...); r.code != exitUsage {
		t.Errorf("run --approve reboot: exit %d, want 2", r.code)
	}
	r := runCtl(t, "", append([]string{"remediation", "run", "-o", "json"}, flags...)...)
	if r.code != exitOK {
		t.Fatalf("run: exit %d: %s %s", r.code, r.stderr, r.err)
	}
	var results []struct {
		Action, Outcome string
		Changed         int
	}
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("%v in %s", err, r.stdout)
	}
	if len(results) != 2 || results[0].Outcome != "done" || results[0].Changed != 1 || results[1].Outcome != "done" || results[1].Changed != 1 {
		t.Errorf("run results %+v, want both safe actions done with one row each", results)
	}
	if after := plan(); !strings.Contains(after, `"actions": []`) {
		t.Errorf("plan after run:\n%s\nwant no actions", after)
	}
	st, err := store.Open(filepath.Join(state, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	audit, err := st.ListAudit(context.Background(), store.AuditFilter{Actor: "routerctl"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 || audit[0].Action != "remediation.retry-failed-deliveries" || audit[0].Target != "lab/b" || audit[0].Outcome != "done" {
		t.Errorf("audit log %+v, want the two actions of the run", audit)
	}
}

func TestRemediationMissingStore(t *testing.T) {
	t.Setenv("ROUTERD_SETTINGS", "")
	_, conf := healthState(t)
	empty := filepath.Join(t.TempDir(), "state")
	flags := []string{"--state-dir", empty, "--config-dir", conf}
	r := runCtl(t, "", append([]string{"remediation", "plan", "-o", "json"}, flags...)...)
	if r.code != exitFailed || !strings.Contains(r.err, "does not exist") || !strings.Contains(r.stdout, `"actions": []`) {
		t.Errorf("plan without a store: exit %d, err %q, out %s; want 1, the cause, and the config-only plan", r.code, r.err, r.stdout)
	}
	r = runCtl(t, "", append([]string{"remediation", "run"}, flags...)...)
	if r.code != exitFailed || !strings.Contains(r.err, "cannot run remediation") {
		t.Errorf("run without a store: exit %d, err %q; want 1 naming the cause", r.code, r.err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("remediation created the state dir %s", empty)
	}
}
