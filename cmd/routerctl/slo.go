package main

// `routerctl federation slo`: each event group's FederationSLO evaluated against the
// node's store (federation/slo), in the report shape of routerd v1alpha1.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/slo"
	"routerd.net/routerd/schemas"
)

func init() { addFederationCommand(newSLOCmd) }

// federationHealthInput loads the config dir and opens the store (without creating it)
// named by cmd's settings flags, for federation/health. A store that cannot be opened is
// not an error here: it is in Input.StoreErr, for the checks to report. The caller calls
// closeStore.
func federationHealthInput(cmd *cobra.Command) (in health.Input, closeStore func(), err error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return health.Input{}, nil, err
	}
	cfg, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		return health.Input{}, nil, fmt.Errorf("config dir %s (--config-dir): %w", s.ConfigDir, err)
	}
	in = health.Input{Config: cfg, Now: time.Now()}
	in.Store, in.StoreErr = health.OpenStore(s.StorePath())
	closeStore = func() {}
	if in.Store != nil {
		closeStore = func() { _ = in.Store.Close() }
	}
	return in, closeStore, nil
}

func newSLOCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "slo",
		Short: "Evaluate each event group's FederationSLO against the store",
		Long: `Evaluate each event group's FederationSLO (delivery lag, failed deliveries, stale
TTLs at peers, peer freshness, subscription runs) against the node's store and print the
report: federation.slo.groups[{group, defined, thresholds, violations[{check, threshold,
actual, severity}]}]. Thresholds and actual values are seconds or counts. Groups without a
FederationSLO are listed with defined: false.

Exit codes: 0 every objective met, 1 a violation (or the store could not be read), 2 usage.`,
		Example: `  routerctl federation slo
  routerctl federation slo -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, closeStore, err := federationHealthInput(cmd)
			if err != nil {
				return err
			}
			defer closeStore()
			report, err := slo.Evaluate(health.Gather(cmd.Context(), in))
			if err != nil {
				return fmt.Errorf("cannot evaluate the FederationSLOs: %w", err)
			}
			if err := render(cmd, report, func() *table { return sloTable(report) }); err != nil {
				return err
			}
			if report.Violated() != health.SeverityOK {
				return silentFailure
			}
			return nil
		},
	}
}

// sloTable is one row per violation, or one row per group without any.
func sloTable(r slo.Report) *table {
	t := &table{header: []string{"GROUP", "DEFINED", "CHECK", "THRESHOLD", "ACTUAL", "SEVERITY"}}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, g := range r.Federation.SLO.Groups {
		if len(g.Violations) == 0 {
			status := "met"
			if !g.Defined {
				status = "no FederationSLO"
			}
			t.addRow(g.Group, g.Defined, "-", "-", "-", status)
			continue
		}
		for _, v := range g.Violations {
			t.addRow(g.Group, g.Defined, v.Check, num(v.Threshold), num(v.Actual), v.Severity)
		}
	}
	return t
}
