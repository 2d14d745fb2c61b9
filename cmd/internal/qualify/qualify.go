// Package qualify is the qualification harness of `routerctl qualify`: it runs the eight
// federation scenarios of routerd v1alpha1 (healthy, partition, ttl-refresh, restart,
// subscription, config-fault, security, multi-group) against real routerd and
// routerd-eventd processes — each router in its own network namespace when run as root,
// on 127.0.0.1 otherwise — and proves in every scenario that no event was lost and none
// was processed twice. Each run writes evidence: a JSON report and a Markdown summary,
// scanned afterwards for secret values.
//
// A run owns a work directory (routerd-qualify-<run id> in the temp dir, locked for the
// run's life) and namespaces named rdq<run id>-…; at start, the leftovers of runs whose
// lock is no longer held (a harness that was killed) are removed: their processes killed,
// namespaces deleted, directories removed.
package qualify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Scenarios lists the scenario names in run order.
var Scenarios = []string{"healthy", "partition", "ttl-refresh", "restart", "subscription", "config-fault", "security", "multi-group"}

// Results of a scenario.
const (
	Pass = "PASS"
	Fail = "FAIL"
	Skip = "SKIP"
)

// Options configure Run.
type Options struct {
	// Scenarios to run (default: all, in Scenarios order).
	Scenarios []string
	// Cycles is how many times the scenarios are run (default 1).
	Cycles int
	// Duration is each scenario's deadline (default 90s); a scenario still running then
	// is stopped and reported FAIL with the step it hung in.
	Duration time.Duration
	// Events is how many events each burst emits (default 20).
	Events int
	// EvidenceDir receives the reports (required).
	EvidenceDir string
	// AllowSkip lets a run with skipped scenarios pass.
	AllowSkip bool
	// BinDir holds routerd and routerd-eventd; RouterctlBinary is routerctl (for doctor
	// config), default BinDir/routerctl.
	BinDir          string
	RouterctlBinary string
	// GoodModule is event-to-remote-claim.wasm; TrapModule a module whose on_events
	// traps (testdata/plugins/trap). The subscription scenario is skipped without it.
	GoodModule string
	TrapModule string
	// Netns is auto (namespaces when root), on, or off (127.0.0.1).
	Netns string
	// Commit names the code under test in the evidence.
	Commit string
	// WorkRoot is where run directories are made (default os.TempDir()).
	WorkRoot string
	// Out receives one progress line per step; Logger the harness's own log.
	Out    io.Writer
	Logger *slog.Logger
	// Verbose prints every step as it starts.
	Verbose bool
	// OnStep, when set, is called with each step as it starts (tests use it to kill
	// the harness midway).
	OnStep func(scenario, step string)
}

func (o *Options) goodModule() string { return o.GoodModule }

// Assertion is one checked expectation.
type Assertion struct {
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	OK       bool   `json:"ok"`
}

// Step is one timed step of a scenario.
type Step struct {
	Name string  `json:"name"`
	MS   float64 `json:"ms"`
}

// ScenarioResult is one scenario of one cycle.
type ScenarioResult struct {
	Cycle      int         `json:"cycle"`
	Scenario   string      `json:"scenario"`
	Result     string      `json:"result"`
	Reason     string      `json:"reason,omitempty"`
	HungAt     string      `json:"hungAt,omitempty"`
	Mode       string      `json:"mode"`
	Notes      []string    `json:"notes,omitempty"`
	Started    time.Time   `json:"started"`
	DurationMS float64     `json:"durationMs"`
	Steps      []Step      `json:"steps"`
	Assertions []Assertion `json:"assertions"`
	// Lost and Duplicated sum the scenario's per-receiver counts (see docs/qualification.md).
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
}

// Report is the evidence of one run.
type Report struct {
	RunID     string           `json:"runId"`
	Commit    string           `json:"commit"`
	Mode      string           `json:"mode"`
	ModeNote  string           `json:"modeNote"`
	Started   time.Time        `json:"started"`
	Finished  time.Time        `json:"finished"`
	WallS     float64          `json:"wallSeconds"`
	Cycles    int              `json:"cycles"`
	Result    string           `json:"result"`
	Reasons   []string         `json:"reasons,omitempty"`
	Leftovers []string         `json:"leftoversCleaned,omitempty"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// SecretScan is the outcome of scanning the evidence dir for secret values.
	SecretScan SecretScan `json:"secretScan"`
}

// SecretScan records the evidence scan.
type SecretScan struct {
	Files   int      `json:"files"`
	Secrets int      `json:"secretsChecked"`
	Leaks   []string `json:"leaks"`
}

// runner is one run in progress.
type runner struct {
	opts    Options
	id      string
	work    string
	netns   bool
	lock    *os.File
	mu      sync.Mutex
	secrets []string
	pids    []int
}

func (r *runner) addSecret(s string) {
	r.mu.Lock()
	r.secrets = append(r.secrets, s)
	r.mu.Unlock()
}

func (r *runner) track(pid int) {
	r.mu.Lock()
	r.pids = append(r.pids, pid)
	r.mu.Unlock()
}

func (r *runner) cacheDir() string { return filepath.Join(r.work, "cache") }

// settingsFile is an empty daemon settings file, so that no /etc/routerd/routerd.yaml of
// the machine leaks into the routers: everything they need is in their flags.
func (r *runner) settingsFile() string { return filepath.Join(r.work, "settings.yaml") }

// nsPrefix is the namespace name prefix of one scenario: rdq<run id>-<scenario letter>-.
func (r *runner) nsPrefix(scenario string) string {
	i := slices.Index(Scenarios, scenario)
	return fmt.Sprintf("rdq%s-%d", r.id, i)
}

func (r *runner) printf(format string, args ...any) {
	if r.opts.Out != nil {
		fmt.Fprintf(r.opts.Out, format+"\n", args...)
	}
}

// workPrefix names every run directory.
const workPrefix = "routerd-qualify-"

// Run runs the scenarios and writes the evidence. The error is for a run that could not
// be made at all (bad options, no evidence dir); a run whose scenarios fail returns a
// Report with Result FAIL and no error.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	r := &runner{opts: opts}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	r.id = hex.EncodeToString(b)
	rep := &Report{RunID: r.id, Commit: opts.Commit, Started: time.Now().UTC(), Cycles: opts.Cycles, Scenarios: []ScenarioResult{}}
	rep.Leftovers = cleanLeftovers(opts.WorkRoot, opts.Logger)
	for _, l := range rep.Leftovers {
		r.printf("cleaned a leftover of a killed run: %s", l)
	}
	r.work = filepath.Join(opts.WorkRoot, workPrefix+r.id)
	if err := os.MkdirAll(r.cacheDir(), 0o700); err != nil {
		return nil, fmt.Errorf("qualify: work dir: %w", err)
	}
	if err := os.WriteFile(r.settingsFile(), []byte("{}\n"), 0o600); err != nil {
		return nil, fmt.Errorf("qualify: work dir: %w", err)
	}
	lock, err := lockDir(r.work)
	if err != nil {
		return nil, err
	}
	r.lock = lock
	defer func() {
		r.killAll()
		lock.Close()
		os.RemoveAll(r.work)
	}()
	switch opts.Netns {
	case "on", "auto":
		if err := netnsAvailable(); err == nil {
			r.netns = true
		} else if opts.Netns == "on" {
			return nil, err
		} else {
			rep.ModeNote = fmt.Sprintf("loopback: %v; routers share 127.0.0.1 and a partition stops the peer's receiver (SIGSTOP of its routerd-eventd) instead of taking a link down", err)
		}
	case "off":
		rep.ModeNote = "loopback (--netns off): routers share 127.0.0.1 and a partition stops the peer's receiver (SIGSTOP of its routerd-eventd) instead of taking a link down"
	}
	rep.Mode = "loopback"
	if r.netns {
		rep.Mode = "netns"
		rep.ModeNote = "each router (routerd and its routerd-eventd children) runs in its own network namespace, joined to the others by veth pairs; a partition takes the peer's link down (nftables drop rule for one group)"
	}
	r.printf("qualify run %s: %s mode, scenarios %s, %d cycle(s), evidence in %s", r.id, rep.Mode, strings.Join(opts.Scenarios, ","), opts.Cycles, opts.EvidenceDir)
	for cycle := 1; cycle <= opts.Cycles; cycle++ {
		for _, name := range opts.Scenarios {
			if ctx.Err() != nil {
				break
			}
			res := r.runScenario(ctx, cycle, name, rep.Mode)
			rep.Scenarios = append(rep.Scenarios, res)
			line := fmt.Sprintf("cycle %d %-13s %s %6.1fs lost=%d duplicated=%d", cycle, name, res.Result, res.DurationMS/1000, res.Lost, res.Duplicated)
			if res.Reason != "" {
				line += "  (" + res.Reason + ")"
			}
			r.printf("%s", line)
		}
	}
	rep.Finished = time.Now().UTC()
	rep.WallS = rep.Finished.Sub(rep.Started).Seconds()
	rep.Result = Pass
	for _, s := range rep.Scenarios {
		switch {
		case s.Result == Fail:
			rep.Result = Fail
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("cycle %d %s failed: %s", s.Cycle, s.Scenario, s.Reason))
		case s.Result == Skip && !opts.AllowSkip:
			rep.Result = Fail
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("cycle %d %s skipped (%s) and --allow-skip is not set", s.Cycle, s.Scenario, s.Reason))
		}
	}
	if ctx.Err() != nil {
		rep.Result = Fail
		rep.Reasons = append(rep.Reasons, "the run was interrupted: "+ctx.Err().Error())
	}
	if err := writeEvidence(opts.EvidenceDir, rep); err != nil {
		return rep, err
	}
	r.mu.Lock()
	secrets := slices.Clone(r.secrets)
	r.mu.Unlock()
	scan, err := ScanSecrets(opts.EvidenceDir, secrets)
	if err != nil {
		return rep, err
	}
	rep.SecretScan = scan
	if len(scan.Leaks) > 0 {
		rep.Result = Fail
		rep.Reasons = append(rep.Reasons, fmt.Sprintf("secret values found in the evidence: %s", strings.Join(scan.Leaks, ", ")))
	}
	// Rewrite with the scan's outcome (the scan itself holds no secret, only file names).
	if err := writeEvidence(opts.EvidenceDir, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

func (o *Options) defaults() error {
	if len(o.Scenarios) == 0 {
		o.Scenarios = slices.Clone(Scenarios)
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("qualify: unknown scenario %q: want some of %s", s, strings.Join(Scenarios, ", "))
		}
	}
	if o.Cycles <= 0 {
		o.Cycles = 1
	}
	if o.Duration <= 0 {
		o.Duration = 90 * time.Second
	}
	if o.Events <= 0 {
		o.Events = 20
	}
	if o.EvidenceDir == "" {
		return errors.New("qualify: no evidence dir: pass --evidence-dir DIR")
	}
	if o.Netns == "" {
		o.Netns = "auto"
	}
	if o.WorkRoot == "" {
		o.WorkRoot = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RouterctlBinary == "" {
		o.RouterctlBinary = filepath.Join(o.BinDir, "routerctl")
	}
	for _, f := range []string{filepath.Join(o.BinDir, "routerd"), filepath.Join(o.BinDir, "routerd-eventd"), o.RouterctlBinary} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("qualify: %s: %w (build the binaries: make build, or pass --bin-dir)", f, err)
		}
	}
	if _, err := os.Stat(o.GoodModule); err != nil {
		return fmt.Errorf("qualify: plugin module %s: %w (build it: make plugins, or pass --plugin-dir)", o.GoodModule, err)
	}
	return nil
}

// runScenario runs one scenario under its deadline, always tearing its routers down.
func (r *runner) runScenario(ctx context.Context, cycle int, name, mode string) ScenarioResult {
	res := ScenarioResult{Cycle: cycle, Scenario: name, Mode: mode, Started: time.Now().UTC(), Steps: []Step{}, Assertions: []Assertion{}}
	sc := &scenario{r: r, res: &res, name: name, last: time.Now()}
	sctx, cancel := context.WithTimeout(ctx, r.opts.Duration)
	defer cancel()
	dir := filepath.Join(r.work, fmt.Sprintf("c%d-%s", cycle, name))
	type outcome struct {
		err  error
		skip string
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		skip, err := scenarioFuncs[name](sctx, sc, dir)
		done <- outcome{err: err, skip: skip}
	}()
	var out outcome
	returned := true
	select {
	case out = <-done:
	case <-sctx.Done():
		// Give the scenario a moment to notice the deadline and return its own error.
		select {
		case out = <-done:
		case <-time.After(3 * time.Second):
			out.err = fmt.Errorf("did not return after its deadline")
			returned = false
		}
		if ctx.Err() == nil {
			res.HungAt = sc.current()
			out.err = fmt.Errorf("deadline %s exceeded in step %q: %v", r.opts.Duration, res.HungAt, out.err)
		}
	}
	if out.err != nil && returned && sc.c != nil && !sc.accounted && len(sc.emitted) > 0 {
		// Count what the failed scenario lost or duplicated so far, for the evidence.
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		if err := sc.account(actx, groupLab, groupLab2); err != nil {
			sc.note("counting after the failure: %v", err)
		}
		acancel()
	}
	sc.close(out.err != nil || slices.ContainsFunc(res.Assertions, func(a Assertion) bool { return !a.OK }))
	res.DurationMS = float64(time.Since(res.Started).Microseconds()) / 1000
	switch {
	case out.skip != "":
		res.Result, res.Reason = Skip, out.skip
	case out.err != nil:
		res.Result, res.Reason = Fail, out.err.Error()
	default:
		res.Result = Pass
		for _, a := range res.Assertions {
			if !a.OK {
				res.Result = Fail
				res.Reason = fmt.Sprintf("assertion %q: expected %s, got %s", a.Name, a.Expected, a.Actual)
				break
			}
		}
	}
	return res
}

// killAll SIGKILLs every process group the run started (they are normally gone).
func (r *runner) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range r.pids {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// writeEvidence writes report.json and summary.md.
func writeEvidence(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("qualify: evidence dir %s: %w", dir, err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("qualify: write evidence: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(Summary(rep)), 0o644); err != nil {
		return fmt.Errorf("qualify: write evidence: %w", err)
	}
	return nil
}

// Summary renders the Markdown summary of a report.
func Summary(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# routerd qualification %s: %s\n\n", rep.RunID, rep.Result)
	fmt.Fprintf(&b, "- commit: `%s`\n- mode: %s — %s\n- started %s, wall time %.1f s, %d cycle(s)\n",
		rep.Commit, rep.Mode, rep.ModeNote, rep.Started.Format(time.RFC3339), rep.WallS, rep.Cycles)
	fmt.Fprintf(&b, "- secret scan: %d files, %d secrets checked, %d leaks\n", rep.SecretScan.Files, rep.SecretScan.Secrets, len(rep.SecretScan.Leaks))
	if len(rep.Leftovers) > 0 {
		fmt.Fprintf(&b, "- leftovers of killed runs cleaned at start: %s\n", strings.Join(rep.Leftovers, ", "))
	}
	for _, r := range rep.Reasons {
		fmt.Fprintf(&b, "- **%s**\n", r)
	}
	b.WriteString("\n| cycle | scenario | result | seconds | lost | duplicated | assertions | note |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Scenarios {
		ok := 0
		for _, a := range s.Assertions {
			if a.OK {
				ok++
			}
		}
		note := s.Reason
		if note == "" && len(s.Notes) > 0 {
			note = strings.Join(s.Notes, "; ")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %.1f | %d | %d | %d/%d | %s |\n", s.Cycle, s.Scenario, s.Result, s.DurationMS/1000, s.Lost, s.Duplicated, ok, len(s.Assertions), strings.ReplaceAll(note, "|", "\\|"))
	}
	for _, s := range rep.Scenarios {
		fmt.Fprintf(&b, "\n## cycle %d %s: %s\n\n", s.Cycle, s.Scenario, s.Result)
		if s.HungAt != "" {
			fmt.Fprintf(&b, "hung in step: %s\n\n", s.HungAt)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- note: %s\n", n)
		}
		b.WriteString("\n| assertion | expected | actual | ok |\n|---|---|---|---|\n")
		for _, a := range s.Assertions {
			mark := "yes"
			if !a.OK {
				mark = "**NO**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", a.Name, a.Expected, strings.ReplaceAll(a.Actual, "|", "\\|"), mark)
		}
		b.WriteString("\nsteps: ")
		var parts []string
		for _, st := range s.Steps {
			parts = append(parts, fmt.Sprintf("%s %.0f ms", st.Name, st.MS))
		}
		b.WriteString(strings.Join(parts, " → ") + "\n")
	}
	return b.String()
}

// ScanSecrets reads every file under dir and reports the files holding any of secrets.
func ScanSecrets(dir string, secrets []string) (SecretScan, error) {
	scan := SecretScan{Secrets: len(secrets), Leaks: []string{}}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scan.Files++
		for i, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				scan.Leaks = append(scan.Leaks, fmt.Sprintf("%s holds secret #%d", path, i+1))
			}
		}
		return nil
	})
	if err != nil {
		return scan, fmt.Errorf("qualify: scan evidence %s: %w", dir, err)
	}
	return scan, nil
}
