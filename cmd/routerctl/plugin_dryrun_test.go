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

// TestPluginDryRunAcceptance is the acceptance command: dry-run of
// event-to-remote-claim on the observed events prints RemoteAddressClaim parts.
func TestPluginDryRunAcceptance(t *testing.T) {
	plugins, state, noConf := pluginDir(t, nil)
	out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins,
		"--state-dir", state, "--config-dir", noConf, "--events", observedEvents, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Plugin  string `json:"plugin"`
		Events  int    `json:"events"`
		Applied bool   `json:"applied"`
		Parts   []struct {
			Kind string `json:"kind"`
			Spec struct {
				Source    string `json:"source"`
				Resources []struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name        string            `json:"name"`
						Annotations map[string]string `json:"annotations"`
					} `json:"metadata"`
					Spec struct {
						Address string `json:"address"`
					} `json:"spec"`
				} `json:"resources"`
			} `json:"spec"`
		} `json:"parts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Plugin != "event-to-remote-claim" || rep.Applied || rep.Events == 0 || len(rep.Parts) == 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range rep.Parts {
		r := p.Spec.Resources[0]
		if p.Kind != "DynamicConfigPart" || r.Kind != "RemoteAddressClaim" || r.Spec.Address == "" {
			t.Fatalf("part %+v", p)
		}
		// The origin event's subject is the claim's address.
		addr, _, _ := strings.Cut(r.Spec.Address, "/")
		if r.Metadata.Annotations["routerd.net/event-subject"] != addr {
			t.Fatalf("claim %s: origin subject %q", r.Metadata.Name, r.Metadata.Annotations["routerd.net/event-subject"])
		}
	}
	if !strings.Contains(out, `"name": "onprem-10-88-60-9"`) {
		t.Fatalf("no onprem-10-88-60-9 claim:\n%s", out)
	}
}

func TestPluginDryRunWithConfig(t *testing.T) {
	plugins, state, _ := pluginDir(t, nil)
	out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins,
		"--state-dir", state, "--config", "../../testdata/config/valid", "--events", observedEvents)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// The subscription claims-from-peers uses the plugin; its policy decides. The example
	// config's policy admits every field the bundled plugin sets, so the nine observed
	// addresses become eight parts; the ninth names a static claim, which wins.
	for _, want := range []string{"Summary", "DynamicOverridePolicies evaluated", "nothing applied",
		"8 parts, 1 rejected",
		"RemoteAddressClaim/onprem-10-88-60-9", "a static resource of the same Kind and name exists (static-wins)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "does not allow field") {
		t.Fatalf("the example policy rejects a field the bundled plugin sets:\n%s", out)
	}
}

func TestPluginDryRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "replay without against", args: []string{"--replay", "1h"}, code: exitUsage, want: "--replay and --against go together"},
		{name: "bad hook", args: []string{"--hook", "execute", "--events", observedEvents}, code: exitUsage, want: "want on_events or plan"},
		{name: "events with replay", args: []string{"--replay", "1h", "--against", "x.wasm", "--events", "f"}, code: exitUsage, want: "cannot be combined"},
		{name: "no store and no events", args: []string{}, code: exitFailed, want: "does not exist"},
		{name: "missing arg", args: nil, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"plugin", "dry-run"}
			if tt.args != nil {
				args = append(args, "echo")
			}
			args = append(args, tt.args...)
			args = append(args, "--plugin-dir", dir, "--state-dir", dir, "--config-dir", filepath.Join(dir, "none"))
			_, errOut, code := ctlPlugin(t, args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d (want %d): %s", code, tt.code, errOut)
			}
		})
	}
}
