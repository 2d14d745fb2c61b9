package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/buildinfo"
	"routerd.net/routerd/cmd/internal/qualify"
	"routerd.net/routerd/host/wasmbuild"
)

func init() { addCommand(newQualifyCmd) }

func newQualifyCmd() *cobra.Command {
	var (
		o          qualify.Options
		scenarios  string
		pluginDir  string
		trapSource string
	)
	cmd := &cobra.Command{
		Use:   "qualify",
		Short: "Run the federation qualification scenarios with real routers and write evidence",
		Long: `routerctl qualify starts real routerd processes (each with its routerd-eventd children)
and runs the federation scenarios of a release qualification against them:

  healthy       events from each router reach every peer within the SLO; doctor healthy,
                no SLO violation, no remediation action
  partition     a peer is cut; events queue, an SLO violation and its remediation action
                appear; after healing everything is delivered and doctor is healthy
  ttl-refresh   events re-emitted with a longer TTL during a partition reach the peer
                afterwards with the new expiry; no stale-ttl finding remains
  restart       SIGKILL of the sender, then of the receiver, mid-stream; delivery resumes
  subscription  the plugin module is replaced by one that traps; runs are recorded failed;
                a hot replace with the good module processes the backlog exactly once
  config-fault  a bogus EventPeer is refused on reload, the config digest is unchanged,
                doctor config names the fault
  security      bad signature, stale timestamp, malformed body and replay are rejected,
                each reason counted in /v1/status, nothing stored
  multi-group   two groups with their own secrets; a fault in one shows only in that
                group's SLO report and remediation targets

Every scenario also proves that no event was lost and none was processed twice (see
docs/qualification.md). As root each router runs in its own network namespace and a
partition takes a link down; otherwise the routers share 127.0.0.1 and a partition stops
the peer's receiver (the evidence says which).

Evidence: --evidence-dir gets report.json (run id, commit, cycle, scenario, result,
assertions with expected and actual, step timings) and summary.md; the run fails if a
secret value of the run appears in any file there. A skipped scenario fails the run
unless --allow-skip. Exit code 0 when every scenario passed, 1 otherwise.`,
		Example: `  make qualify
  routerctl qualify --evidence-dir /tmp/evidence
  routerctl qualify --scenarios partition,restart --cycles 3 --evidence-dir /tmp/evidence`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.EvidenceDir == "" {
				return usagef("--evidence-dir is required: the directory the report and summary are written to")
			}
			if scenarios != "" && scenarios != "all" {
				for _, s := range strings.Split(scenarios, ",") {
					o.Scenarios = append(o.Scenarios, strings.TrimSpace(s))
				}
			}
			if o.BinDir == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				o.BinDir = filepath.Dir(exe)
			}
			o.GoodModule = filepath.Join(pluginDir, "event-to-remote-claim.wasm")
			if o.TrapModule == "" && trapSource != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
				p, err := wasmbuild.Build(ctx, trapSource, wasmbuild.Options{})
				cancel()
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "routerctl qualify: the trapping module could not be built from %s (%v); the subscription scenario will be skipped\n", trapSource, err)
				} else {
					o.TrapModule = p
				}
			}
			o.Commit = commitOf()
			o.Out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := qualify.Run(ctx, o)
			if err != nil {
				if rep == nil {
					return usagef("%v", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "qualify %s: %s in %.1f s; evidence %s\n", rep.RunID, rep.Result, rep.WallS, o.EvidenceDir)
			for _, r := range rep.Reasons {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", r)
			}
			if rep.Result != qualify.Pass {
				return silentFailure
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&scenarios, "scenarios", "all", "comma-separated scenarios: "+strings.Join(qualify.Scenarios, ","))
	fs.IntVar(&o.Cycles, "cycles", 1, "how many times to run the scenarios")
	fs.DurationVar(&o.Duration, "duration", 90*time.Second, "deadline of each scenario; one still running then fails, naming the step it hung in")
	fs.IntVar(&o.Events, "events", 20, "events per burst")
	fs.StringVar(&o.EvidenceDir, "evidence-dir", "", "directory for report.json and summary.md (required)")
	fs.BoolVar(&o.AllowSkip, "allow-skip", false, "let a run with skipped scenarios pass (each skip still names its reason)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory with routerd, routerd-eventd and routerctl (default: next to routerctl)")
	fs.StringVar(&pluginDir, "plugin-dir", "bin/plugins", "directory with event-to-remote-claim.wasm (make plugins)")
	fs.StringVar(&o.TrapModule, "trap-module", "", "a module whose on_events traps (default: built from --trap-source)")
	fs.StringVar(&trapSource, "trap-source", "testdata/plugins/trap", "Go source of the trapping module, built when --trap-module is not given")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "print every step of every scenario as it starts")
	fs.StringVar(&o.Netns, "netns", "auto", "routers in network namespaces: auto (when root), on, off (127.0.0.1)")
	return cmd
}

// commitOf names the code under test: git's HEAD when in a checkout, else the version.
func commitOf() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err == nil {
		c := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			c += "-dirty"
		}
		return c
	}
	return buildinfo.Get()
}
