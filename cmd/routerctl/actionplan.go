package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/actionplan"
	"routerd.net/routerd/federation/store"
)

func init() {
	addCommand(newActionPlanCmd)
	addCommand(newAuditCmd)
}

func newActionPlanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "actionplan",
		Short: "List, approve, execute and undo provider action plans",
		Long: `Provider action plans move addresses at a cloud provider (assign or unassign a secondary
private IP on a NIC; create or delete an OCI privateIp). Planner plugins propose them
from the live RemoteAddressClaims; the ProviderActionPolicy gate decides what may run:

  refused    the gate refused the plan; 'show' names the rule (allowed-cidrs, budget, ...)
  proposed   allowed, waiting for an operator's approval (requireApproval, the default)
  approved   approved by an operator or auto-approved (autoApproveActions)
  executed   the executor plugin ran it through provider_request; the outcome is stored
  failed     the provider refused or failed; approve again to retry (retryable says
             whether a retry can help)
  undone     its undo ran (allowUndo)

Executing asks the gate again: a policy with dryRunOnly (the default) refuses every
execution, and a plan whose preconditions no longer hold (the claim moved, the address
is already there) is refused. Approvals and executions go through routerd's control
socket, which records your Unix user as the actor in the audit log; the credentials
stay in routerd, never in a plugin or in this command's output.`,
		Args: cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newActionPlanListCmd(), newActionPlanShowCmd(), newActionPlanPlanCmd(),
		newActionPlanTransitionCmd("approve", "Approve a proposed, refused or failed plan", "approve"),
		newActionPlanTransitionCmd("reject", "Reject a plan (it will not run)", "reject"),
		newActionPlanTransitionCmd("execute", "Execute an approved plan now (gate and preconditions are checked again)", "execute"),
		newActionPlanTransitionCmd("undo", "Run the undo of an executed plan (needs allowUndo)", "undo"))
	return cmd
}

// actionPlans lists plans from the daemon, else from the store.
func actionPlans(ctx context.Context, s settings.Settings, states []string) ([]store.ActionPlanRecord, error) {
	return daemonOrStore(ctx, s, "/v1/actionplans?"+url.Values{"state": states}.Encode(), func(st *store.Store) ([]store.ActionPlanRecord, error) {
		return st.ListActionPlans(ctx, store.ActionPlanFilter{States: states})
	})
}

// resolvePlan finds the plan whose id is id or starts with it (ids are 32 hex digits).
func resolvePlan(ctx context.Context, s settings.Settings, id string) (store.ActionPlanRecord, error) {
	plans, err := actionPlans(ctx, s, nil)
	if err != nil {
		return store.ActionPlanRecord{}, err
	}
	var found []store.ActionPlanRecord
	for _, p := range plans {
		if p.ID == id {
			return p, nil
		}
		if strings.HasPrefix(p.ID, id) || p.Name == id {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return store.ActionPlanRecord{}, fmt.Errorf("no action plan %q (routerctl actionplan list shows them)", id)
	case 1:
		return found[0], nil
	}
	return store.ActionPlanRecord{}, usagef("%q matches %d plans; give more of the id", id, len(found))
}

func newActionPlanListCmd() *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List action plans with state, provider, action, target and risk",
		Example: `  routerctl actionplan list
  routerctl actionplan list --state proposed -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			plans, err := actionPlans(cmd.Context(), s, states)
			if err != nil {
				return err
			}
			if plans == nil {
				plans = []store.ActionPlanRecord{}
			}
			return render(cmd, plans, func() *table {
				t := &table{header: []string{"ID", "NAME", "STATE", "PROVIDER", "ACTION", "TARGET", "RISK", "UPDATED", "NOTE"}}
				for _, p := range plans {
					t.addRow(p.ID[:min(12, len(p.ID))], p.Name, p.State, p.Provider, p.Action, noneIfEmpty(p.Target), noneIfEmpty(p.RiskLevel),
						p.UpdatedAt.Format(time.RFC3339), noneIfEmpty(planNote(p)))
				}
				return t
			})
		},
	}
	cmd.Flags().StringArrayVar(&states, "state", nil, "only plans in this state (repeatable): proposed, approved, refused, executed, failed, ...")
	return cmd
}

// planNote is the one-line reason of a refused or failed plan, or who approved it.
func planNote(p store.ActionPlanRecord) string {
	switch p.State {
	case store.PlanRefused:
		return p.Result
	case store.PlanFailed, store.PlanExecuted, store.PlanUndone:
		var r struct{ Outcome, Message string }
		if json.Unmarshal([]byte(p.Result), &r) == nil && r.Outcome != "" {
			return r.Outcome + ": " + r.Message
		}
		return p.Result
	case store.PlanApproved:
		return "approved by " + p.ApprovedBy
	}
	return ""
}

func newActionPlanShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one plan: its document (preconditions, effects, undo), state, approval and outcome",
		Example: `  routerctl actionplan show 3697fae8
  routerctl actionplan show 3697fae8 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			p, err := resolvePlan(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			return render(cmd, p, func() *table {
				t := &table{header: []string{"FIELD", "VALUE"}}
				t.addRow("id", p.ID)
				t.addRow("name", p.Name)
				t.addRow("state", p.State)
				t.addRow("provider", p.Provider+" ("+p.Action+" on "+noneIfEmpty(p.Target)+")")
				t.addRow("source", p.Source)
				t.addRow("risk", noneIfEmpty(p.RiskLevel))
				if p.ApprovedBy != "" {
					t.addRow("approved", p.ApprovedBy+" at "+p.ApprovedAt.Format(time.RFC3339))
				}
				if !p.ExecutedAt.IsZero() {
					t.addRow("executed", p.ExecutedAt.Format(time.RFC3339))
				}
				t.addRow("outcome", noneIfEmpty(p.Result))
				t.addRow("document", string(p.Document))
				return t
			})
		},
	}
}

func newActionPlanPlanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Run the planner plugins now over the live claims (routerd also does after every claim change)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			var rep actionplan.Report
			if err := daemonOnly(newPipelineAPI(s).do(cmd.Context(), http.MethodPost, "/v1/actionplans/plan", struct{}{}, &rep)); err != nil {
				return err
			}
			return render(cmd, rep, func() *table {
				t := &table{header: []string{"ID", "NAME", "STATE", "RULE", "REASON"}}
				for _, d := range rep.Decisions {
					t.addRow(d.ID[:min(12, len(d.ID))], d.Name, d.State, noneIfEmpty(d.Rule), noneIfEmpty(d.Reason))
				}
				return t
			})
		},
	}
}

// daemonOnly explains errDaemonDown for commands that need routerd.
func daemonOnly(err error) error {
	if errors.Is(err, errDaemonDown) {
		return fmt.Errorf("%w: planning, approvals and executions go through routerd (it holds the plugins and the provider credentials); start it, or point --control-socket at it", err)
	}
	return err
}

func newActionPlanTransitionCmd(verb, short, endpoint string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: fmt.Sprintf(`  routerctl actionplan %s 3697fae8 --reason "change 4711"`, verb),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			p, err := resolvePlan(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			var resp daemon.ActionResponse
			err = daemonOnly(newPipelineAPI(s).do(cmd.Context(), http.MethodPost, "/v1/actionplans/"+url.PathEscape(p.ID)+"/"+endpoint,
				daemon.ActionRequest{Reason: reason}, &resp))
			if err != nil {
				return err
			}
			return render(cmd, resp.Plan, func() *table {
				t := &table{header: []string{"ID", "NAME", "STATE", "NOTE"}}
				t.addRow(resp.Plan.ID, resp.Plan.Name, resp.Plan.State, noneIfEmpty(planNote(resp.Plan)))
				return t
			})
		},
	}
	if verb == "approve" || verb == "reject" {
		cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	}
	return cmd
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the tamper-evident audit log",
		Args:  cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's HMAC chain; name every edited, deleted or reordered record",
		Long: `Every gated decision (a plan refused, approved, executed, undone), every dynamic part and
every denied plugin call appends an audit record chained by HMAC-SHA256 over the record
before it, keyed by <state dir>/audit.key. verify walks the chain and fails (exit 1) on
any record that was edited, deleted, reordered or cut off at the end, naming it by its
sequence number. Records pruned by retention are not a problem: the chain restarts from
a sealed anchor.`,
		Example: `  routerctl audit verify
  routerctl audit verify --state-dir /var/lib/routerd -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			keyPath := filepath.Join(s.StateDir, "audit.key")
			if _, err := os.Stat(keyPath); err != nil {
				return fmt.Errorf("audit verify: %s: %w (routerd creates it on its first start)", keyPath, err)
			}
			key, err := store.LoadAuditKey(keyPath)
			if err != nil {
				return err
			}
			st, err := store.Open(s.StorePath(), store.Options{AuditKey: key})
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := st.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if err := render(cmd, v, func() *table {
				t := &table{header: []string{"SEQ", "PROBLEM"}}
				for _, p := range v.Problems {
					t.addRow(p.Seq, p.Kind+": "+p.Detail)
				}
				return t
			}); err != nil {
				return err
			}
			if !v.OK() {
				return fmt.Errorf("audit log: %d problems (see above): %w", len(v.Problems), silentFailure)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "audit log verified: %d records chained (records %d..%d)\n", v.Checked, v.AnchorSeq+1, v.HeadSeq)
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
