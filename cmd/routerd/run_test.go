package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/democonfig"
)

// apiClient talks HTTP to the control socket.
func apiClient(socket string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// TestRunCommandSignals runs `routerd run` in-process: SIGHUP reloads, cancelling the
// context (what SIGTERM does in main) shuts down cleanly and removes the socket.
func TestRunCommandSignals(t *testing.T) {
	dir := t.TempDir()
	ports, err := democonfig.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf.d")
	if _, err := democonfig.Prepare("../../testdata/demo/router-a", conf, map[string]int{"router-a": ports[0], "router-b": ports[1], "router-c": ports[2]}, strings.Repeat("cd", 32)); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "routerd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan *daemon.Daemon, 1)
	onStarted = func(d *daemon.Daemon) { started <- d }
	defer func() { onStarted = nil }()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config-dir", conf, "--state-dir", filepath.Join(dir, "state"), "--plugin-dir", filepath.Join(dir, "plugins"),
			"--control-socket", sock, "--metrics-address", "", "--no-eventd", "--no-config-watch", "--log-level", "warn"})
	}()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	var d *daemon.Daemon
	select {
	case d = <-started:
	case code := <-done:
		t.Fatalf("run exited %d before the daemon started", code)
	case <-wctx.Done():
		t.Fatal("the daemon did not start within 30s")
	}
	// The control socket serves once the daemon runs.
	resp, err := apiClient(sock).Get("http://routerd/v1/status")
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	resp.Body.Close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if n, err := d.WaitReload(wctx, 0); n != 1 || err != nil {
		t.Fatalf("after SIGHUP: %d reloads, last error %v; want 1 successful", n, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run exited %d after shutdown", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the context ended")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("control socket left behind: %v", err)
	}
}
