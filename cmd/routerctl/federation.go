package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

func init() { addCommand(newFederationCmd) }

// federationSubcommands are added to `routerctl federation` by other files (for example
// federation_transport.go adds deliveries and peers) through addFederationCommand.
var federationSubcommands []func() *cobra.Command

// addFederationCommand registers a constructor for a `routerctl federation` subcommand.
// Call it from init. The subcommand inherits the settings flags (--state-dir, ...) and
// can open the node's store with openStore(cmd).
func addFederationCommand(f func() *cobra.Command) {
	federationSubcommands = append(federationSubcommands, f)
}

func newFederationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "Read and write the node's federation event store",
		Long: `Read and write the node's federation event store (the SQLite file in the state dir,
created on first use).

The store is found through the daemon settings: --state-dir, ROUTERD_STATE_DIR, or
stateDir in the settings file (/etc/routerd/routerd.yaml, --settings).`,
		Args: cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newFederationEventCmd(), newFederationPruneCmd(), newFederationStatsCmd())
	for _, f := range federationSubcommands {
		cmd.AddCommand(f())
	}
	return cmd
}

// openStore loads the daemon settings from cmd's flags and opens the node's store.
// The caller closes it.
func openStore(cmd *cobra.Command) (*store.Store, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, err
	}
	// The store's informational logs (migrations, prune totals) are for daemons; the CLI
	// reports what it did itself, so at the default level only warnings are shown.
	if s.LogLevel == settings.DefaultLogLevel {
		s.LogLevel = "warn"
	}
	st, err := store.Open(s.StorePath(), store.Options{Logger: s.Logger()})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func newFederationEventCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "event",
		Short: "Emit, list and show federation events",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newEventEmitCmd(), newEventListCmd(), newEventShowCmd())
	return cmd
}

func newEventEmitCmd() *cobra.Command {
	var (
		group, typ, subject, source, dedupe, id, file string
		payload                                       []string
		ttl                                           time.Duration
		skipTypeCheck                                 bool
	)
	cmd := &cobra.Command{
		Use:   "emit",
		Short: "Validate an event and store it (prints its id)",
		Long: `Validate an event and store it in the local store; prints the event id.

Either describe the event with flags (the original routerd flags), or give a JSON file
(--file, "-" for stdin) holding one event envelope. Without --id a new ULID is generated;
observedAt is now and expiresAt is now + --ttl (0 for no expiry). Without --source-node
the event's source is the group's spec.nodeName from the EventGroup in the config dir
(--config-dir): only events whose source is this node are pushed to the peers.

Events of the built-in types (routerd.client.ipv4.observed, address.observed,
neighbor.moved) must carry a payload that fits the type (an address in payload.address or
the subject); --skip-type-check stores them anyway. Stored events are recorded in the
audit log. A duplicate id is not stored twice; emit reports it and succeeds.`,
		Example: `  routerctl federation event emit --group cloudedge --type routerd.client.ipv4.observed \
    --subject 10.88.60.9 --source-node onprem-router --payload address=10.88.60.9 \
    --payload ownerSide=onprem --ttl 30m
  routerctl federation event emit --file event.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var e event.Event
			if file != "" {
				if anyChanged(cmd, "group", "type", "subject", "source-node", "payload", "dedupe-key", "id", "ttl") {
					return usagef("--file cannot be combined with --group, --type, --subject, --source-node, --payload, --dedupe-key, --id or --ttl")
				}
				data, err := readInput(cmd, file)
				if err != nil {
					return err
				}
				if e, err = event.Decode(data); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			} else {
				if group == "" || typ == "" {
					return usagef("--group and --type are required (or give --file)")
				}
				m, err := parsePayload(payload)
				if err != nil {
					return err
				}
				if ttl < 0 {
					return usagef("--ttl %v: must not be negative", ttl)
				}
				e = event.New(group, typ, source, subject, m, ttl, time.Now())
				e.DedupeKey = dedupe
				if id != "" {
					e.ID = id
				}
				if err := e.Validate(); err != nil {
					return err
				}
			}
			if !skipTypeCheck {
				if err := e.CheckTyped(); err != nil {
					return fmt.Errorf("%w (a %s event; --skip-type-check stores it anyway)", err, e.Type)
				}
			}
			if file == "" && e.SourceNode == "" {
				// Only events whose source is this node are pushed: default to it.
				node, err := groupNodeName(cmd, e.Group)
				if err != nil {
					return err
				}
				e.SourceNode = node
				if err := e.Validate(); err != nil {
					return err
				}
			}
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := st.InsertEvent(cmd.Context(), e)
			if err != nil {
				return err
			}
			if res.Duplicate {
				fmt.Fprintf(cmd.ErrOrStderr(), "event %s already stored (seq %d); nothing changed\n", res.ID, res.Seq)
			} else if err := st.AppendAudit(cmd.Context(), store.AuditEntry{Actor: programName, Action: "event.emit",
				Target: res.ID, Outcome: "ok", Detail: e.Group + " " + e.Type}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), res.ID)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&group, "group", "", "event group (required without --file)")
	f.StringVar(&typ, "type", "", "event type, e.g. routerd.client.ipv4.observed (required without --file)")
	f.StringVar(&subject, "subject", "", "event subject, e.g. an address")
	f.StringVar(&source, "source-node", "", "node that observed the event (default: the EventGroup's spec.nodeName in the config dir)")
	f.StringArrayVar(&payload, "payload", nil, "payload entry key=value (repeatable)")
	f.DurationVar(&ttl, "ttl", 30*time.Minute, "time to live: expiresAt = now + ttl (0: no expiry)")
	f.StringVar(&dedupe, "dedupe-key", "", "dedupe key (default: the id)")
	f.StringVar(&id, "id", "", "event id (default: a new ULID)")
	f.StringVar(&file, "file", "", `JSON file with one event envelope ("-" for stdin)`)
	f.BoolVar(&skipTypeCheck, "skip-type-check", false, "store a built-in event type even if its payload does not fit the type")
	return cmd
}

// groupNodeName returns spec.nodeName of EventGroup group in the config dir: the source
// of events emitted on this node.
func groupNodeName(cmd *cobra.Command, group string) (string, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return "", err
	}
	fix := fmt.Sprintf("give --source-node NODE, or --config-dir DIR holding the EventGroup %q with spec.nodeName", group)
	cfg, err := schemas.LoadOptions{SkipUnknownKinds: true}.Load(s.ConfigDir)
	if err != nil {
		return "", usagef("--source-node is not set and config dir %s cannot be read to find the node name of group %q: %v; %s", s.ConfigDir, group, err, fix)
	}
	g, _ := cfg.Get("EventGroup", group).(*schemas.EventGroup)
	if g == nil || strings.TrimSpace(g.Spec.NodeName) == "" {
		return "", usagef("--source-node is not set and config dir %s has no EventGroup %q naming this node (spec.nodeName); %s", s.ConfigDir, group, fix)
	}
	return g.Spec.NodeName, nil
}

// anyChanged reports whether any of the named flags was set.
func anyChanged(cmd *cobra.Command, names ...string) bool {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// readInput reads a file, or stdin for "-", refusing more than an event's size limit.
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, event.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// parsePayload turns repeated k=v flags into a map.
func parsePayload(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--payload %q: want key=value", kv)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("--payload: key %q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

// parseTimeFlag accepts an RFC 3339 time or a duration meaning "that long ago".
func parseTimeFlag(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usagef("--%s %q: want an RFC 3339 time or a duration such as 1h (that long ago)", name, v)
	}
	return t, nil
}

// eventRow is the JSON/YAML shape of a listed event: the envelope plus local fields.
type eventRow struct {
	Seq        int64       `json:"seq"`
	ReceivedAt time.Time   `json:"receivedAt"`
	Event      event.Event `json:"event"`
}

func toRows(evs []store.StoredEvent) []eventRow {
	rows := make([]eventRow, len(evs))
	for i, e := range evs {
		rows[i] = eventRow{Seq: e.Seq, ReceivedAt: e.ReceivedAt, Event: e.Event}
	}
	return rows
}

func newEventListCmd() *cobra.Command {
	var (
		f            store.EventFilter
		since, until string
		desc         bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored events (oldest first)",
		Long: `List stored events in local sequence order (oldest first, --desc for newest first).

--since and --until bound the event time (observedAt, or receivedAt when absent); each
takes an RFC 3339 time or a duration meaning "that long ago". Page with --limit and
--after SEQ (the last SEQ of the previous page).`,
		Example: `  routerctl federation event list --group cloudedge --since 1h
  routerctl federation event list --type routerd.client.ipv4.observed --subject 10.88. -o json
  routerctl federation event list --limit 100 --after 4200`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := outputFormat(cmd); err != nil {
				return err
			}
			now := time.Now()
			var err error
			if f.Since, err = parseTimeFlag("since", since, now); err != nil {
				return err
			}
			if f.Until, err = parseTimeFlag("until", until, now); err != nil {
				return err
			}
			if f.Limit < 0 || f.AfterSeq < 0 {
				return usagef("--limit and --after must not be negative")
			}
			f.Descending = desc
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			evs, err := st.ListEvents(cmd.Context(), f)
			if err != nil {
				return err
			}
			return render(cmd, toRows(evs), func() *table {
				t := &table{header: []string{"SEQ", "ID", "GROUP", "TYPE", "SOURCE", "SUBJECT", "OBSERVED", "EXPIRES"}}
				for _, e := range evs {
					t.addRow(e.Seq, e.Event.ID, e.Event.Group, e.Event.Type, dash(e.Event.SourceNode), dash(e.Event.Subject),
						tableTime(e.Event.ObservedAt), expiry(e.Event, now, tableTime))
				}
				return t
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Group, "group", "", "only this event group")
	fl.StringSliceVar(&f.Types, "type", nil, "only these event types (repeatable or comma-separated)")
	fl.StringVar(&f.SourceNode, "source", "", "only events observed by this node")
	fl.StringVar(&f.SubjectPrefix, "subject", "", "only subjects starting with this prefix")
	fl.StringVar(&since, "since", "", "event time at or after (RFC 3339, or a duration ago)")
	fl.StringVar(&until, "until", "", "event time before (RFC 3339, or a duration ago)")
	fl.IntVar(&f.Limit, "limit", 100, "at most this many events (0: all)")
	fl.Int64Var(&f.AfterSeq, "after", 0, "only events with SEQ greater than this (paging)")
	fl.BoolVar(&desc, "desc", false, "newest first")
	return cmd
}

// dash renders an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tableTime renders a time for a listing: RFC 3339 in UTC to the second ("-" for zero).
// JSON and YAML output and `event show` keep the full precision.
func tableTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// expiry renders expiresAt with format, adding "(expired)" when past.
func expiry(e event.Event, now time.Time, format func(time.Time) string) string {
	if e.ExpiresAt.IsZero() {
		return "-"
	}
	s := format(e.ExpiresAt)
	if e.Expired(now) {
		s += " (expired)"
	}
	return s
}

func newEventShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one stored event (envelope, local seq and receive time)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := outputFormat(cmd); err != nil {
				return err
			}
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			e, err := st.GetEvent(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("event %s not found in %s", args[0], st.Path())
			}
			if err != nil {
				return err
			}
			row := eventRow{Seq: e.Seq, ReceivedAt: e.ReceivedAt, Event: e.Event}
			return render(cmd, row, func() *table {
				t := &table{header: []string{"FIELD", "VALUE"}}
				ev := e.Event
				t.addRow("id", ev.ID)
				t.addRow("seq", e.Seq)
				t.addRow("group", ev.Group)
				t.addRow("type", ev.Type)
				t.addRow("sourceNode", dash(ev.SourceNode))
				t.addRow("subject", dash(ev.Subject))
				t.addRow("dedupeKey", dash(ev.DedupeKey))
				t.addRow("observedAt", dash(event.FormatTime(ev.ObservedAt)))
				t.addRow("expiresAt", expiry(ev, time.Now(), event.FormatTime))
				t.addRow("receivedAt", event.FormatTime(e.ReceivedAt))
				keys := make([]string, 0, len(ev.Payload))
				for k := range ev.Payload {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					t.addRow("payload."+k, ev.Payload[k])
				}
				return t
			})
		},
	}
}

// pruneRow is one line of `federation prune` output: the group ("" for a prune over the
// whole store) and what was (or would be) deleted.
type pruneRow struct {
	Group string `json:"group"`
	store.PruneResult
}

func newFederationPruneCmd() *cobra.Command {
	var (
		o          store.PruneOptions
		noExpir    bool
		fromConfig bool
		vacuum     bool
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete expired, old or surplus events from the store",
		Long: `Delete events by retention, in batches so that running daemons are not blocked:

  expired events       expiresAt + --expired-grace is past (on by default; --keep-expired)
  --max-age D          events without an expiry received more than D ago
  --max-events N       keep only the newest N events (of --group, or of the whole store)
  --history-max-age D  audit entries, finished subscription runs and executed or rejected
                       action plans older than D

--from-config applies instead the retention{maxEvents, maxAge} of every EventGroup in the
config dir (or of --group): expired events are kept maxAge after expiry, events without
expiry maxAge after they were received, and at most maxEvents per group.

Deliveries of a deleted event are deleted with it. --dry-run only counts.

Later inserts reuse the space deleted rows leave free, so the file stops growing in a
steady state. After a one-off purge, --vacuum rebuilds the file to shrink it; it holds the
write lock for the whole rebuild, so run it while routerd and routerd-eventd are stopped.`,
		Example: `  routerctl federation prune --dry-run
  routerctl federation prune --group cloudedge --max-age 168h --max-events 100000 -o json
  routerctl federation prune --from-config --config-dir /etc/routerd/conf.d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := outputFormat(cmd); err != nil {
				return err
			}
			if o.MaxAge < 0 || o.MaxEvents < 0 || o.ExpiredGrace < 0 || o.HistoryMaxAge < 0 {
				return usagef("--max-age, --max-events, --expired-grace and --history-max-age must not be negative")
			}
			if fromConfig && anyChanged(cmd, "max-age", "max-events", "expired-grace", "keep-expired") {
				return usagef("--from-config takes the retention from the EventGroups; drop --max-age, --max-events, --expired-grace and --keep-expired")
			}
			o.Expired = !noExpir
			plans := []store.PruneOptions{o}
			if fromConfig {
				var err error
				if plans, err = retentionFromConfig(cmd, o); err != nil {
					return err
				}
			}
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			rows := make([]pruneRow, 0, len(plans))
			for _, p := range plans {
				res, err := st.Prune(cmd.Context(), p)
				if err != nil {
					return err
				}
				rows = append(rows, pruneRow{Group: p.Group, PruneResult: res})
				if !p.DryRun && res.Total()+res.History > 0 {
					if err := st.AppendAudit(cmd.Context(), store.AuditEntry{Actor: programName, Action: "store.prune", Target: p.Group,
						Outcome: "ok", Detail: fmt.Sprintf("expired=%d aged=%d overLimit=%d history=%d", res.Expired, res.Aged, res.OverLimit, res.History)}); err != nil {
						return err
					}
				}
			}
			if len(plans) > 0 && o.HistoryMaxAge > 0 && fromConfig {
				// History is not per group: one pass after the groups.
				res, err := st.Prune(cmd.Context(), store.PruneOptions{HistoryMaxAge: o.HistoryMaxAge, DryRun: o.DryRun, BatchSize: o.BatchSize})
				if err != nil {
					return err
				}
				rows = append(rows, pruneRow{PruneResult: res})
			}
			if vacuum && !o.DryRun {
				saved, err := st.Vacuum(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "vacuum: file %d bytes smaller\n", saved)
			}
			return render(cmd, rows, func() *table {
				verb := "DELETED"
				if o.DryRun {
					verb = "WOULD DELETE"
				}
				t := &table{header: []string{"GROUP", "EXPIRED", "MAX-AGE", "MAX-EVENTS", "HISTORY", verb}}
				for _, r := range rows {
					t.addRow(dash(r.Group), r.Expired, r.Aged, r.OverLimit, r.History, r.Total()+r.History)
				}
				return t
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.DryRun, "dry-run", false, "count what would be deleted, delete nothing")
	f.StringVar(&o.Group, "group", "", "only this event group")
	f.BoolVar(&noExpir, "keep-expired", false, "do not delete expired events")
	f.DurationVar(&o.ExpiredGrace, "expired-grace", 0, "keep expired events this long after expiry")
	f.DurationVar(&o.MaxAge, "max-age", 0, "delete events without expiry received longer ago than this (0: off)")
	f.Int64Var(&o.MaxEvents, "max-events", 0, "keep only the newest N events (0: off)")
	f.DurationVar(&o.HistoryMaxAge, "history-max-age", 0, "delete history (audit, finished runs, done action plans) older than this (0: off)")
	f.IntVar(&o.BatchSize, "batch-size", store.DefaultPruneBatchSize, "rows deleted per transaction")
	f.BoolVar(&fromConfig, "from-config", false, "use the retention of each EventGroup in the config dir")
	f.BoolVar(&vacuum, "vacuum", false, "afterwards rebuild the file without free pages (blocks writers; run with the daemons stopped)")
	return cmd
}

// retentionFromConfig loads the EventGroups of the config dir and returns one prune per
// group (only base.Group when set), carrying base's DryRun and BatchSize.
func retentionFromConfig(cmd *cobra.Command, base store.PruneOptions) ([]store.PruneOptions, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, err
	}
	cfg, err := schemas.LoadOptions{SkipUnknownKinds: true}.Load(s.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("config dir %s: %w", s.ConfigDir, err)
	}
	var out []store.PruneOptions
	for _, g := range cfg.EventGroups() {
		if base.Group != "" && g.Metadata.Name != base.Group {
			continue
		}
		r := g.Spec.Retention
		p := store.GroupRetention(g.Metadata.Name, r.MaxAge.Duration, int64(r.MaxEvents))
		p.DryRun, p.BatchSize = base.DryRun, base.BatchSize
		out = append(out, p)
	}
	if len(out) == 0 {
		if base.Group != "" {
			return nil, fmt.Errorf("config dir %s has no EventGroup %q", s.ConfigDir, base.Group)
		}
		return nil, fmt.Errorf("config dir %s has no EventGroup", s.ConfigDir)
	}
	return out, nil
}

func newFederationStatsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Summarise the store: events per group and type, oldest/newest, size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := outputFormat(cmd); err != nil {
				return err
			}
			st, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			s, err := st.Stats(cmd.Context())
			if err != nil {
				return err
			}
			return render(cmd, s, func() *table {
				// The summary precedes the per-type table in table form.
				fmt.Fprintf(cmd.OutOrStdout(), "store:       %s (schema %d, %d bytes, %d free)\nevents:      %d (%d expired), last seq %d\ndeliveries:  %s\n\n",
					s.Path, s.SchemaVersion, s.SizeBytes, s.FreeBytes, s.Events, s.Expired, s.LastSeq, formatCounts(s.Deliveries))
				t := &table{header: []string{"GROUP", "TYPE", "EVENTS", "OLDEST", "NEWEST"}}
				for _, tc := range s.ByType {
					t.addRow(tc.Group, tc.Type, tc.Count, tableTime(tc.Oldest), tableTime(tc.Newest))
				}
				t.addRow("(all)", "", s.Events, tableTime(s.Oldest), tableTime(s.Newest))
				return t
			})
		},
	}
}

// formatCounts renders a map of counts as "a=1 b=2" in key order ("-" when empty).
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
