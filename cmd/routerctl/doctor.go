package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/dataplane/netlinkdp"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/schemas"
)

func init() {
	addCommand(newDoctorCmd)
	addDoctorArea(dataplaneDoctorArea)
}

// doctorCheck is one finding of any doctor area, as printed (-o table) and encoded
// (-o json|yaml). The JSON shape is a stable interface (docs/doctor.md): fields are only
// ever added.
type doctorCheck struct {
	// Area is the doctor area (config, federation, plugins, dataplane, hybrid).
	Area string `json:"area"`
	// Name is the check's name within its area (for federation the COMPAT check name).
	Name string `json:"name"`
	// Status is ok, warn or fail.
	Status string `json:"status"`
	// Summary is one line saying what was found.
	Summary string `json:"summary"`
	// Details are further lines: the cause, each problem, the next step.
	Details []string `json:"details,omitempty"`
	// Group, Peer and Resource say what the finding is about, when it is about one.
	Group    string `json:"group,omitempty"`
	Peer     string `json:"peer,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Remediation is the federation/remediation action that fixes a warn or fail
	// finding, where one applies (routerctl remediation plan|run).
	Remediation string `json:"remediation,omitempty"`
}

// doctorReport is what `routerctl doctor ...` prints.
type doctorReport struct {
	// OK is true when no check warned or failed.
	OK bool `json:"ok"`
	// Status is the worst status of the checks: ok, warn or fail.
	Status string        `json:"status"`
	Checks []doctorCheck `json:"checks"`
}

// doctorArea is one group of checks: `routerctl doctor <name>` runs it, `routerctl doctor`
// runs every area. Another command file registers its area with addDoctorArea in init.
type doctorArea struct {
	name  string
	short string
	long  string
	// flags adds the area's own flags to its subcommand and to `doctor`; flag names
	// must be unique across areas (cobra panics on a duplicate).
	flags func(cmd *cobra.Command)
	run   func(ctx context.Context, cmd *cobra.Command) ([]doctorCheck, error)
}

// doctorAreas are the registered areas, in the order `routerctl doctor` runs them.
var doctorAreas []doctorArea

// doctorAreaOrder is the order `routerctl doctor` runs and prints the areas in; an area
// not listed runs after them.
var doctorAreaOrder = []string{"config", "federation", "plugins", "dataplane", "hybrid"}

// addDoctorArea registers an area; it panics on a duplicate name.
func addDoctorArea(a doctorArea) {
	for _, have := range doctorAreas {
		if have.name == a.name {
			panic("routerctl: doctor area " + a.name + " registered twice")
		}
	}
	doctorAreas = append(doctorAreas, a)
	rank := func(name string) int {
		if i := slices.Index(doctorAreaOrder, name); i >= 0 {
			return i
		}
		return len(doctorAreaOrder)
	}
	slices.SortStableFunc(doctorAreas, func(x, y doctorArea) int { return rank(x.name) - rank(y.name) })
}

// Doctor check statuses, from best to worst.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
)

// statusRank orders the statuses (an unknown one counts as fail).
func statusRank(s string) int {
	switch s {
	case checkOK:
		return 0
	case checkWarn:
		return 1
	}
	return 2
}

// doctorAreaTimeout bounds one area: an area whose probes do not return in time is
// reported as a failed check, never waited for.
const doctorAreaTimeout = 20 * time.Second

func newDoctorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the node for problems (every area, or one: " + areaNames() + ")",
		Long: `doctor checks the node and reports each finding as ok, warn or fail, with detail
lines naming the cause and the next step, and for a federation failure the remediation
action (routerctl remediation plan|run). Without a subcommand every area is checked:
config, federation, plugins, dataplane, hybrid. Every probe has a timeout; a dead daemon,
a missing store or a peer that does not answer is a finding, never a hang.

-o json prints {ok, status, checks[{area, name, status, summary, details, group, peer,
resource, remediation}]} (docs/doctor.md).

Exit codes: 0 every check ok, 1 a warning (no failure), 2 a failure (or a usage error).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd, doctorAreas)
		},
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().String("netns", "", "network namespace the dataplane and hybrid areas check (ip netns name; default: the current one)")
	for _, a := range doctorAreas {
		a := a
		sub := &cobra.Command{
			Use:   a.name,
			Short: a.short,
			Long:  a.long,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runDoctor(cmd, []doctorArea{a})
			},
		}
		if a.flags != nil {
			a.flags(sub)
			a.flags(cmd)
		}
		cmd.AddCommand(sub)
	}
	return cmd
}

func areaNames() string {
	names := make([]string, len(doctorAreas))
	for i, a := range doctorAreas {
		names[i] = a.name
	}
	return strings.Join(names, ", ")
}

// runDoctor runs areas, prints the report in the -o format and ends with the exit code
// of the worst status (warn 1, fail 2). An area that cannot run at all, or does not
// finish within doctorAreaTimeout, is reported as a failed check.
func runDoctor(cmd *cobra.Command, areas []doctorArea) error {
	if _, err := outputFormat(cmd); err != nil {
		return err
	}
	rep := doctorReport{OK: true, Status: checkOK, Checks: []doctorCheck{}}
	for _, a := range areas {
		checks, err := runDoctorArea(cmd, a)
		if err != nil {
			var ue usageError
			if errors.As(err, &ue) {
				return err
			}
			checks = append(checks, doctorCheck{Area: a.name, Name: "run", Status: checkFail, Summary: "the checks could not run", Details: []string{err.Error()}})
		}
		for _, c := range checks {
			if statusRank(c.Status) > statusRank(rep.Status) {
				rep.Status = c.Status
			}
		}
		rep.Checks = append(rep.Checks, checks...)
	}
	rep.OK = rep.Status == checkOK
	if err := render(cmd, rep, func() *table {
		t := &table{header: []string{"AREA", "CHECK", "STATUS", "SUMMARY"}}
		for _, c := range rep.Checks {
			t.addRow(c.Area, c.Name, strings.ToUpper(c.Status), c.Summary)
			for _, d := range c.Details {
				t.addRow("", "", "", "  "+d)
			}
			if c.Remediation != "" && c.Status != checkOK {
				t.addRow("", "", "", "  remediation: "+c.Remediation)
			}
		}
		return t
	}); err != nil {
		return err
	}
	switch rep.Status {
	case checkOK:
		return nil
	case checkWarn:
		return exitWith(exitFailed)
	}
	return exitWith(exitDoctorFail)
}

// exitDoctorFail is doctor's exit code when a check failed (a warning is exitFailed).
const exitDoctorFail = 2

// runDoctorArea runs one area under doctorAreaTimeout. The area's probes honour the
// context; should one not, the area is reported as timed out and left behind (the
// process exits after the report).
func runDoctorArea(cmd *cobra.Command, a doctorArea) ([]doctorCheck, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), doctorAreaTimeout)
	defer cancel()
	type result struct {
		checks []doctorCheck
		err    error
	}
	done := make(chan result, 1)
	go func() {
		checks, err := a.run(ctx, cmd)
		done <- result{checks, err}
	}()
	select {
	case r := <-done:
		return r.checks, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: did not finish within %s: %w", a.name, doctorAreaTimeout, ctx.Err())
	}
}

// dataplaneDoctorArea compares the desired dataplane (from the config dir) with the
// kernel of a network namespace.
var dataplaneDoctorArea = doctorArea{
	name:  "dataplane",
	short: "Check routes, addresses, proxy neighbors and routerd's nftables table against the config",
	long: `doctor dataplane builds the desired dataplane from the resource documents in the config
dir (OverlayPeer, HybridRoute, RemoteAddressClaim including unexpired DynamicConfigParts,
MSSClamp) plus the live dynamic parts in the node's store (--state-dir), as routerd does,
and compares it with the kernel of the network namespace (--netns, default the
current one). Checks:

  references      peers, domains and addresses the resources refer to exist and parse
  interfaces      every interface the desired state uses exists
  drift           every desired object is present and unchanged; routerd has nothing extra
  nft-foreign     table inet routerd holds only what routerd wrote
  foreign-routes  no foreign route shadows a prefix routerd routes

Reading routerd's nftables table needs root (CAP_NET_ADMIN).`,
	run: runDataplaneDoctor,
}

// dataplaneDesired is the desired state routerd works towards: the config plus the live
// dynamic parts of the node's store (when the store exists; the doctor never creates it).
// It also returns the names of every claim it holds (static, in DynamicConfigParts of the
// config dir and from the store), sorted.
func dataplaneDesired(ctx context.Context, s settings.Settings, cfg *schemas.Config) (desired.Result, []string, error) {
	now := time.Now()
	var extra []*schemas.RemoteAddressClaim
	if _, err := os.Stat(s.StorePath()); err == nil {
		// Bounded wait for a lock a daemon holds; never creates the file.
		st, err := health.OpenStore(s.StorePath())
		if err != nil {
			return desired.Result{}, nil, fmt.Errorf("dataplane: the live dynamic parts cannot be read: %w", err)
		}
		defer st.Close()
		parts, err := dynamic.NewSQLRepo(st).List(ctx)
		if err != nil {
			return desired.Result{}, nil, fmt.Errorf("dataplane: dynamic parts: %w", err)
		}
		m := dynamic.MergeConfig(cfg, parts, now)
		res := desired.FromConfig(m.Config, desired.Options{Now: now, Claims: m.Claims})
		res.Problems = append(m.Problems, res.Problems...)
		return res, claimNames(m.Config, m.Claims, now), nil
	}
	return desired.FromConfig(cfg, desired.Options{Now: now}), claimNames(cfg, extra, now), nil
}

// claimNames names the claims desired.FromConfig installs from cfg and extra at now.
func claimNames(cfg *schemas.Config, extra []*schemas.RemoteAddressClaim, now time.Time) []string {
	var out []string
	for _, c := range cfg.RemoteAddressClaims() {
		out = append(out, c.Metadata.Name)
	}
	for _, part := range cfg.DynamicConfigParts() {
		if !part.Spec.ExpiresAt.IsZero() && !part.Spec.ExpiresAt.After(now) {
			continue
		}
		for _, r := range part.Spec.Resources {
			if c, ok := r.Object.(*schemas.RemoteAddressClaim); ok {
				out = append(out, c.Metadata.Name)
			}
		}
	}
	for _, c := range extra {
		out = append(out, c.Metadata.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func runDataplaneDoctor(ctx context.Context, cmd *cobra.Command) ([]doctorCheck, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, usagef("%v", err)
	}
	netnsName, _ := cmd.Flags().GetString("netns")
	cfg, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		check := doctorCheck{Area: "dataplane", Name: "config", Status: checkFail, Summary: "the resource documents in " + s.ConfigDir + " do not load"}
		var el *schemas.ErrorList
		if errors.As(err, &el) {
			check.Details = strings.Split(strings.TrimSpace(el.Error()), "\n")
		} else {
			check.Details = []string{err.Error()}
		}
		return []doctorCheck{check}, nil
	}
	want, _, err := dataplaneDesired(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	insp, err := inspectKernel(ctx, netnsName, "dataplane")
	if err != nil {
		return nil, err
	}
	rep := dataplane.Check(want.State, want.Problems, insp)
	checks := make([]doctorCheck, 0, len(rep.Checks))
	for _, c := range rep.Checks {
		checks = append(checks, doctorCheck{Area: "dataplane", Name: c.Name, Status: fromDataplaneStatus(c.Status), Summary: c.Summary, Details: c.Details})
	}
	return checks, nil
}

// fromDataplaneStatus maps dataplane.Check's pass/fail to the doctor's ok/fail.
func fromDataplaneStatus(s string) string {
	if s == dataplane.StatusPass {
		return checkOK
	}
	return checkFail
}

// inspectKernel reads what routerd owns in the kernel of netnsName (routes, addresses,
// routerd's nftables table) for a doctor area; the error names the area.
func inspectKernel(ctx context.Context, netnsName, area string) (dataplane.Inspection, error) {
	b, err := netlinkdp.Open(netlinkdp.Options{NetNS: netnsName})
	if err != nil {
		return dataplane.Inspection{}, fmt.Errorf("%s: %w", area, err)
	}
	defer b.Close()
	insp, err := b.Inspect(ctx)
	if err != nil {
		if os.Geteuid() != 0 {
			err = fmt.Errorf("%w (reading routerd's nftables table needs root)", err)
		}
		return insp, fmt.Errorf("%s: %w", area, err)
	}
	return insp, nil
}
