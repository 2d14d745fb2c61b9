package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/host"
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
	statuses := []host.PluginStatus{
		{Name: "claims", State: host.StateReady, Breaker: host.BreakerClosed.String(), Preemption: host.PreemptLoopCheck},
		{Name: "flaky", State: host.StateCircuitOpen, Breaker: host.BreakerOpen.String(), LastError: "plugin flaky: call on_events: deadline exceeded", Preemption: host.PreemptCloseOnDone},
		{Name: "nosy", State: host.StateReady, Breaker: host.BreakerClosed.String(), DeniedHostCalls: 3, Grants: []string{"log"}},
		{Name: "broken", State: host.StateFailed, LastError: "abi major 2, want 1"},
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
		{name: "daemon that does not answer", socket: hung, want: []string{"daemon=fail"}, detail: "Timeout"},
		{name: "plugins with problems", socket: api, want: []string{
			"daemon=ok", "loaded/Plugin/broken=fail", "breaker/Plugin/flaky=fail", "denied-calls/Plugin/nosy=warn", "preemption=ok",
		}, detail: "Opened by: plugin flaky: call on_events: deadline exceeded."},
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
