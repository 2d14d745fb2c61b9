package supervise

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the supervised child: with SUPERVISE_TEST_CHILD set it
// records its pid and arguments, then behaves as the variable says.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SUPERVISE_TEST_CHILD"); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

func childMain(mode string) int {
	dir := os.Getenv("SUPERVISE_TEST_DIR")
	group := ""
	for i, a := range os.Args {
		if a == "--group" && i+1 < len(os.Args) {
			group = os.Args[i+1]
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, group+".starts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return 3
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	f.Close()
	switch mode {
	case "crash":
		return 1
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Minute)
		return 0
	}
	// "serve": count SIGHUPs, run until SIGTERM, then leave a marker and exit 0.
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGHUP)
	timeout := time.After(time.Minute)
	for {
		select {
		case sig := <-ch:
			if sig == syscall.SIGHUP {
				f, _ := os.OpenFile(filepath.Join(dir, group+".reloads"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				fmt.Fprintln(f, "hup")
				f.Close()
				continue
			}
			_ = os.WriteFile(filepath.Join(dir, group+".stopped"), []byte("ok"), 0o644)
			return 0
		case <-timeout:
			return 4
		}
	}
}

func starts(t *testing.T, dir, group string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, group+".starts"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	return pids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newTestSupervisor(t *testing.T, mode string, opts Options) (*Supervisor, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts.Binary = exe
	opts.Env = append(os.Environ(), "SUPERVISE_TEST_CHILD="+mode, "SUPERVISE_TEST_DIR="+dir)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func TestSupervisorRestartsKilledChild(t *testing.T) {
	s, dir := newTestSupervisor(t, "serve", Options{BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err := s.SetGroups([]string{"lab", "corp"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both children", func() bool { return len(starts(t, dir, "lab")) == 1 && len(starts(t, dir, "corp")) == 1 })
	first := starts(t, dir, "lab")[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lab restarted", func() bool { return len(starts(t, dir, "lab")) == 2 })
	if got := starts(t, dir, "lab")[1]; got == first {
		t.Fatalf("restarted child has the old pid %d", got)
	}
	waitFor(t, "status shows the restart", func() bool {
		for _, c := range s.Status() {
			if c.Group == "lab" {
				return c.Running && c.Restarts == 1 && strings.Contains(c.LastExit, "killed")
			}
		}
		return false
	})
	if n := len(starts(t, dir, "corp")); n != 1 {
		t.Errorf("corp started %d times, want 1 (untouched)", n)
	}

	// Reload signals the running child without restarting it.
	time.Sleep(50 * time.Millisecond) // let the child install its signal handlers
	if err := s.Reload("corp"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "corp reload", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "corp.reloads"))
		return strings.Count(string(b), "hup") == 1
	})
	if err := s.Reload("nope"); err == nil {
		t.Error("Reload of an unknown group succeeded")
	}

	// Dropping a group stops its child gracefully.
	if err := s.SetGroups([]string{"corp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.stopped")); err != nil {
		t.Errorf("lab child was not stopped with SIGTERM: %v", err)
	}
	if st := s.Status(); len(st) != 1 || st[0].Group != "corp" {
		t.Errorf("status after SetGroups(corp) = %+v", st)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "corp.stopped")); err != nil {
		t.Errorf("corp child was not stopped with SIGTERM: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestSupervisorBacksOffCrashLoop(t *testing.T) {
	base := 40 * time.Millisecond
	s, dir := newTestSupervisor(t, "crash", Options{BackoffBase: base, BackoffMax: 320 * time.Millisecond})
	start := time.Now()
	if err := s.SetGroups([]string{"g"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "five starts", func() bool { return len(starts(t, dir, "g")) >= 5 })
	elapsed := time.Since(start)
	// Delays 40, 80, 160, 320 ms (±20%): at least ~480 ms for five starts; without
	// backoff five starts of a crashing process take a few tens of ms.
	if min := 480 * time.Millisecond; elapsed < min {
		t.Errorf("five starts took %v, want >= %v (exponential backoff)", elapsed, min)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := starts(t, dir, "g")
	time.Sleep(3 * base)
	if after := starts(t, dir, "g"); len(after) != len(st) {
		t.Errorf("child restarted after Shutdown: %d -> %d starts", len(st), len(after))
	}
}

func TestSupervisorKillsChildIgnoringTerm(t *testing.T) {
	s, dir := newTestSupervisor(t, "ignore-term", Options{StopTimeout: 200 * time.Millisecond})
	if err := s.SetGroups([]string{"g"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "child", func() bool { return len(starts(t, dir, "g")) == 1 })
	time.Sleep(50 * time.Millisecond) // let the child install its signal disposition
	pid := starts(t, dir, "g")[0]
	begin := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("shutdown took %v, want about the 200ms stop timeout", d)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("child %d still alive after Shutdown", pid)
	}
}
