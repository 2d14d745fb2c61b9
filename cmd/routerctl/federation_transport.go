package main

// `routerctl federation deliveries` and `routerctl federation peers`: the transport's
// outbox as recorded in the node's store (room H5).

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/schemas"
)

func init() {
	addFederationCommand(newDeliveriesCmd)
	addFederationCommand(newPeersCmd)
}

var deliveryStates = []string{store.DeliveryPending, store.DeliveryRetrying, store.DeliveryDelivered, store.DeliveryFailed}

func newDeliveriesCmd() *cobra.Command {
	var (
		f     store.DeliveryFilter
		limit int
	)
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List per-peer event deliveries (state, attempts, last error, next attempt)",
		Long: `List the delivery rows routerd-eventd keeps per event and peer, newest event first.

States: pending (queued), retrying (failed, waiting for its next attempt), delivered,
failed (gave up after the group's delivery.failAfter, or the peer refused the event).`,
		Example: `  routerctl federation deliveries --group lab --state failed
  routerctl federation deliveries --peer router-b -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.State != "" && !slices.Contains(deliveryStates, f.State) {
				return usagef("--state %q: want one of pending, retrying, delivered, failed", f.State)
			}
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			f.Limit = limit
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := st.ListDeliveries(cmd.Context(), f)
			if err != nil {
				return err
			}
			return render(cmd, rows, func() *table {
				t := &table{header: []string{"EVENT", "GROUP", "PEER", "TYPE", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "DELIVERED", "LAST ERROR"}}
				for _, r := range rows {
					next := "-"
					if r.State == store.DeliveryRetrying || r.State == store.DeliveryPending {
						next = timeOrDash(r.NextAttemptAt)
					}
					t.addRow(r.EventID, r.Group, r.Peer, dash(r.EventType), r.State, r.Attempts, next, timeOrDash(r.DeliveredAt), dash(r.LastError))
				}
				return t
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Group, "group", "", "only this event group")
	fl.StringVar(&f.Peer, "peer", "", "only this peer (EventPeer name)")
	fl.StringVar(&f.State, "state", "", "only this state: pending, retrying, delivered or failed")
	fl.IntVar(&limit, "limit", 1000, "at most this many rows")
	return cmd
}

// peerRow is one line of `federation peers`.
type peerRow struct {
	Group       string    `json:"group"`
	Peer        string    `json:"peer"`
	NodeName    string    `json:"nodeName,omitempty"`
	Endpoint    string    `json:"endpoint,omitempty"`
	Delivered   int64     `json:"delivered"`
	Backlog     int64     `json:"backlog"`
	Failed      int64     `json:"failed"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// LagSeconds is how long the oldest undelivered event has waited (0: none waiting).
	LagSeconds float64 `json:"lagSeconds"`
}

func newPeersCmd() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "Show each peer's delivery health: last success, last error, backlog, lag",
		Long: `Show each peer's delivery health from the store: deliveries done, backlog
(pending + retrying), failed, the last successful delivery, the last error, and the lag
(age of the oldest undelivered event).

Peers configured as EventPeer resources in the config dir are listed even before their
first delivery; peers known only from the store are listed too.`,
		Example: `  routerctl federation peers
  routerctl federation peers --group lab -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now()
			stats, err := st.PeerStats(cmd.Context(), group, now)
			if err != nil {
				return err
			}
			rows := peerRows(cmd, group, stats)
			return render(cmd, rows, func() *table {
				t := &table{header: []string{"GROUP", "PEER", "NODE", "DELIVERED", "BACKLOG", "FAILED", "LAST SUCCESS", "LAG", "LAST ERROR"}}
				for _, r := range rows {
					lag := "-"
					if r.Backlog > 0 {
						lag = (time.Duration(r.LagSeconds * float64(time.Second))).Round(time.Millisecond).String()
					}
					t.addRow(r.Group, r.Peer, dash(r.NodeName), r.Delivered, r.Backlog, r.Failed, timeOrDash(r.LastSuccess), lag, dash(r.LastError))
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only this event group")
	return cmd
}

// peerRows merges the store's statistics with the configured peers (EventPeers and
// spec.peersFrom, when the config dir loads; otherwise a note goes to stderr and only the
// store is shown).
func peerRows(cmd *cobra.Command, group string, stats []store.PeerDeliveryStats) []peerRow {
	type key struct{ g, p string }
	byKey := map[key]*peerRow{}
	var order []key
	add := func(k key) *peerRow {
		if r, ok := byKey[k]; ok {
			return r
		}
		r := &peerRow{Group: k.g, Peer: k.p}
		byKey[k] = r
		order = append(order, k)
		return r
	}
	if s, err := settings.Load(cmd.Flags()); err == nil {
		if cfg, err := schemas.LoadDir(s.ConfigDir); err == nil {
			// The peers as the transport reads them: EventPeers and spec.peersFrom.
			for _, g := range cfg.EventGroups() {
				if group != "" && g.Metadata.Name != group {
					continue
				}
				for _, p := range transport.GroupPeers(cfg, g) {
					if p.ResourceMissing {
						continue
					}
					r := add(key{g.Metadata.Name, p.Name})
					r.NodeName = p.NodeName
					if p.EventPeer != nil {
						r.Endpoint = p.EventPeer.Spec.Endpoint
					}
				}
			}
		} else if _, statErr := os.Stat(s.ConfigDir); statErr == nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: config dir %s not loaded (%v); showing peers from the store only\n", s.ConfigDir, firstLine(err.Error()))
		}
	}
	for _, s := range stats {
		r := add(key{s.Group, s.Peer})
		r.Delivered, r.Backlog, r.Failed = s.Delivered, s.Backlog, s.Failed
		r.LastSuccess, r.LastError, r.LastErrorAt = s.LastSuccess, s.LastError, s.LastErrorAt
		r.LagSeconds = s.Lag.Seconds()
	}
	slices.SortFunc(order, func(a, b key) int {
		if a.g != b.g {
			if a.g < b.g {
				return -1
			}
			return 1
		}
		switch {
		case a.p < b.p:
			return -1
		case a.p > b.p:
			return 1
		}
		return 0
	})
	out := make([]peerRow, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " ..."
		}
	}
	return s
}

// timeOrDash renders t in RFC 3339 (UTC, seconds) or "-" when zero.
func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
