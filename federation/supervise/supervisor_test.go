package supervise

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the supervised child: with SUPERVISE_TEST_CHILD set it
// behaves as the variable says. Every child prints "ready GROUP PID" once its signal
// handling is in place, "hup GROUP" per SIGHUP and "stopped GROUP" on SIGTERM; the test
// reads these lines from the supervisor's Stdout instead of sleeping.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SUPERVISE_TEST_CHILD"); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

func childMain(mode string) int {
	group := ""
	for i, a := range os.Args {
		if a == "--group" && i+1 < len(os.Args) {
			group = os.Args[i+1]
		}
	}
	ready := func() { fmt.Printf("ready %s %d\n", group, os.Getpid()) }
	// A bound on the child's life should the test die without stopping it.
	orphan := time.NewTimer(time.Minute)
	switch mode {
	case "crash":
		ready()
		return 1
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		ready()
		<-orphan.C
		return 0
	}
	// "serve": report SIGHUPs, run until SIGTERM, then exit 0.
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGHUP)
	ready()
	for {
		select {
		case sig := <-ch:
			if sig == syscall.SIGHUP {
				fmt.Printf("hup %s\n", group)
				continue
			}
			fmt.Printf("stopped %s\n", group)
			return 0
		case <-orphan.C:
			return 4
		}
	}
}

// childLines receives the children's output (Options.Stdout) and wakes waiters on
// every complete line.
type childLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{}
}

func newChildLines() *childLines { return &childLines{changed: make(chan struct{}, 1)} }

func (c *childLines) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.lines = append(c.lines, string(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// count returns how many lines are exactly want.
func (c *childLines) count(want string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if l == want {
			n++
		}
	}
	return n
}

// starts returns the pids of group's children in start order.
func (c *childLines) starts(t *testing.T, group string) []int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, l := range c.lines {
		if rest, ok := strings.CutPrefix(l, "ready "+group+" "); ok {
			n, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, n)
		}
	}
	return pids
}

// waitFor re-checks cond on every line a child prints and on a short ticker (for state
// the supervisor changes, such as Status), until it holds or 10s pass.
func (c *childLines) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-c.changed:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func newTestSupervisor(t *testing.T, mode string, opts Options, hook func(*Supervisor)) (*Supervisor, *childLines) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := newChildLines()
	opts.Binary = exe
	opts.Env = append(os.Environ(), "SUPERVISE_TEST_CHILD="+mode)
	opts.Stdout = out
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, out
}

// wait is one wait the supervisor asked its clock for; the test ends it by closing fire.
type wait struct {
	d    time.Duration
	fire chan time.Time
}

// fakeAfter returns a clock for Supervisor.after that hands every wait to the test.
func fakeAfter(waits chan wait) func(time.Duration) <-chan time.Time {
	return func(d time.Duration) <-chan time.Time {
		w := wait{d: d, fire: make(chan time.Time)}
		waits <- w
		return w.fire
	}
}

func nextWait(t *testing.T, waits chan wait) wait {
	t.Helper()
	select {
	case w := <-waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor asked for no wait within 10s")
		return wait{}
	}
}

func TestSupervisorRestartsKilledChild(t *testing.T) {
	s, out := newTestSupervisor(t, "serve", Options{BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, nil)
	if err := s.SetGroups([]string{"lab", "corp"}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "both children", func() bool { return len(out.starts(t, "lab")) == 1 && len(out.starts(t, "corp")) == 1 })
	first := out.starts(t, "lab")[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "lab restarted", func() bool { return len(out.starts(t, "lab")) == 2 })
	if got := out.starts(t, "lab")[1]; got == first {
		t.Fatalf("restarted child has the old pid %d", got)
	}
	out.waitFor(t, "status shows the restart", func() bool {
		for _, c := range s.Status() {
			if c.Group == "lab" {
				return c.Running && c.Restarts == 1 && strings.Contains(c.LastExit, "killed")
			}
		}
		return false
	})
	if n := len(out.starts(t, "corp")); n != 1 {
		t.Errorf("corp started %d times, want 1 (untouched)", n)
	}

	// Reload signals the running child (its handler is in place: it said ready) without
	// restarting it.
	if err := s.Reload("corp"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "corp reload", func() bool { return out.count("hup corp") == 1 })
	if err := s.Reload("nope"); err == nil {
		t.Error("Reload of an unknown group succeeded")
	}

	// Dropping a group stops its child gracefully; SetGroups returns once it exited, with
	// its output read.
	if err := s.SetGroups([]string{"corp"}); err != nil {
		t.Fatal(err)
	}
	if out.count("stopped lab") != 1 {
		t.Errorf("lab child was not stopped with SIGTERM")
	}
	if st := s.Status(); len(st) != 1 || st[0].Group != "corp" {
		t.Errorf("status after SetGroups(corp) = %+v", st)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.count("stopped corp") != 1 {
		t.Errorf("corp child was not stopped with SIGTERM")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestSupervisorBacksOffCrashLoop drives the restart delays through an injected clock
// with a fixed jitter draw: each crash waits twice as long as the previous, up to the
// maximum.
func TestSupervisorBacksOffCrashLoop(t *testing.T) {
	waits := make(chan wait)
	s, out := newTestSupervisor(t, "crash", Options{BackoffBase: 40 * time.Millisecond, BackoffMax: 320 * time.Millisecond},
		func(s *Supervisor) {
			s.after = fakeAfter(waits)
			s.rand = func() float64 { return 0.5 } // the middle of the ±20% jitter: no spread
		})
	if err := s.SetGroups([]string{"g"}); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{40, 80, 160, 320, 320}
	for i, ms := range want {
		w := nextWait(t, waits)
		if w.d != ms*time.Millisecond {
			t.Errorf("restart delay %d = %v, want %v", i+1, w.d, ms*time.Millisecond)
		}
		if n := len(out.starts(t, "g")); n != i+1 {
			t.Errorf("before delay %d the child started %d times, want %d", i+1, n, i+1)
		}
		if st := s.Status(); len(st) != 1 || st[0].Running || st[0].NextStart.IsZero() {
			t.Errorf("status while waiting = %+v, want not running with a next start", st)
		}
		close(w.fire)
	}
	// The sixth wait is pending when Shutdown comes: it returns once the restart loop has
	// ended, so no child can start afterwards.
	w := nextWait(t, waits)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(w.fire)
	if n := len(out.starts(t, "g")); n != len(want)+1 {
		t.Errorf("child started %d times, want %d", n, len(want)+1)
	}
}

func TestSupervisorKillsChildIgnoringTerm(t *testing.T) {
	waits := make(chan wait)
	s, out := newTestSupervisor(t, "ignore-term", Options{StopTimeout: 200 * time.Millisecond},
		func(s *Supervisor) { s.after = fakeAfter(waits) })
	if err := s.SetGroups([]string{"g"}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "child", func() bool { return len(out.starts(t, "g")) == 1 })
	pid := out.starts(t, "g")[0]
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	w := nextWait(t, waits)
	if w.d != 200*time.Millisecond {
		t.Errorf("stop wait = %v, want the 200ms StopTimeout", w.d)
	}
	// SIGTERM was sent and ignored: the child lives until the stop timeout ends.
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("child %d gone before the stop timeout: %v", pid, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned before the stop timeout: %v", err)
	default:
	}
	close(w.fire)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("child %d still alive after Shutdown", pid)
	}
}
