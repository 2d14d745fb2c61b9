package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/wasmbuild"
)

// ctlPlugin runs routerctl with args and returns stdout, stderr and the exit code.
func ctlPlugin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	r := runCtl(t, "", args...)
	return r.stdout, r.stderr + r.err, r.code
}

// pluginDir builds echo and event-to-remote-claim into a fresh plugin dir (plus extra
// files) and returns it with a state dir and a config dir that does not exist.
func pluginDir(t *testing.T, extra map[string][]byte) (plugins, state, noConfig string) {
	t.Helper()
	plugins, state = t.TempDir(), t.TempDir()
	for _, p := range []string{"echo", "event-to-remote-claim"} {
		b, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/"+p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(plugins, p+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range extra {
		if err := os.WriteFile(filepath.Join(plugins, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return plugins, state, filepath.Join(state, "no-conf.d")
}

const observedEvents = "../../testdata/events/observed.json"

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

func TestPluginList(t *testing.T) {
	plugins, state, noConf := pluginDir(t, map[string][]byte{"broken.wasm": []byte("not wasm")})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "table", args: []string{"--standalone"}, want: []string{"NAME", "echo", "event-to-remote-claim", "ready", "broken", "failed", "not a WebAssembly binary module"}},
		{name: "json", args: []string{"--standalone", "-o", "json"}, want: []string{`"name": "echo"`, `"state": "failed"`, `"fastPath": true`}},
		{name: "daemon not running falls back", args: []string{"--control-socket", filepath.Join(state, "nope.sock")}, want: []string{"echo", "ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"plugin", "list", "--plugin-dir", plugins, "--state-dir", state, "--config-dir", noConf}, tt.args...)
			out, errOut, code := ctlPlugin(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestPluginListFromDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "routerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/plugins" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode([]host.PluginStatus{{Name: "live-plugin", Version: "9.9.9", State: host.StateCircuitOpen,
			Digest: strings.Repeat("ab", 32), Grants: []string{"log"}, Calls: 42, Errors: 7, P50Micros: 12.5, P99Micros: 80, LastError: "plugin live-plugin: on_events: trap"}})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	out, errOut, code := ctlPlugin(t, "plugin", "list", "--control-socket", sock, "--plugin-dir", filepath.Join(dir, "none"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"live-plugin", "9.9.9", "abababababab", "circuit-open", "42", "12.5µs", "80.0µs", "trap"} {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestPluginInspect(t *testing.T) {
	plugins, state, _ := pluginDir(t, nil)
	conf := filepath.Join(state, "plugins.yaml")
	doc := `apiVersion: plugin.routerd.net/v1alpha1
kind: Plugin
metadata:
  name: claims
spec:
  module: event-to-remote-claim.wasm
  capabilities: [observe.cloud]
  grants:
    kv: true
    eventEmit:
      types: [routerd.test.x]
  limits:
    memoryMiB: 48
    timeout: 750ms
`
	if err := os.WriteFile(conf, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := ctlPlugin(t, "plugin", "inspect", "claims", "--plugin-dir", plugins, "--state-dir", state, "--config", conf, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info host.PluginInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Manifest == nil || info.Manifest.Name != "event-to-remote-claim" || info.Spec.Limits.MemoryMiB != 48 || info.Spec.Limits.Timeout != 750*time.Millisecond {
		t.Fatalf("info %+v", info)
	}
	if strings.Join(info.Requested, ",") != "propose.dynamicConfig" || strings.Join(info.Missing, ",") != "propose.dynamicConfig" ||
		strings.Join(info.Granted, ",") != "observe.cloud,kv,event.emit" {
		t.Fatalf("requested %v granted %v missing %v", info.Requested, info.Granted, info.Missing)
	}
	table, _, code := ctlPlugin(t, "plugin", "inspect", "claims", "--plugin-dir", plugins, "--state-dir", state, "--config", conf)
	if code != exitOK || !strings.Contains(table, "eventEmit.types=routerd.test.x") || !strings.Contains(table, "memory 48 MiB, timeout 750ms") {
		t.Fatalf("exit %d\n%s", code, table)
	}
	if _, errOut, code := ctlPlugin(t, "plugin", "inspect", "nope", "--plugin-dir", plugins, "--state-dir", state, "--config", conf); code != exitFailed || !strings.Contains(errOut, "nope.wasm") {
		t.Fatalf("missing plugin: exit %d %s", code, errOut)
	}
}

// storeWithEvents writes the observed events into a fresh store in state.
func storeWithEvents(t *testing.T, state string) {
	t.Helper()
	data, err := os.ReadFile(observedEvents)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	if err := json.Unmarshal(data, &evs); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range evs {
		evs[i].ObservedAt = now.Add(-time.Duration(len(evs)-i) * time.Minute)
		evs[i].ExpiresAt = now.Add(time.Hour)
	}
	st, err := store.Open(filepath.Join(state, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func TestPluginReplay(t *testing.T) {
	plugins, state, noConf := pluginDir(t, nil)
	storeWithEvents(t, state)
	same := filepath.Join(plugins, "event-to-remote-claim.wasm")
	echo := filepath.Join(plugins, "echo.wasm")
	v2 := wasmbuild.ForTest(t, "host/testdata/plugins/claim-v2")
	tests := []struct {
		name     string
		against  string
		wantCode int
		want     []string
	}{
		{name: "identical candidate", against: same, wantCode: exitOK, want: []string{`"differing": 0`, `"identical": 1`, "identical on 10 events"}},
		{name: "changed candidate", against: v2, wantCode: exitFailed, want: []string{`"differing": 1`, `"version": "2.0.0-test"`,
			`"onlyInstalled": [`, "RemoteAddressClaim/cloud-10-88-61-4", `"other": [`, "status.ttl"}},
		{name: "failing candidate", against: echo, wantCode: exitFailed, want: []string{`"differing": 1`, `"candidateError"`, "bad output", `"failures": 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins, "--state-dir", state,
				"--config-dir", noConf, "--replay", "24h", "--against", tt.against, "-o", "json")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s\n%s", code, tt.wantCode, errOut, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("dry-run from the store", func(t *testing.T) {
		out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins, "--state-dir", state,
			"--config-dir", noConf, "--since", "2h", "-o", "json")
		if code != exitOK || !strings.Contains(out, `"events": 10`) || !strings.Contains(out, "RemoteAddressClaim") {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
	})
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
