package main

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"routerd.net/routerd/host"
)

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
