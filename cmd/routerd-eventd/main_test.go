package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport/transporttest"
)

// The test binary runs as routerd-eventd when this variable is set, so the tests start
// real daemon processes without a separate build.
const asDaemonEnv = "ROUTERD_EVENTD_TEST_AS_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(asDaemonEnv) == "1" {
		main()
		return
	}
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for the process-output copier and the test; every
// write wakes waiters (waitLine), so the test reacts to the child's own lines.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLine waits until the output holds want (true), the process exits or timeout
// passes (false).
func (s *syncBuffer) waitLine(want string, exited chan error, timeout time.Duration) (bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if strings.Contains(s.String(), want) {
			return true, nil
		}
		select {
		case <-s.changed:
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("exited: %v", err)
		case <-t.C:
			return false, fmt.Errorf("no %q after %v", want, timeout)
		}
	}
}

type node struct {
	name, dir, addr string
	cmd             *exec.Cmd
	log             *syncBuffer
	exited          chan error
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const secret = "lab-shared-secret-0123456789abcdef\n"

// writeConfig writes node's conf.d: the EventGroup and one EventPeer per other node.
func writeConfig(t *testing.T, n *node, all []*node) {
	t.Helper()
	conf := filepath.Join(n.dir, "conf.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "lab.secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(n.addr)
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata:
  name: lab
spec:
  nodeName: %s
  auth:
    mode: hmac
    secretFile: %s
  listen:
    address: %s
    port: %s
  delivery:
    retryBase: 20ms
    retryMax: 200ms
`, n.name, filepath.Join(conf, "lab.secret"), host, port)
	for _, o := range all {
		if o == n {
			continue
		}
		fmt.Fprintf(&b, `---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata:
  name: %s
spec:
  groupRef: lab
  nodeName: %s
  endpoint: http://%s
`, o.name, o.name, o.addr)
	}
	if err := os.WriteFile(filepath.Join(conf, "federation.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *node) storePath() string { return filepath.Join(n.dir, "state", "routerd.db") }

// start runs routerd-eventd for n with the config dir.
func (n *node) start(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.dir, "none.yaml"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.startArgs(t, "--group", "lab", "--config-dir", filepath.Join(n.dir, "conf.d"),
		"--state-dir", filepath.Join(n.dir, "state"), "--log-level", "debug", "--settings", filepath.Join(n.dir, "none.yaml"))
}

// readyLine is what routerd-eventd logs once its receiver listens and the sender runs.
const readyLine = "routerd-eventd started"

// startArgs runs the test binary as routerd-eventd with args (working directory n.dir)
// and returns once the child logs readyLine.
func (n *node) startArgs(t *testing.T, args ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	n.log = newSyncBuffer()
	n.cmd = exec.Command(exe, args...)
	n.cmd.Dir = n.dir
	n.cmd.Env = append(os.Environ(), asDaemonEnv+"=1", "ROUTERD_SETTINGS=")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited, log := n.cmd, make(chan error, 1), n.log
	n.exited = exited
	go func() {
		err := cmd.Wait()
		exited <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", n.name, log.String())
		}
	})
	if ok, err := n.log.waitLine(readyLine, n.exited, 10*time.Second); !ok {
		t.Fatalf("%s not ready: %v\n%s", n.name, err, n.log.String())
	}
}

func newNodes(t *testing.T, names ...string) []*node {
	var nodes []*node
	for _, name := range names {
		nodes = append(nodes, &node{name: name, dir: t.TempDir(), addr: freePort(t)})
	}
	for _, n := range nodes {
		writeConfig(t, n, nodes)
	}
	return nodes
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func emit(t *testing.T, st *store.Store, src string, from, n int) {
	t.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			ID: fmt.Sprintf("ev-%s-%06d", src, from+i), Group: "lab", SourceNode: src,
			Type: "routerd.client.ipv4.observed", Subject: fmt.Sprintf("10.1.%d.%d", (from+i)/250, (from+i)%250),
			ObservedAt: time.Now(), ExpiresAt: time.Now().Add(30 * time.Minute),
		}
	}
	if _, err := st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, st *store.Store, src string) int64 {
	t.Helper()
	n, err := st.CountEvents(context.Background(), store.EventFilter{Group: "lab", SourceNode: src})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUsageErrors(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "help", args: []string{"--help"}, code: 0, want: "--group"},
		{name: "no group", args: []string{"--config-dir", t.TempDir(), "--state-dir", t.TempDir()}, code: 2, want: "--group is required"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, want: "unknown flag"},
		{name: "daemon without config file", args: []string{"daemon"}, code: 2, want: "daemon: --config-file is required"},
		{name: "group and config file", args: []string{"--group", "lab", "--config-file", "x.json"}, code: 2, want: "--group and --config-file exclude each other"},
		{name: "missing config file", args: []string{"daemon", "--config-file", filepath.Join(t.TempDir(), "none.json")}, code: 2, want: "none.json: no such file"},
		{name: "read timeout not positive", args: []string{"--group", "lab", "--read-timeout", "0s"}, code: 2, want: "--read-timeout 0s: must be positive"},
		{name: "unknown group", args: []string{"--group", "nope", "--config-dir", t.TempDir(), "--state-dir", t.TempDir()}, code: 2, want: `no EventGroup "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, tt.args...)
			cmd.Env = append(os.Environ(), asDaemonEnv+"=1", "ROUTERD_SETTINGS=")
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
}

// TestSenderKilledMidStream: node a is SIGKILLed while events stream in; after a restart
// every event reaches b exactly once.
func TestSenderKilledMidStream(t *testing.T) {
	nodes := newNodes(t, "a", "b")
	a, b := nodes[0], nodes[1]
	b.start(t)
	a.start(t)
	ast := openStore(t, a.storePath())
	bst := openStore(t, b.storePath())

	const total, chunk = 3000, 50
	for i := 0; i < total/2; i += chunk {
		emit(t, ast, "a", i, chunk)
	}
	transporttest.WaitUntil(t, 10*time.Second, "b to receive some events", func() bool { return count(t, bst, "a") > 0 })
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	a.exited <- nil
	got := count(t, bst, "a")
	t.Logf("b had %d of %d events when a was killed", got, total/2)
	for i := total / 2; i < total; i += chunk {
		emit(t, ast, "a", i, chunk)
	}
	a.start(t)
	transporttest.WaitUntil(t, 20*time.Second, "all events on b", func() bool { return count(t, bst, "a") == total })
	evs, err := bst.ListEvents(context.Background(), store.EventFilter{Group: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.Event.ID] {
			t.Fatalf("event %s stored twice on b", e.Event.ID)
		}
		seen[e.Event.ID] = true
	}
	if len(seen) != total {
		t.Fatalf("b holds %d distinct events, want %d", len(seen), total)
	}
	transporttest.WaitUntil(t, 10*time.Second, "a's outbox to be empty", func() bool {
		s, err := ast.PeerStats(context.Background(), "lab", time.Now())
		return err == nil && len(s) == 1 && s[0].Backlog == 0 && s[0].Delivered == total
	})

	// A graceful stop exits 0.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.exited:
		a.exited <- err
		if err != nil {
			t.Errorf("SIGTERM: exit %v, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a did not stop within 15s of SIGTERM")
	}
}

// TestReloadAddsPeer: SIGHUP applies a changed config; the new peer gets every event.
func TestReloadAddsPeer(t *testing.T) {
	nodes := newNodes(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	writeConfig(t, a, []*node{a, b}) // a starts knowing only b
	for _, n := range nodes {
		n.start(t)
	}
	ast := openStore(t, a.storePath())
	bst, cst := openStore(t, b.storePath()), openStore(t, c.storePath())
	emit(t, ast, "a", 0, 10)
	transporttest.WaitUntil(t, 10*time.Second, "b to receive", func() bool { return count(t, bst, "a") == 10 })
	if n := count(t, cst, "a"); n != 0 {
		t.Fatalf("c received %d events before it was a peer", n)
	}
	writeConfig(t, a, nodes)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	emit(t, ast, "a", 10, 5)
	transporttest.WaitUntil(t, 10*time.Second, "c to receive everything after the reload", func() bool { return count(t, cst, "a") == 15 })
	transporttest.WaitUntil(t, 10*time.Second, "b to receive the rest", func() bool { return count(t, bst, "a") == 15 })
	if !strings.Contains(a.log.String(), "reload: configuration applied") {
		t.Errorf("a did not log the reload:\n%s", a.log.String())
	}
}

// TestReceiverKilledMidStream: node b is SIGKILLed while a pushes to it; after b restarts
// the backlog drains and b holds every event exactly once.
func TestReceiverKilledMidStream(t *testing.T) {
	nodes := newNodes(t, "a", "b")
	a, b := nodes[0], nodes[1]
	b.start(t)
	a.start(t)
	ast := openStore(t, a.storePath())
	bst := openStore(t, b.storePath())
	const total, chunk = 2000, 50
	for i := 0; i < total/2; i += chunk {
		emit(t, ast, "a", i, chunk)
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.exited <- <-b.exited // observed; leave it for the cleanup
	t.Logf("b had %d of %d events when it was killed", count(t, bst, "a"), total/2)
	for i := total / 2; i < total; i += chunk {
		emit(t, ast, "a", i, chunk)
	}
	transporttest.WaitUntil(t, 10*time.Second, "a to notice that b is down", func() bool {
		s, err := ast.PeerStats(context.Background(), "lab", time.Now())
		return err == nil && len(s) == 1 && s[0].LastError != ""
	})
	restart := time.Now()
	b.start(t)
	t.Logf("b listening again after %v", time.Since(restart))
	transporttest.WaitUntil(t, 20*time.Second, "all events on b", func() bool { return count(t, bst, "a") == total })
	t.Logf("backlog drained %v after the restart", time.Since(restart))
	transporttest.WaitUntil(t, 10*time.Second, "a's outbox to be empty", func() bool {
		s, err := ast.PeerStats(context.Background(), "lab", time.Now())
		return err == nil && len(s) == 1 && s[0].Backlog == 0 && s[0].Delivered == total
	})
}

// writeLegacyConfig writes the JSON config of routerd v1alpha1's routerd-eventd for n
// (relative secretFile and statePath, as the original resolved them: against the working
// directory) with one peer per other node.
func writeLegacyConfig(t *testing.T, n *node, others []*node, withSecret bool) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.dir, "lab.secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(n.addr)
	var peers []string
	for _, o := range others {
		peers = append(peers, fmt.Sprintf(`{"nodeName": %q, "endpoint": "http://%s", "types": ["routerd.client.ipv4.observed"]}`, o.name, o.addr))
	}
	secretLine := `"secretFile": "lab.secret",`
	if !withSecret {
		secretLine = ""
	}
	cfg := fmt.Sprintf(`{
  "nodeName": %q,
  "group": "lab",
  "listen": {"address": %q, "port": %s},
  %s
  "replayWindow": "5m",
  "peers": [%s],
  "retention": {"maxEvents": 1000, "maxAge": "24h"},
  "pushRetry": {"maxAttempts": 3, "baseBackoff": "20ms", "maxBackoff": "200ms"},
  "pruneInterval": "1m",
  "statePath": "state/eventd.db"
}
`, n.name, host, port, secretLine, strings.Join(peers, ", "))
	path := filepath.Join(n.dir, "eventd.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLegacyConfigFile: a node started as routerd v1alpha1's units start routerd-eventd
// (daemon --config-file eventd.json) receives from and pushes to a node configured with
// resources.
func TestLegacyConfigFile(t *testing.T) {
	nodes := newNodes(t, "a", "b")
	a, b := nodes[0], nodes[1]
	cfg := writeLegacyConfig(t, b, []*node{a}, true)
	b.startArgs(t, "daemon", "--config-file", cfg, "--log-level", "debug")
	a.start(t)
	if !strings.Contains(b.log.String(), "pushRetry.maxAttempts") {
		t.Errorf("b does not warn that pushRetry.maxAttempts is ignored:\n%s", b.log.String())
	}
	ast := openStore(t, a.storePath())
	bst := openStore(t, filepath.Join(b.dir, "state", "eventd.db")) // statePath, relative to the working dir
	emit(t, ast, "a", 0, 20)
	transporttest.WaitUntil(t, 10*time.Second, "b to receive a's events", func() bool { return count(t, bst, "a") == 20 })
	emit(t, bst, "b", 0, 7)
	transporttest.WaitUntil(t, 10*time.Second, "a to receive b's events", func() bool { return count(t, ast, "b") == 7 })

	// --state-file overrides statePath; the form without "daemon" works too; SIGTERM
	// exits 0.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-b.exited; err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0", err)
	}
	b.exited <- nil
	other := filepath.Join(b.dir, "other.db")
	b.startArgs(t, "--config-file", cfg, "--state-file", other)
	if !strings.Contains(b.log.String(), "store="+other) {
		t.Errorf("b does not use --state-file %s:\n%s", other, b.log.String())
	}
}

func TestLegacyConfigWithoutSecret(t *testing.T) {
	n := &node{name: "b", dir: t.TempDir(), addr: freePort(t)}
	cfg := writeLegacyConfig(t, n, nil, false)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "daemon", "--config-file", cfg)
	cmd.Dir = n.dir
	cmd.Env = append(os.Environ(), asDaemonEnv+"=1", "ROUTERD_SETTINGS=")
	out, _ := cmd.CombinedOutput()
	want := "group lab has no auth: add spec.auth.secretFile"
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || !strings.Contains(string(out), want) {
		t.Fatalf("exit %d, want %d with %q:\n%s", code, exitUsage, want, out)
	}
}
