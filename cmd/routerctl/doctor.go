package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/dataplane/netlinkdp"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

func init() {
	addCommand(newDoctorCmd)
	addDoctorArea(dataplaneDoctorArea)
}

// doctorCheck is one check of any doctor area, as printed (-o table) and encoded (-o json).
type doctorCheck struct {
	Area    string   `json:"area"`
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Summary string   `json:"summary"`
	Details []string `json:"details,omitempty"`
}

// doctorReport is what `routerctl doctor ...` prints.
type doctorReport struct {
	OK     bool          `json:"ok"`
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

// addDoctorArea registers an area; it panics on a duplicate name.
func addDoctorArea(a doctorArea) {
	for _, have := range doctorAreas {
		if have.name == a.name {
			panic("routerctl: doctor area " + a.name + " registered twice")
		}
	}
	doctorAreas = append(doctorAreas, a)
}

// Doctor check statuses.
const (
	checkPass = "pass"
	checkFail = "fail"
)

func newDoctorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the node for problems (every area, or one: " + areaNames() + ")",
		Long: `doctor checks the node and reports each check as pass or fail, with one detail
line per problem found. Without a subcommand every area is checked.

Exit codes: 0 every check passed, 1 a check failed (or could not run), 2 usage error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd, doctorAreas)
		},
	}
	settings.AddFlags(cmd.PersistentFlags())
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

// runDoctor runs areas, prints the report in the -o format and fails (exit 1) when a
// check failed. An area that cannot run at all is reported as a failed check.
func runDoctor(cmd *cobra.Command, areas []doctorArea) error {
	if _, err := outputFormat(cmd); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	rep := doctorReport{OK: true, Checks: []doctorCheck{}}
	for _, a := range areas {
		checks, err := a.run(ctx, cmd)
		if err != nil {
			var ue usageError
			if errors.As(err, &ue) {
				return err
			}
			checks = append(checks, doctorCheck{Area: a.name, Name: "run", Status: checkFail, Summary: "the checks could not run", Details: []string{err.Error()}})
		}
		for _, c := range checks {
			if c.Status != checkPass {
				rep.OK = false
			}
		}
		rep.Checks = append(rep.Checks, checks...)
	}
	if err := render(cmd, rep, func() *table {
		t := &table{header: []string{"AREA", "CHECK", "STATUS", "SUMMARY"}}
		for _, c := range rep.Checks {
			t.addRow(c.Area, c.Name, strings.ToUpper(c.Status), c.Summary)
			for _, d := range c.Details {
				t.addRow("", "", "", "  "+d)
			}
		}
		return t
	}); err != nil {
		return err
	}
	if !rep.OK {
		return silentFailure
	}
	return nil
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
	flags: func(cmd *cobra.Command) {
		cmd.Flags().String("netns", "", "network namespace to check (ip netns name; default: the current one)")
	},
	run: runDataplaneDoctor,
}

// dataplaneDesired is the desired state routerd works towards: the config plus the live
// dynamic parts of the node's store (when the store exists; the doctor never creates it).
func dataplaneDesired(ctx context.Context, s settings.Settings, cfg *schemas.Config) (desired.Result, error) {
	if _, err := os.Stat(s.StorePath()); err != nil {
		return desired.FromConfig(cfg, desired.Options{}), nil
	}
	st, err := store.Open(s.StorePath(), store.Options{})
	if err != nil {
		return desired.Result{}, fmt.Errorf("dataplane: open store %s: %w", s.StorePath(), err)
	}
	defer st.Close()
	parts, err := dynamic.NewSQLRepo(st).List(ctx)
	if err != nil {
		return desired.Result{}, fmt.Errorf("dataplane: dynamic parts: %w", err)
	}
	now := time.Now()
	m := dynamic.MergeConfig(cfg, parts, now)
	res := desired.FromConfig(m.Config, desired.Options{Now: now, Claims: m.Claims})
	res.Problems = append(m.Problems, res.Problems...)
	return res, nil
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
	want, err := dataplaneDesired(ctx, s, cfg)
	if err != nil {
		return nil, err
	}
	b, err := netlinkdp.Open(netlinkdp.Options{NetNS: netnsName})
	if err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	defer b.Close()
	insp, err := b.Inspect(ctx)
	if err != nil {
		if os.Geteuid() != 0 {
			err = fmt.Errorf("%w (reading routerd's nftables table needs root)", err)
		}
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	rep := dataplane.Check(want.State, want.Problems, insp)
	checks := make([]doctorCheck, 0, len(rep.Checks))
	for _, c := range rep.Checks {
		checks = append(checks, doctorCheck{Area: "dataplane", Name: c.Name, Status: c.Status, Summary: c.Summary, Details: c.Details})
	}
	return checks, nil
}
