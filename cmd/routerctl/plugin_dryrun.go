package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/schemas"
)

// dryRunOptions are the dry-run flags.
type dryRunOptions struct {
	events       string
	hook         string
	subscription string
	now          string
	since        string
	group        string
	types        []string
	limit        int
	batchSize    int
	replay       string
	against      string
}

func newPluginDryRunCmd() *cobra.Command {
	var o dryRunOptions
	cmd := &cobra.Command{
		Use:   "dry-run NAME",
		Short: "Run a plugin on events without applying anything",
		Long: `Run the plugin NAME on events in the same sandbox, under the same grants and limits as
the daemon, and print what it would produce: the DynamicConfigParts its resources would
become (checked against the Kind schemas, the subscription's allowed Kinds and, with
--config, the DynamicOverridePolicies), its action plans and directives, the host
functions it called, and the time taken. Nothing is applied: host functions with side
effects (event_emit, kv_set) only report what they would do.

Events come from --events FILE ("-" for stdin: a JSON array of event envelopes, one
envelope, or {"events": [...]}) or, without it, from the node's store (--since, --group,
--type, --limit).

With --replay SINCE --against NEW.wasm, the stored events since SINCE (a duration such
as 24h, or an RFC 3339 time) are replayed in batches of --batch-size through the
installed version and the candidate module side by side, and every batch whose outputs
differ is printed. Exit code 1 when any output differs (or either version fails), so the
check can gate a deployment.`,
		Example: `  routerctl plugin dry-run event-to-remote-claim --plugin-dir bin/plugins \
      --events testdata/events/observed.json -o json
  routerctl plugin dry-run event-to-remote-claim --replay 24h --against ./event-to-remote-claim.wasm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (o.replay == "") != (o.against == "") {
				return usagef("--replay and --against go together")
			}
			if o.replay != "" && o.events != "" {
				return usagef("--events cannot be combined with --replay (replay reads the store)")
			}
			hook := abi.Hook(o.hook)
			if hook != abi.HookOnEvents && hook != abi.HookPlan {
				return usagef("--hook %q: want on_events or plan", o.hook)
			}
			env, err := loadPluginEnv(cmd)
			if err != nil {
				return err
			}
			if o.replay != "" {
				return runReplay(cmd, env, args[0], hook, o)
			}
			return runDryRun(cmd, env, args[0], hook, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.events, "events", "", `events file (JSON), "-" for stdin; default: recent events from the store`)
	f.StringVar(&o.hook, "hook", string(abi.HookOnEvents), "hook to run: on_events or plan")
	f.StringVar(&o.subscription, "subscription", "", "EventSubscription whose output rules apply (default: the first one using the plugin)")
	f.StringVar(&o.now, "now", "", "request time, RFC 3339 (default: now)")
	f.StringVar(&o.since, "since", "1h", "store events: since this duration ago or RFC 3339 time")
	f.StringVar(&o.group, "group", "", "store events: only this event group")
	f.StringArrayVar(&o.types, "type", nil, "store events: only these types (repeatable; default: the subscription's match.types)")
	f.IntVar(&o.limit, "limit", 1000, "store events: at most this many")
	f.IntVar(&o.batchSize, "batch-size", 0, "events per call (default: all in one call; replay: 10)")
	f.StringVar(&o.replay, "replay", "", "replay stored events since SINCE (duration or RFC 3339) through the installed and the --against version")
	f.StringVar(&o.against, "against", "", "candidate module (.wasm) to compare with the installed version")
	return cmd
}

// dryRunReport is the output of dry-run.
type dryRunReport struct {
	Plugin       string                       `json:"plugin"`
	Version      string                       `json:"version"`
	Digest       string                       `json:"digest"`
	Hook         string                       `json:"hook"`
	Source       string                       `json:"source"`
	Events       int                          `json:"events"`
	Calls        int                          `json:"calls"`
	DurationUs   float64                      `json:"durationUs"`
	Parts        []*schemas.DynamicConfigPart `json:"parts"`
	Rejected     []dynamic.Rejection          `json:"rejected"`
	ActionPlans  []abi.ActionPlan             `json:"actionPlans"`
	Directives   []abi.Directive              `json:"directives"`
	ResultEvents []abi.ResultEvent            `json:"resultEvents"`
	HostCalls    []capability.Record          `json:"hostCalls"`
	Policy       string                       `json:"policy"`
	Applied      bool                         `json:"applied"`
}

// subscriptionFor returns the EventSubscription whose rules apply to the plugin's output
// (--subscription, else the first one using the plugin, else the plugin's name stands
// in), the dynamic configuration its proposals are checked against (without --config:
// no policy and no static resources), and the subscription resource when there is one.
func subscriptionFor(env *pluginEnv, plugin, name string) (subName string, dc dynamic.Config, match *schemas.EventSubscription) {
	dc = dynamic.Config{SkipPolicy: true, Subscriptions: map[string]dynamic.Subscription{}}
	if env.cfg != nil {
		dc = dynamic.ConfigFrom(env.cfg)
		for _, s := range env.cfg.EventSubscriptions() {
			if (name != "" && s.Metadata.Name == name) || (name == "" && s.Spec.Trigger.PluginRef == plugin) {
				return s.Metadata.Name, dc, s
			}
		}
	}
	if name != "" {
		return name, dc, nil
	}
	return plugin, dc, nil
}

// parseSince accepts a duration (ago) or an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usagef("%q: want a duration like 24h or an RFC 3339 time", v)
	}
	return t, nil
}

// readEventsFile decodes an events file: an array, one envelope, or {"events": [...]}.
// The events become subscription records as the daemon reads them from its store.
func readEventsFile(cmd *cobra.Command, name string) ([]subscribe.Record, error) {
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
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var evs []event.Event
	if strings.HasPrefix(strings.TrimSpace(string(data)), "[") {
		err = json.Unmarshal(data, &evs)
	} else {
		// One envelope, or {"events": [...]} (an envelope has a type, the wrapper not).
		var probe map[string]json.RawMessage
		if err = json.Unmarshal(data, &probe); err == nil {
			if raw, ok := probe["events"]; ok && probe["type"] == nil {
				err = json.Unmarshal(raw, &evs)
			} else {
				var e event.Event
				err = json.Unmarshal(data, &e)
				evs = []event.Event{e}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("events file %s: %w", name, err)
	}
	out := make([]subscribe.Record, 0, len(evs))
	for i, e := range evs {
		if strings.TrimSpace(e.ID) == "" || strings.TrimSpace(e.Type) == "" || strings.TrimSpace(e.Group) == "" {
			return nil, fmt.Errorf("events file %s: event %d: id, group and type are required", name, i)
		}
		rec, err := subscribe.RecordOf(e)
		if err != nil {
			return nil, fmt.Errorf("events file %s: event %d: %w", name, i, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// storeEvents reads events from the node's store.
func storeEvents(ctx context.Context, env *pluginEnv, f store.EventFilter) ([]subscribe.Record, error) {
	path := env.settings.StorePath()
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no events: --events not given and the store %s does not exist (set --state-dir)", path)
	}
	st, err := store.Open(path, store.Options{Logger: env.log})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stored, err := st.ListEvents(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list stored events: %w", err)
	}
	out := make([]subscribe.Record, 0, len(stored))
	for _, s := range stored {
		rec, err := subscribe.RecordOf(s.Event)
		if err != nil {
			return nil, err
		}
		rec.Seq, rec.ReceivedAt = s.Seq, s.ReceivedAt
		out = append(out, rec)
	}
	return out, nil
}

// eventFilter builds the store filter from the flags and the subscription's match.
func eventFilter(o dryRunOptions, sub *schemas.EventSubscription, now time.Time) (store.EventFilter, error) {
	since, err := parseSince(o.since, now)
	if err != nil {
		return store.EventFilter{}, err
	}
	f := store.EventFilter{Group: o.group, Types: o.types, Since: since, Limit: o.limit}
	if sub != nil {
		if f.Group == "" {
			f.Group = sub.Spec.GroupRef
		}
		if len(f.Types) == 0 {
			f.Types = sub.Spec.Match.Types
		}
	}
	return f, nil
}

// batches splits events into batches of n (n <= 0: one batch).
func batches(events []subscribe.Record, n int) [][]subscribe.Record {
	if n <= 0 || n >= len(events) {
		return [][]subscribe.Record{events}
	}
	var out [][]subscribe.Record
	for len(events) > 0 {
		k := min(n, len(events))
		out = append(out, events[:k])
		events = events[k:]
	}
	return out
}

// contextFor returns the request context resources of the plugin's resource.
func contextFor(env *pluginEnv, name string) ([]json.RawMessage, error) {
	if env.cfg == nil {
		return nil, nil
	}
	for _, p := range env.cfg.Plugins() {
		if p.Metadata.Name == name {
			return host.ContextResources(env.cfg, p.Spec.Context.Resources)
		}
	}
	return nil, nil
}

func runDryRun(cmd *cobra.Command, env *pluginEnv, name string, hook abi.Hook, o dryRunOptions) error {
	ctx := cmd.Context()
	now := time.Now()
	if o.now != "" {
		t, err := time.Parse(time.RFC3339, o.now)
		if err != nil {
			return usagef("--now %q: want an RFC 3339 time", o.now)
		}
		now = t
	}
	subName, dc, subRes := subscriptionFor(env, name, o.subscription)
	var events []subscribe.Record
	var err error
	if o.events != "" {
		events, err = readEventsFile(cmd, o.events)
	} else {
		var f store.EventFilter
		if f, err = eventFilter(o, subRes, now); err == nil {
			events, err = storeEvents(ctx, env, f)
		}
	}
	if err != nil {
		return err
	}
	ctxRes, err := contextFor(env, name)
	if err != nil {
		return err
	}
	h, err := env.newHost(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := env.loadOne(ctx, h, name); err != nil {
		return err
	}
	st, _ := h.Inspect(name)
	rep := dryRunReport{
		Plugin: name, Version: st.Status.Version, Digest: st.Status.Digest, Hook: string(hook), Source: dynamic.SourceOf(subName),
		Events: len(events), Parts: []*schemas.DynamicConfigPart{}, Rejected: []dynamic.Rejection{},
		ActionPlans: []abi.ActionPlan{}, Directives: []abi.Directive{}, ResultEvents: []abi.ResultEvent{},
		HostCalls: []capability.Record{}, Policy: "not evaluated (no --config)",
	}
	if !dc.SkipPolicy {
		rep.Policy = fmt.Sprintf("%d DynamicOverridePolicies evaluated", len(dc.Policies))
	}
	group := dc.Subscriptions[subName].Group
	if group == "" && len(events) > 0 {
		group = events[0].Group
	}
	// Parts proposed by earlier batches are "stored" for later ones, as in the daemon.
	proposed := map[string]dynamic.Part{}
	var order []string // keys of proposed, in the order first proposed
	prev := func(kind, n string) (dynamic.Part, bool) {
		p, ok := proposed[kind+"/"+n]
		return p, ok
	}
	var total time.Duration
	for i, evs := range batches(events, o.batchSize) {
		b := subscribe.Batch{ID: fmt.Sprintf("dry-run-%d", i), Subscription: subName, Group: group, Plugin: name, Context: ctxRes, Events: evs}
		in, err := subscribe.BuildRequestWith(b, now, subscribe.RequestOptions{TriggerType: abi.TriggerDryRun, Topic: "routerctl", DryRun: true})
		if err != nil {
			return err
		}
		out, tr, err := h.CallTraced(ctx, name, hook, in)
		total += tr.Duration
		rep.Calls++
		rep.HostCalls = append(rep.HostCalls, tr.HostCalls...)
		if err != nil {
			return fmt.Errorf("batch %d (%d events): %w", i, len(evs), err)
		}
		res, err := subscribe.ParseResult(out)
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		// The checks static config gets run against the config plus the parts of earlier
		// batches, as the daemon runs them against its live parts.
		live := make([]dynamic.Part, 0, len(proposed))
		for _, k := range order {
			if part, ok := proposed[k]; ok {
				live = append(live, part)
			}
		}
		p := dynamic.Propose(dc.LiveCheck(rep.Source, live), b, res, now, prev)
		for _, pp := range p.Parts {
			k := pp.Part.Kind + "/" + pp.Part.Name
			if _, ok := proposed[k]; !ok {
				order = append(order, k)
			}
			proposed[k] = pp.Part
		}
		for _, wd := range p.Withdrawals {
			delete(proposed, wd.Ref.Kind+"/"+wd.Ref.Name)
		}
		rep.Rejected = append(rep.Rejected, p.Rejections...)
		rep.ActionPlans = append(rep.ActionPlans, res.Doc.Status.ActionPlans...)
		rep.Directives = append(rep.Directives, res.Doc.Status.Directives...)
		rep.ResultEvents = append(rep.ResultEvents, res.Doc.Status.Events...)
	}
	for _, k := range order {
		if p, ok := proposed[k]; ok {
			rep.Parts = append(rep.Parts, p.Document)
			delete(proposed, k) // a key withdrawn and proposed again is listed once
		}
	}
	rep.DurationUs = float64(total.Nanoseconds()) / 1e3
	return render(cmd, rep, func() *table { return dryRunTable(rep) })
}

func dryRunTable(r dryRunReport) *table {
	t := &table{header: []string{"KIND", "NAME", "DETAIL"}}
	for _, p := range r.Parts {
		for _, res := range p.Spec.Resources {
			t.addRow("DynamicConfigPart", p.Metadata.Name, fmt.Sprintf("%s/%s ttl %v event %s", res.Object.GetKind(), res.Object.GetName(), p.Spec.TTL, strings.Join(p.Spec.Events, ",")))
		}
	}
	for _, x := range r.Rejected {
		t.addRow("rejected", x.Target, x.String())
	}
	for _, p := range r.ActionPlans {
		t.addRow("ActionPlan", p.Name, fmt.Sprintf("%s %s risk %s", p.Provider, p.Action, dash(p.RiskLevel)))
	}
	for _, d := range r.Directives {
		t.addRow("Directive", d.Target.Kind+"/"+d.Target.Name, d.Op+": "+d.Reason)
	}
	for _, e := range r.ResultEvents {
		t.addRow("Event", e.Type, e.Message)
	}
	for _, c := range r.HostCalls {
		outcome := "allowed"
		if c.Code != "" {
			outcome = c.Code
		}
		t.addRow("HostCall", c.Function, strings.TrimSpace(outcome+" "+c.Detail))
	}
	t.addRow("Summary", r.Plugin, fmt.Sprintf("%s %s: %d events, %d calls, %.1fµs, %d parts, %d rejected, %d plans; policy %s; nothing applied",
		dash(r.Version), r.Hook, r.Events, r.Calls, r.DurationUs, len(r.Parts), len(r.Rejected), len(r.ActionPlans), r.Policy))
	return t
}
