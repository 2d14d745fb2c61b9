package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

func init() { addCommand(newSubscriptionCmd) }

// pipelineAPI talks to a running routerd over its control socket.
type pipelineAPI struct {
	socket string
	client *http.Client
}

// errDaemonDown means no routerd answers on the control socket.
var errDaemonDown = errors.New("routerd is not running")

// daemonOrStore GETs path from the running routerd into a T; when routerd is not running
// it opens the node's store and asks fromStore instead.
func daemonOrStore[T any](ctx context.Context, s settings.Settings, path string, fromStore func(*store.Store) (T, error)) (T, error) {
	var out T
	err := newPipelineAPI(s).do(ctx, http.MethodGet, path, nil, &out)
	if err == nil || !errors.Is(err, errDaemonDown) {
		return out, err
	}
	st, err := store.Open(s.StorePath(), store.Options{})
	if err != nil {
		return out, err
	}
	defer st.Close()
	return fromStore(st)
}

// newPipelineAPI returns a client for the control socket of settings s.
func newPipelineAPI(s settings.Settings) *pipelineAPI {
	return &pipelineAPI{socket: s.ControlSocket, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.ControlSocket)
		},
	}}}
}

// do sends a request and decodes a 2xx JSON answer into out. It returns errDaemonDown
// when nothing listens on the socket.
func (a *pipelineAPI) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://routerd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" {
			return errDaemonDown
		}
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("routerd: %s", e.Error)
		}
		return fmt.Errorf("control API %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("control API %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func newSubscriptionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscription",
		Short: "Show EventSubscriptions: state, cursor, backlog, lag, errors, runs",
		Long: `Show the node's EventSubscriptions.

When routerd is running, the live state comes from its control socket (--control-socket).
Otherwise it is read from the store and the config dir: each subscription's durable
cursor, the matching events after it (pending), and its last run.`,
		Args: cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSubscriptionListCmd(), newSubscriptionRunsCmd())
	return cmd
}

func newSubscriptionListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List subscriptions with state, cursor, pending events, lag and last error",
		Example: `  routerctl subscription list
  routerctl subscription list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			subs, err := subscriptionStatus(cmd.Context(), s)
			if err != nil {
				return err
			}
			return render(cmd, subs, func() *table {
				t := &table{header: []string{"NAME", "GROUP", "PLUGIN", "STATE", "CURSOR", "PENDING", "LAG", "BATCHES", "FAILURES", "LAST-ERROR"}}
				for _, st := range subs {
					lag := "-"
					if st.LagSeconds > 0 {
						lag = (time.Duration(st.LagSeconds * float64(time.Second))).Round(time.Millisecond).String()
					}
					t.addRow(st.Name, st.Group, st.Plugin, st.State, st.Cursor, st.Pending, lag, st.Batches, st.Failures, noneIfEmpty(st.LastError))
				}
				return t
			})
		},
	}
}

// subscriptionStatus asks the daemon, else computes the state from store and config.
func subscriptionStatus(ctx context.Context, s settings.Settings) ([]subscribe.Status, error) {
	var subs []subscribe.Status
	err := newPipelineAPI(s).do(ctx, http.MethodGet, "/v1/subscriptions", nil, &subs)
	if err == nil {
		return subs, nil
	}
	if !errors.Is(err, errDaemonDown) {
		return nil, err
	}
	cfg, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", s.ConfigDir, err)
	}
	st, err := store.Open(s.StorePath(), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ad := subscribe.StoreAdapter{Store: st}
	subs = []subscribe.Status{}
	for _, spec := range subscribe.SpecsFrom(cfg) {
		cur, err := ad.GetCursor(ctx, spec.Name)
		if err != nil {
			return nil, err
		}
		out := subscribe.Status{Name: spec.Name, Group: spec.Group, Plugin: spec.Plugin, State: subscribe.StateStopped, Cursor: cur}
		pending, oldest, err := pendingAfter(ctx, ad, spec, cur)
		if err != nil {
			return nil, err
		}
		out.Pending = pending
		if !oldest.IsZero() {
			out.LagSeconds = time.Since(oldest).Seconds()
		}
		runs, err := ad.Runs(ctx, spec.Name, 1)
		if err != nil {
			return nil, err
		}
		if len(runs) > 0 {
			r := runs[0]
			out.LastBatchID, out.LastRunAt = r.BatchID, &r.FinishedAt
			if r.State == "failed" {
				out.LastError, out.Attempts = r.Error, r.Attempts
			}
		}
		subs = append(subs, out)
	}
	return subs, nil
}

// pendingAfter counts the live events matching spec after cursor and returns when the
// oldest was received.
func pendingAfter(ctx context.Context, ad subscribe.StoreAdapter, spec subscribe.Spec, cursor int64) (int, time.Time, error) {
	n := 0
	var oldest time.Time
	for after := cursor; ; {
		recs, err := ad.Events(ctx, spec.Group, spec.Types, after, 1000)
		if err != nil {
			return 0, time.Time{}, err
		}
		now := time.Now()
		for _, r := range recs {
			after = r.Seq
			if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
				continue // the engine skips expired events
			}
			if spec.Matches(r) {
				if n == 0 {
					oldest = r.ReceivedAt
				}
				n++
			}
		}
		if len(recs) < 1000 {
			return n, oldest, nil
		}
	}
}

func newSubscriptionRunsCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "runs [NAME]",
		Short: "Show the recent runs (plugin dispatches) of one or all subscriptions",
		Example: `  routerctl subscription runs remote-claims --limit 5
  routerctl subscription runs -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			st, err := store.Open(s.StorePath(), store.Options{})
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := subscribe.StoreAdapter{Store: st}.Runs(cmd.Context(), name, limit)
			if err != nil {
				return err
			}
			return render(cmd, runs, func() *table {
				t := &table{header: []string{"ID", "SUBSCRIPTION", "BATCH", "STATE", "ATTEMPT", "EVENTS", "FINISHED", "ERROR"}}
				for _, r := range runs {
					t.addRow(r.ID, r.Subscription, r.BatchID, r.State, r.Attempts, r.Events, r.FinishedAt.Format(time.RFC3339), noneIfEmpty(r.Error))
				}
				return t
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs to show, newest first")
	return cmd
}
