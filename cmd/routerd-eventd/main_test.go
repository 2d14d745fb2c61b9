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
)

// The test binary runs as routerd-eventd when this variable is set, so the tests start
// real daemon processes without a separate build.
const asDaemonEnv = "ROUTERD_EVENTD_TEST_AS_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(asDaemonEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for the process-output copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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

// start runs routerd-eventd for n.
func (n *node) start(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	n.log = &syncBuffer{}
	n.cmd = exec.Command(exe, "--group", "lab", "--config-dir", filepath.Join(n.dir, "conf.d"),
		"--state-dir", filepath.Join(n.dir, "state"), "--log-level", "debug", "--settings", filepath.Join(n.dir, "none.yaml"))
	n.cmd.Env = append(os.Environ(), asDaemonEnv+"=1", "ROUTERD_SETTINGS=")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := os.WriteFile(filepath.Join(n.dir, "none.yaml"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", n.addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-n.exited:
			n.exited <- err
			t.Fatalf("%s exited at start: %v\n%s", n.name, err, n.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s:\n%s", n.name, n.addr, n.log.String())
		}
		time.Sleep(20 * time.Millisecond)
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

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "b to receive some events", func() bool { return count(t, bst, "a") > 0 })
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
	waitFor(t, 20*time.Second, "all events on b", func() bool { return count(t, bst, "a") == total })
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
	waitFor(t, 10*time.Second, "a's outbox to be empty", func() bool {
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
	waitFor(t, 10*time.Second, "b to receive", func() bool { return count(t, bst, "a") == 10 })
	if n := count(t, cst, "a"); n != 0 {
		t.Fatalf("c received %d events before it was a peer", n)
	}
	writeConfig(t, a, nodes)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	emit(t, ast, "a", 10, 5)
	waitFor(t, 10*time.Second, "c to receive everything after the reload", func() bool { return count(t, cst, "a") == 15 })
	waitFor(t, 10*time.Second, "b to receive the rest", func() bool { return count(t, bst, "a") == 15 })
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
		time.Sleep(2 * time.Millisecond)
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.exited <- <-b.exited // observed; leave it for the cleanup
	t.Logf("b had %d of %d events when it was killed", count(t, bst, "a"), total/2)
	for i := total / 2; i < total; i += chunk {
		emit(t, ast, "a", i, chunk)
	}
	time.Sleep(100 * time.Millisecond) // a retries against a dead peer meanwhile
	restart := time.Now()
	b.start(t)
	t.Logf("b listening again after %v", time.Since(restart))
	waitFor(t, 20*time.Second, "all events on b", func() bool { return count(t, bst, "a") == total })
	t.Logf("backlog drained %v after the restart", time.Since(restart))
	waitFor(t, 10*time.Second, "a's outbox to be empty", func() bool {
		s, err := ast.PeerStats(context.Background(), "lab", time.Now())
		return err == nil && len(s) == 1 && s[0].Backlog == 0 && s[0].Delivered == total
	})
}
