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

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/wasmbuild"
)

// serveUnix serves h on a Unix socket in a temp dir and returns its path.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routerd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}

// TestDoctorPlugins runs doctor plugins against a dead daemon, one that accepts and
// never answers, and a control API reporting plugins with problems.
func TestDoctorPlugins(t *testing.T) {
	statuses := []doctorPluginStatus{
		{PluginStatus: host.PluginStatus{Name: "claims", State: host.StateReady, Breaker: host.BreakerClosed.String(), Preemption: host.PreemptLoopCheck}},
		{PluginStatus: host.PluginStatus{Name: "flaky", State: host.StateCircuitOpen, Breaker: host.BreakerOpen.String(), LastError: "circuit open"},
			BreakerCause: "plugin flaky: call on_events: deadline exceeded", BreakerCauseKind: "deadline"},
		{PluginStatus: host.PluginStatus{Name: "slow", State: host.StateHalfOpen, Breaker: host.BreakerHalfOpen.String(), LastError: "plugin slow: trap", Preemption: host.PreemptCloseOnDone}},
		{PluginStatus: host.PluginStatus{Name: "nosy", State: host.StateReady, Breaker: host.BreakerClosed.String(), DeniedHostCalls: 3, Grants: []string{"log"}}},
		{PluginStatus: host.PluginStatus{Name: "broken", State: host.StateFailed, LastError: "abi major 2, want 1"}},
	}
	api := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/plugins" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(statuses)
	}))
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hung := serveUnix(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	garbage := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("<html>teapot</html>"))
	}))
	// A socket file left by a daemon that died: nobody listens.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
	if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		socket string
		want   []string // check/resource=status
		detail string
	}{
		{name: "dead daemon", socket: filepath.Join(t.TempDir(), "none.sock"), want: []string{"daemon=fail"}, detail: "no such file or directory"},
		{name: "dead daemon's socket file", socket: stale, want: []string{"daemon=fail"}, detail: "connection refused"},
		{name: "daemon that does not answer", socket: hung, want: []string{"daemon=fail"}, detail: "Timeout"},
		{name: "daemon answering garbage", socket: garbage, want: []string{"daemon=fail"}, detail: "control API: GET /v1/plugins: invalid character"},
		{name: "plugins with problems", socket: api, want: []string{
			"daemon=ok", "loaded/Plugin/broken=fail", "breaker/Plugin/flaky=fail", "breaker/Plugin/slow=warn", "denied-calls/Plugin/nosy=warn", "preemption=ok",
		}, detail: "Opened by: plugin flaky: call on_events: deadline exceeded (deadline)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, out := runCLI(t, "doctor", "plugins", "--control-socket", tt.socket, "--settings", settingsFile, "-o", "json")
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took)
			}
			var rep doctorReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if code != exitDoctorFail {
				t.Errorf("exit %d, want %d", code, exitDoctorFail)
			}
			var got, details []string
			for _, c := range rep.Checks {
				k := c.Name
				if c.Resource != "" {
					k += "/" + c.Resource
				}
				got = append(got, k+"="+c.Status)
				details = append(details, c.Details...)
			}
			for _, w := range tt.want {
				if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
					t.Errorf("no %s in %v", w, got)
				}
			}
			if !strings.Contains(strings.Join(details, "\n"), tt.detail) {
				t.Errorf("no detail contains %q:\n%s", tt.detail, out)
			}
		})
	}
}

// TestDoctorPluginsDaemon asks a real routerd (in this process, serving its control API
// on a Unix socket) with the bundled plugin loaded.
func TestDoctorPluginsDaemon(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/event-to-remote-claim"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, "event-to-remote-claim.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	s := settings.Settings{StateDir: filepath.Join(dir, "state"), PluginDir: pluginDir, ConfigDir: conf,
		ControlSocket: filepath.Join(dir, "run", "routerd.sock"), LogLevel: "info", LogFormat: "text"}
	d, err := daemon.New(context.Background(), daemon.Options{Settings: s, CacheDir: filepath.Join(os.TempDir(), "routerd-test-wasm-cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
	if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runCLI(t, "doctor", "plugins", "--control-socket", s.ControlSocket, "--settings", settingsFile, "-o", "json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if code != exitOK || !rep.OK {
		t.Fatalf("exit %d, ok %v\n%s", code, rep.OK, out)
	}
	var pre doctorCheck
	for _, c := range rep.Checks {
		if c.Name == "preemption" {
			pre = c
		}
	}
	if got := strings.Join(pre.Details, ","); !strings.Contains(got, "event-to-remote-claim: ") {
		t.Fatalf("preemption details %q do not name the loaded plugin\n%s", got, out)
	}
}
