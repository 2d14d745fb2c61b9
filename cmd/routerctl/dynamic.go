package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/store"
)

func init() { addCommand(newDynamicCmd) }

// noneIfEmpty shows "-" for an empty table cell.
func noneIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newDynamicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dynamic",
		Short: "List, show and withdraw DynamicConfigParts (plugin-proposed config)",
		Long: `DynamicConfigParts are resources proposed at run time — by subscription plugins, such as
the RemoteAddressClaims event-to-remote-claim makes from observed addresses — each with
its source, generation, expiry and the ids of the events it came from.

When routerd is running the commands go through its control socket (a withdrawal then
takes effect on the dataplane at once); otherwise they read and write the store directly.`,
		Args: cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newDynamicListCmd(), newDynamicShowCmd(), newDynamicWithdrawCmd())
	return cmd
}

// dynamicParts lists the parts from the daemon, else from the store.
func dynamicParts(ctx context.Context, s settings.Settings) ([]dynamic.Part, error) {
	return daemonOrStore(ctx, s, "/v1/dynamic", func(st *store.Store) ([]dynamic.Part, error) {
		return dynamic.NewSQLRepo(st).List(ctx)
	})
}

// parseTarget accepts KIND/NAME or KIND NAME.
func parseTarget(args []string) (kind, name string, err error) {
	switch len(args) {
	case 1:
		k, n, ok := strings.Cut(args[0], "/")
		if ok && k != "" && n != "" {
			return k, n, nil
		}
	case 2:
		if args[0] != "" && args[1] != "" {
			return args[0], args[1], nil
		}
	}
	return "", "", usagef("want KIND/NAME or KIND NAME, e.g. RemoteAddressClaim/onprem-10-88-60-9")
}

func newDynamicListCmd() *cobra.Command {
	var source, kind string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dynamic parts with source, generation, expiry and origin events",
		Example: `  routerctl dynamic list
  routerctl dynamic list --source EventSubscription/remote-claims -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			all, err := dynamicParts(cmd.Context(), s)
			if err != nil {
				return err
			}
			parts := []dynamic.Part{}
			for _, p := range all {
				if (source == "" || p.Source == source) && (kind == "" || p.Kind == kind) {
					parts = append(parts, p)
				}
			}
			now := time.Now()
			return render(cmd, parts, func() *table {
				t := &table{header: []string{"KIND", "NAME", "SOURCE", "GEN", "EXPIRES", "EVENTS"}}
				for _, p := range parts {
					exp := "never"
					if !p.ExpiresAt.IsZero() {
						exp = p.ExpiresAt.Format(time.RFC3339)
						if p.Expired(now) {
							exp += " (expired)"
						} else {
							exp += " (in " + p.ExpiresAt.Sub(now).Round(time.Second).String() + ")"
						}
					}
					t.addRow(p.Kind, p.Name, p.Source, p.Generation, exp, noneIfEmpty(strings.Join(p.EventIDs, ",")))
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "only parts of this source, e.g. EventSubscription/remote-claims")
	cmd.Flags().StringVar(&kind, "kind", "", "only parts carrying this Kind")
	return cmd
}

func newDynamicShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show KIND/NAME",
		Short: "Show the DynamicConfigPart(s) for one resource: document, annotations, origin events",
		Example: `  routerctl dynamic show RemoteAddressClaim/onprem-10-88-60-9
  routerctl dynamic show RemoteAddressClaim onprem-10-88-60-9 -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, err := parseTarget(args)
			if err != nil {
				return err
			}
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			all, err := dynamicParts(cmd.Context(), s)
			if err != nil {
				return err
			}
			parts := []dynamic.Part{}
			for _, p := range all {
				if p.Kind == kind && p.Name == name {
					parts = append(parts, p)
				}
			}
			if len(parts) == 0 {
				return fmt.Errorf("no dynamic part for %s/%s", kind, name)
			}
			if f, err := outputFormat(cmd); err != nil {
				return err
			} else if f == formatTable {
				// A part is a document: show it as YAML, with a summary first.
				w := cmd.OutOrStdout()
				for _, p := range parts {
					fmt.Fprintf(w, "# %s/%s from %s, generation %d, expires %s, events %s\n", p.Kind, p.Name, p.Source,
						p.Generation, p.ExpiresAt.Format(time.RFC3339), strings.Join(p.EventIDs, ","))
				}
				docs := make([]any, 0, len(parts))
				for _, p := range parts {
					docs = append(docs, p.Document)
				}
				if err := cmd.Flags().Set("output", formatYAML); err != nil {
					return err
				}
				if len(docs) == 1 {
					return render(cmd, docs[0], nil)
				}
				return render(cmd, docs, nil)
			}
			return render(cmd, parts, nil)
		},
	}
}

func newDynamicWithdrawCmd() *cobra.Command {
	var source string
	cmd := &cobra.Command{
		Use:   "withdraw KIND/NAME",
		Short: "Withdraw the dynamic part(s) for one resource (audited)",
		Long: `Withdraw the dynamic part(s) carrying one resource, of every source or only --source. The
withdrawal is written to the audit log. A running routerd removes the resource from the
desired state at once; the proposing plugin may propose it again on its next event.`,
		Example: `  routerctl dynamic withdraw RemoteAddressClaim/onprem-10-88-60-9`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, err := parseTarget(args)
			if err != nil {
				return err
			}
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			var removed []dynamic.Part
			body := map[string]string{"kind": kind, "name": name, "source": source, "actor": "routerctl"}
			err = newPipelineAPI(s).do(ctx, http.MethodPost, "/v1/dynamic/withdraw", body, &removed)
			if errors.Is(err, errDaemonDown) {
				removed, err = withdrawFromStore(ctx, s, source, kind, name)
			}
			if err != nil {
				return err
			}
			if len(removed) == 0 {
				if source != "" {
					return fmt.Errorf("no dynamic part for %s/%s from %s", kind, name, source)
				}
				return fmt.Errorf("no dynamic part for %s/%s", kind, name)
			}
			return render(cmd, removed, func() *table {
				t := &table{header: []string{"WITHDRAWN", "SOURCE", "GEN", "EVENTS"}}
				for _, p := range removed {
					t.addRow(p.Kind+"/"+p.Name, p.Source, p.Generation, noneIfEmpty(strings.Join(p.EventIDs, ",")))
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "withdraw only the part of this source")
	return cmd
}

// withdrawFromStore withdraws parts directly in the store (no daemon running).
func withdrawFromStore(ctx context.Context, s settings.Settings, source, kind, name string) ([]dynamic.Part, error) {
	st, err := store.Open(s.StorePath(), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	m, err := dynamic.NewManager(dynamic.Options{Repo: dynamic.NewSQLRepo(st)})
	if err != nil {
		return nil, err
	}
	return m.Withdraw(ctx, source, kind, name, "routerctl")
}
