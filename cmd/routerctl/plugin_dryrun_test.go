package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/host"
	"routerd.net/routerd/schemas"
)

// signalRecorder records runs in the store and signals each one.
type signalRecorder struct {
	subscribe.StoreAdapter
	runs chan subscribe.Run
}

func (r signalRecorder) RecordRun(ctx context.Context, run subscribe.Run) error {
	err := r.StoreAdapter.RecordRun(ctx, run)
	r.runs <- run
	return err
}

// TestDryRunMatchesDaemonPath runs one batch of events through the daemon's path (store ->
// subscription engine -> plugin -> dynamic.Manager) and through `routerctl plugin
// dry-run`, and requires the same DynamicConfigParts and the same rejections.
func TestDryRunMatchesDaemonPath(t *testing.T) {
	const config = "../../testdata/config/valid"
	plugins, state, _ := pluginDir(t, nil)
	cfg, err := schemas.LoadFiles(config)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	mk := func(subject string, payload map[string]string) event.Event {
		return event.New("sam", event.TypeClientIPv4Observed, "router-b", subject, payload, time.Hour, at)
	}
	events := []event.Event{
		mk("10.88.60.31", map[string]string{"address": "10.88.60.31", "domain": "lab-v4"}),
		mk("10.88.60.9", map[string]string{"address": "10.88.60.9/32", "domain": "lab-v4"}), // a static claim wins
		mk("10.88.60.32", map[string]string{"address": "10.88.60.32/32", "ownerSide": "cloud", "peerRef": "aws-tokyo"}),
		mk("10.88.61.5", map[string]string{"address": " 10.88.61.6 ", "domain": "lab-v4"}),                    // the address, not the subject
		mk("10.88.60.31", map[string]string{"address": "10.88.60.31", "domain": "lab-v4", "nicRef": "nic-2"}), // the newest wins
	}
	evFile := filepath.Join(t.TempDir(), "events.json")
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The daemon's path.
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	h, err := host.New(host.Options{CacheDir: filepath.Join(t.TempDir(), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Configure(ctx, host.SpecsFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	_ = h.LoadDir(ctx, plugins) // modules the config names but the dir lacks fail, as in the daemon
	mgr, err := dynamic.NewManager(dynamic.Options{Repo: dynamic.NewSQLRepo(st)})
	if err != nil {
		t.Fatal(err)
	}
	mgr.SetConfig(dynamic.ConfigFrom(cfg))
	rec := signalRecorder{StoreAdapter: subscribe.StoreAdapter{Store: st}, runs: make(chan subscribe.Run, 16)}
	eng, err := subscribe.New(subscribe.Options{Source: rec, Cursors: rec, Recorder: rec, Invoker: h, Handler: mgr})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	all, err := daemon.SubscriptionSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var specs []subscribe.Spec
	for _, s := range all {
		if s.Name == "claims-from-peers" {
			specs = append(specs, s)
		}
	}
	if err := eng.Update(specs); err != nil {
		t.Fatal(err)
	}
	select {
	case run := <-rec.runs:
		if run.Outcome != "ok" || run.Events != len(events) {
			t.Fatalf("daemon path: run %+v", run)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon path: no batch ran within 30s")
	}
	parts, err := mgr.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) == 0 {
		t.Fatal("daemon path: no parts")
	}
	daemonParts := map[string]string{}
	for _, p := range parts {
		daemonParts[p.Document.Metadata.Name] = canonicalJSON(t, p.Document)
	}
	audit, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var daemonRejected []string
	for _, a := range audit {
		if a.Outcome == "rejected" {
			daemonRejected = append(daemonRejected, a.Target+" "+a.Detail)
		}
	}
	// The manager's time of the proposal, for dry-run's --now.
	now := parts[0].ExpiresAt.Add(-parts[0].Document.Spec.TTL.Duration)

	// dry-run.
	out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins, "--state-dir", state,
		"--config", config, "--events", evFile, "--now", now.UTC().Format(time.RFC3339Nano), "-o", "json")
	if code != exitOK {
		t.Fatalf("dry-run: exit %d: %s", code, errOut)
	}
	var rep struct {
		Parts    []*schemas.DynamicConfigPart `json:"parts"`
		Rejected []dynamic.Rejection          `json:"rejected"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dryParts := map[string]string{}
	for _, p := range rep.Parts {
		dryParts[p.Metadata.Name] = canonicalJSON(t, p)
	}
	var dryRejected []string
	for _, r := range rep.Rejected {
		dryRejected = append(dryRejected, r.Target+" "+r.String())
	}

	if len(dryParts) != len(daemonParts) {
		t.Errorf("dry-run proposes %d parts, the daemon stored %d", len(dryParts), len(daemonParts))
	}
	for name, want := range daemonParts {
		if got := dryParts[name]; got != want {
			t.Errorf("part %s differs:\ndaemon:  %s\ndry-run: %s", name, want, got)
		}
	}
	slices.Sort(daemonRejected)
	slices.Sort(dryRejected)
	if strings.Join(daemonRejected, "\n") != strings.Join(dryRejected, "\n") || len(dryRejected) == 0 {
		t.Errorf("rejections differ (want at least one):\ndaemon:\n%s\ndry-run:\n%s", strings.Join(daemonRejected, "\n"), strings.Join(dryRejected, "\n"))
	}
	// The shared origin rule: the part of 10.88.61.6 came from the event naming it in its
	// payload, and 10.88.60.31's from the newest event about it.
	for _, p := range rep.Parts {
		res := p.Spec.Resources[0].Object
		ann := res.GetMeta().Annotations
		switch res.GetName() {
		case "onprem-10-88-61-6":
			if ann[dynamic.AnnotationEventID] != events[3].ID || ann[dynamic.AnnotationEventSubject] != "10.88.61.5" {
				t.Errorf("origin of %s: %v", res.GetName(), ann)
			}
		case "onprem-10-88-60-31":
			if ann[dynamic.AnnotationEventID] != events[4].ID || ann[dynamic.AnnotationEventGroup] != "sam" {
				t.Errorf("origin of %s: %v", res.GetName(), ann)
			}
		}
	}
}

func canonicalJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	c, _ := json.Marshal(x)
	return string(c)
}
