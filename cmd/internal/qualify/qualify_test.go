package qualify

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/host/wasmbuild"
)

// bins are the binaries and modules every test uses, built once.
type bins struct {
	dir, plugins, good, trap string
}

var (
	binsOnce sync.Once
	binsVal  bins
	binsErr  error
)

// buildBins builds routerd, routerd-eventd and routerctl with go build into a temp dir
// and the event-to-remote-claim and trap modules with wasmbuild.
func buildBins(t testing.TB) bins {
	t.Helper()
	binsOnce.Do(func() {
		root, err := wasmbuild.RepoRoot()
		if err != nil {
			binsErr = err
			return
		}
		dir, err := os.MkdirTemp("", "qualify-bin-")
		if err != nil {
			binsErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/routerd", "./cmd/routerd-eventd", "./cmd/routerctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binsErr = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		ctx := context.Background()
		good, err := wasmbuild.Build(ctx, filepath.Join(root, "plugins/event-to-remote-claim"), wasmbuild.Options{})
		if err != nil {
			binsErr = err
			return
		}
		trap, err := wasmbuild.Build(ctx, filepath.Join(root, "testdata/plugins/trap"), wasmbuild.Options{})
		if err != nil {
			binsErr = err
			return
		}
		plugins := filepath.Join(dir, "plugins")
		if err := os.MkdirAll(plugins, 0o755); err != nil {
			binsErr = err
			return
		}
		if err := copyFile(good, filepath.Join(plugins, pluginModule)); err != nil {
			binsErr = err
			return
		}
		binsVal = bins{dir: dir, plugins: plugins, good: good, trap: trap}
	})
	if binsErr != nil {
		t.Fatalf("build the binaries: %v", binsErr)
	}
	return binsVal
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binsVal.dir != "" {
		os.RemoveAll(binsVal.dir)
	}
	os.Exit(code)
}

func options(t testing.TB, b bins) Options {
	return Options{
		BinDir: b.dir, GoodModule: b.good, TrapModule: b.trap, Events: 10, Duration: 60 * time.Second,
		EvidenceDir: filepath.Join(t.TempDir(), "evidence"), WorkRoot: t.TempDir(), Commit: "test",
	}
}

// TestShortCycle runs one short cycle of all eight scenarios (namespaces as root,
// 127.0.0.1 otherwise) and checks the evidence.
func TestShortCycle(t *testing.T) {
	b := buildBins(t)
	o := options(t, b)
	var out strings.Builder
	o.Out = &out
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if rep.Result != Pass {
		sum, _ := os.ReadFile(filepath.Join(o.EvidenceDir, "summary.md"))
		t.Fatalf("run %s: %s: %v\n%s", rep.RunID, rep.Result, rep.Reasons, sum)
	}
	var got []string
	for _, s := range rep.Scenarios {
		got = append(got, s.Scenario)
		if s.Lost != 0 || s.Duplicated != 0 || len(s.Assertions) == 0 {
			t.Errorf("%s: lost %d, duplicated %d, %d assertions", s.Scenario, s.Lost, s.Duplicated, len(s.Assertions))
		}
	}
	if !slices.Equal(got, Scenarios) {
		t.Errorf("scenarios run: %v, want %v", got, Scenarios)
	}
	js, err := os.ReadFile(filepath.Join(o.EvidenceDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.RunID != rep.RunID || back.Commit != "test" || len(back.Scenarios) != len(Scenarios) || back.SecretScan.Files != 2 || len(back.SecretScan.Leaks) != 0 {
		t.Errorf("report.json: run %s commit %s, %d scenarios, scan %+v", back.RunID, back.Commit, len(back.Scenarios), back.SecretScan)
	}
	if left := Leftovers(o.WorkRoot); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("short cycle: %.1f s wall (BenchmarkQualifyShort prints BENCH qualify_short_s)", rep.WallS)
}

// TestDeadline: a scenario still running at its deadline fails, naming the step it hung
// in, and its routers and namespaces are gone afterwards.
func TestDeadline(t *testing.T) {
	b := buildBins(t)
	o := options(t, b)
	o.Scenarios = []string{"partition"} // needs seconds for the SLO violation to show
	o.Duration = 2500 * time.Millisecond
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Scenarios[0]
	if rep.Result != Fail || s.Result != Fail || s.HungAt == "" || !strings.Contains(s.Reason, "deadline") || !strings.Contains(s.Reason, s.HungAt) {
		t.Fatalf("got run %s, scenario %s, hung at %q, reason %q", rep.Result, s.Result, s.HungAt, s.Reason)
	}
	if left := Leftovers(o.WorkRoot); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	assertNoNamespaces(t, "rdq"+rep.RunID)
	logs, _ := filepath.Glob(filepath.Join(o.EvidenceDir, "logs", "*.log"))
	if len(logs) == 0 {
		t.Errorf("no router logs kept in %s for the failed scenario", o.EvidenceDir)
	}
}

func assertNoNamespaces(t *testing.T, prefix string) {
	t.Helper()
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// TestKilledRunIsCleanedUp kills a routerctl qualify process midway (SIGKILL, so it
// cannot clean up) and checks that the next run removes what it left and starts clean.
func TestKilledRunIsCleanedUp(t *testing.T) {
	b := buildBins(t)
	root := t.TempDir()
	cmd := exec.Command(filepath.Join(b.dir, "routerctl"), "qualify", "--scenarios", "partition", "--verbose",
		"--evidence-dir", filepath.Join(t.TempDir(), "ev"), "--bin-dir", b.dir, "--plugin-dir", b.plugins,
		"--trap-module", b.trap, "--duration", "60s")
	cmd.Env = append(os.Environ(), "TMPDIR="+root)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Kill it once the partition is in place and routers are running.
	midway := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "wait for the SLO violation") {
				found = true
				midway <- true
			}
		}
		if !found {
			midway <- false
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-midway:
		if !ok {
			t.Fatal("the harness ended before the partition step")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the harness never reached the partition step")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	left := Leftovers(root)
	if len(left) == 0 {
		t.Fatal("the killed run left nothing behind: the test proves nothing")
	}
	t.Logf("left by the killed run: %v", left)

	o := options(t, b)
	o.WorkRoot = root
	o.Scenarios = []string{"security"}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Result != Pass {
		t.Fatalf("second run: %s %v", rep.Result, rep.Reasons)
	}
	if len(rep.Leftovers) == 0 {
		t.Error("the second run reports no cleaned leftovers")
	}
	if left := Leftovers(root); len(left) > 0 {
		t.Errorf("still left after the second run: %v", left)
	}
	for _, l := range left {
		if strings.HasPrefix(l, "namespace ") {
			if _, err := os.Stat(filepath.Join("/run/netns", strings.TrimPrefix(l, "namespace "))); err == nil {
				t.Errorf("%s still exists", l)
			}
		}
	}
}

// TestSkip: a skipped scenario fails the run unless AllowSkip, and names its reason.
func TestSkip(t *testing.T) {
	b := buildBins(t)
	for _, tc := range []struct {
		name      string
		allowSkip bool
		want      string
	}{
		{name: "skip fails the run", allowSkip: false, want: Fail},
		{name: "allowed skip passes", allowSkip: true, want: Pass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t, b)
			o.Scenarios, o.TrapModule, o.AllowSkip = []string{"subscription"}, "", tc.allowSkip
			rep, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Scenarios[0]
			if rep.Result != tc.want || s.Result != Skip || !strings.Contains(s.Reason, "trap") {
				t.Fatalf("run %s (want %s), scenario %s, reason %q, run reasons %v", rep.Result, tc.want, s.Result, s.Reason, rep.Reasons)
			}
		})
	}
}

func TestScanSecrets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		leaks int
	}{
		{name: "clean", files: map[string]string{"report.json": `{"ok":true}`, "logs/x.log": "nothing"}, leaks: 0},
		{name: "secret in a log", files: map[string]string{"report.json": `{}`, "logs/x.log": "key=s3cr3t-value"}, leaks: 1},
		{name: "secret in two files", files: map[string]string{"a": "s3cr3t-value", "b": "xx s3cr3t-value"}, leaks: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			scan, err := ScanSecrets(dir, []string{"s3cr3t-value", "other"})
			if err != nil {
				t.Fatal(err)
			}
			if len(scan.Leaks) != tc.leaks || scan.Files != len(tc.files) {
				t.Fatalf("got %+v, want %d leaks in %d files", scan, tc.leaks, len(tc.files))
			}
			for _, l := range scan.Leaks {
				if strings.Contains(l, "s3cr3t") {
					t.Errorf("the leak report repeats the secret: %s", l)
				}
			}
		})
	}
}
