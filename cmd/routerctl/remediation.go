package main

// `routerctl remediation plan|run`: the federation doctor findings turned into the
// remediation actions of routerd v1alpha1 (federation/remediation), and their execution.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/remediation"
)

func init() { addCommand(newRemediationCmd) }

func newRemediationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remediation",
		Short: "Plan and run the remediation of federation problems found by doctor",
		Long: `Each federation problem routerctl doctor finds maps to one action:

  failed-deliveries              retry-failed-deliveries            safe
  pending-deliveries             investigate-pending-deliveries
  stale-ttl                      force-repush-stale-ttl             safe
  delivery-lag                   check-peer-connectivity
  expected-delivery-no-endpoint  configure-peer-endpoint            needs operator approval
  expected-delivery              investigate-missing-delivery-rows
  subscription-runs              inspect-failed-subscription-runs

The safe actions only re-queue delivery rows in the store; "remediation run" executes them
by itself. The others are for an operator: run records them as approved (with what to
do) only when named with --approve. Every action of a run is written to the store's
audit log.`,
		Args: cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newRemediationPlanCmd(), newRemediationRunCmd())
	return cmd
}

func newRemediationPlanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Print the remediation actions for the current federation findings",
		Long: `Print the remediation actions derived from the federation doctor findings,
de-duplicated and sorted by group, peer and action: the same store state always prints
the same bytes. Nothing is changed.`,
		Example: `  routerctl remediation plan
  routerctl remediation plan -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, closeStore, err := federationHealthInput(cmd)
			if err != nil {
				return err
			}
			defer closeStore()
			findings := health.Run(cmd.Context(), in)
			plan := remediation.PlanFor(findings)
			if err := render(cmd, plan, func() *table { return planTable(plan) }); err != nil {
				return err
			}
			if in.StoreErr != nil {
				return fmt.Errorf("the plan covers the config only: %w", in.StoreErr)
			}
			return nil
		},
	}
}

func planTable(p remediation.Plan) *table {
	t := &table{header: []string{"ACTION", "GROUP", "PEER", "RESOURCE", "SAFE", "APPROVAL", "REASON"}}
	for _, a := range p.Actions {
		approval := "-"
		if a.RequiresOperatorApproval {
			approval = "required"
		}
		t.addRow(a.Action, a.TargetGroup, dash(a.TargetPeer), dash(a.TargetResource), a.Safe, approval, a.Reason)
	}
	return t
}

func newRemediationRunCmd() *cobra.Command {
	var approve []string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the safe remediation actions, and record the ones approved with --approve",
		Long: `Compute the plan as "remediation plan" does, then: execute the safe actions
(retry-failed-deliveries puts failed deliveries back to pending, due now;
force-repush-stale-ttl puts delivered events whose expiry was extended back to pending);
record the other actions named with --approve as approved, with what the operator has to
do; skip the rest. Every action is appended to the store's audit log.

Exit codes: 0 done, 1 an action failed, 2 usage (including an unknown --approve action).`,
		Example: `  routerctl remediation run
  routerctl remediation run --approve configure-peer-endpoint -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range approve {
				if !remediation.IsAction(a) {
					return usagef("--approve %q: not an action; want one of %s", a, strings.Join(remediation.Actions(), ", "))
				}
			}
			in, closeStore, err := federationHealthInput(cmd)
			if err != nil {
				return err
			}
			defer closeStore()
			if in.StoreErr != nil {
				return fmt.Errorf("cannot run remediation: %w", in.StoreErr)
			}
			plan := remediation.PlanFor(health.Run(cmd.Context(), in))
			results, runErr := remediation.Execute(cmd.Context(), in.Store, plan, remediation.RunOptions{Approve: approve, Now: in.Now})
			if results == nil {
				results = []remediation.Result{}
			}
			if err := render(cmd, results, func() *table {
				t := &table{header: []string{"ACTION", "GROUP", "PEER", "RESOURCE", "OUTCOME", "CHANGED", "DETAIL"}}
				for _, r := range results {
					t.addRow(r.Action.Action, r.TargetGroup, dash(r.TargetPeer), dash(r.TargetResource), r.Outcome, r.Changed, r.Detail)
				}
				return t
			}); err != nil {
				return errors.Join(err, runErr)
			}
			return runErr
		},
	}
	cmd.Flags().StringSliceVar(&approve, "approve", nil, "approve this manual action (repeat or comma-separate): "+strings.Join(remediation.Actions(), ", "))
	return cmd
}
