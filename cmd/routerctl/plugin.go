package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/schemas"
)

func init() { addCommand(newPluginCmd) }

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "List, inspect and dry-run Wasm plugins",
		Long: `List, inspect and dry-run the Wasm plugins of the plugin directory.

Plugins are *.wasm modules in the plugin dir (--plugin-dir, ROUTERD_PLUGIN_DIR). Plugin
resources (kind: Plugin) bind a module to grants and limits; they are read from --config
(files or directories, repeatable) or else from the config dir when it exists. A module
no Plugin resource names runs with defaults: the hooks its manifest declares, only the
log and now grants, default limits.

list asks the running routerd over its control socket and falls back to loading the
plugin dir itself. inspect and dry-run always load the plugins themselves, in the same
sandbox and under the same limits as the daemon, and never change anything.`,
		Args: cobra.NoArgs,
	}
	settings.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringArray("config", nil, "resource documents with Plugin resources: file or directory (repeatable; default: the config dir if it exists)")
	cmd.AddCommand(newPluginListCmd(), newPluginInspectCmd(), newPluginDryRunCmd())
	return cmd
}

// pluginEnv is what the plugin commands share: settings and the loaded config.
type pluginEnv struct {
	settings settings.Settings
	cfg      *schemas.Config // nil without config
	log      *slog.Logger
}

// loadPluginEnv reads the settings and the --config resources.
func loadPluginEnv(cmd *cobra.Command) (*pluginEnv, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, err
	}
	env := &pluginEnv{settings: s}
	level, _ := settings.ParseLevel(s.LogLevel)
	if !cmd.Flags().Changed("log-level") && os.Getenv("ROUTERD_LOG_LEVEL") == "" {
		level = slog.LevelWarn // quiet by default: the command prints what matters
	}
	env.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	paths, _ := cmd.Flags().GetStringArray("config")
	if len(paths) == 0 {
		if fi, err := os.Stat(s.ConfigDir); err == nil && fi.IsDir() {
			paths = []string{s.ConfigDir}
		}
	}
	if len(paths) > 0 {
		cfg, err := schemas.LoadFiles(paths...)
		if err != nil {
			return nil, fmt.Errorf("load config %s: %w", strings.Join(paths, ", "), err)
		}
		env.cfg = cfg
	}
	return env, nil
}

// cacheDir returns the compilation cache to use: the daemon's when its state dir exists
// and belongs to this user, else a per-user one in the temp dir (so repeated dry-runs
// stay fast without creating state, and nobody else's cache is used).
func (e *pluginEnv) cacheDir() string {
	if fi, err := os.Stat(e.settings.StateDir); err == nil && fi.IsDir() {
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) == os.Geteuid() {
			return e.settings.CacheDir()
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("routerd-wasm-cache-%d", os.Geteuid()))
}

// newHost creates a standalone, dry-run host with the config's Plugin resources.
func (e *pluginEnv) newHost(ctx context.Context) (*host.Host, error) {
	h, err := host.New(host.Options{
		Logger:   e.log,
		CacheDir: e.cacheDir(),
		DryRun:   true,
		Config:   configSource{e.cfg},
	})
	if err != nil {
		return nil, err
	}
	if err := h.Configure(ctx, host.SpecsFromConfig(e.cfg)); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// specFor returns the Plugin resource named name, or the default spec of name.wasm.
func (e *pluginEnv) specFor(name string) host.Spec {
	for _, s := range host.SpecsFromConfig(e.cfg) {
		if s.Name == name {
			return s
		}
	}
	return host.DefaultSpec(name + ".wasm")
}

// loadOne loads only the plugin named name into h.
func (e *pluginEnv) loadOne(ctx context.Context, h *host.Host, name string) (host.Spec, error) {
	spec := e.specFor(name)
	path := filepath.Join(e.settings.PluginDir, spec.Module)
	if _, err := os.Stat(path); err != nil {
		return spec, fmt.Errorf("plugin %s: module %s: %w (plugin dir %s; set --plugin-dir)", name, spec.Module, err, e.settings.PluginDir)
	}
	return spec, h.LoadFile(ctx, path, spec)
}

// configSource serves config_get from the --config resources.
type configSource struct{ cfg *schemas.Config }

// Resources implements configget.Source.
func (c configSource) Resources(_ context.Context, kind, name string) ([]json.RawMessage, error) {
	if c.cfg == nil {
		return nil, nil
	}
	var out []json.RawMessage
	for _, o := range c.cfg.Objects() {
		if o.GetKind() != kind || (name != "" && o.GetName() != name) {
			continue
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// ---- list ----

func newPluginListCmd() *cobra.Command {
	var standalone bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List plugins: version, digest, state, grants, calls, errors, latency",
		Long: `List the plugins with their version, module digest, state (ready, stale, circuit-open,
half-open, failed), grants, call and error counts and p50/p99 latency.

The running routerd is asked first (GET /v1/plugins on the control socket); when it does
not answer, or with --standalone, the plugin dir is loaded here and the counters are zero.
A module that fails to load is listed with state failed and its error.`,
		Example: `  routerctl plugin list
  routerctl plugin list --standalone --plugin-dir bin/plugins -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := loadPluginEnv(cmd)
			if err != nil {
				return err
			}
			var sts []host.PluginStatus
			if !standalone {
				sts, err = daemonPlugins(cmd.Context(), env.settings.ControlSocket)
			}
			if standalone || err != nil {
				if fi, serr := os.Stat(env.settings.PluginDir); serr != nil || !fi.IsDir() {
					return fmt.Errorf("plugin dir %s: not a directory (set --plugin-dir)", env.settings.PluginDir)
				}
				h, err := env.newHost(cmd.Context())
				if err != nil {
					return err
				}
				defer h.Close()
				_ = h.LoadDir(cmd.Context(), env.settings.PluginDir) // failures show as state failed
				sts = h.Status()
			}
			return render(cmd, sts, func() *table { return statusTable(sts) })
		},
	}
	cmd.Flags().BoolVar(&standalone, "standalone", false, "do not ask the daemon; load the plugin dir here")
	return cmd
}

// daemonPlugins asks the daemon's control API for the plugin status.
func daemonPlugins(ctx context.Context, socket string) ([]host.PluginStatus, error) {
	if socket == "" {
		return nil, errors.New("no control socket")
	}
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://routerd/v1/plugins", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("control API: GET /v1/plugins: %s", resp.Status)
	}
	var sts []host.PluginStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&sts); err != nil {
		return nil, fmt.Errorf("control API: GET /v1/plugins: %w", err)
	}
	return sts, nil
}

func statusTable(sts []host.PluginStatus) *table {
	t := &table{header: []string{"NAME", "VERSION", "DIGEST", "STATE", "GRANTS", "CALLS", "ERRORS", "P50", "P99", "LAST ERROR"}}
	for _, s := range sts {
		t.addRow(s.Name, dash(s.Version), shortDigest(s.Digest), s.State, dash(strings.Join(s.Grants, ",")),
			s.Calls, s.Errors, latency(s.P50Micros), latency(s.P99Micros), dash(truncateText(s.Problem(), 80)))
	}
	return t
}

func shortDigest(d string) string {
	if len(d) < 12 {
		return dash(d)
	}
	return d[:12]
}

func latency(us float64) string {
	switch {
	case us <= 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.1fµs", us)
	default:
		return fmt.Sprintf("%.2fms", us/1000)
	}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ---- inspect ----

func newPluginInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a plugin's manifest, requested vs granted capabilities and limits",
		Long: `Load one plugin (the Plugin resource named NAME, else NAME.wasm with defaults) and show
its manifest, the capabilities it requests and those its Plugin resource grants (and which
requested ones are missing), its grants in detail, its effective limits, its module
digest and whether it uses the fast call path.`,
		Example: `  routerctl plugin inspect event-to-remote-claim --plugin-dir bin/plugins
  routerctl plugin inspect echo -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := loadPluginEnv(cmd)
			if err != nil {
				return err
			}
			h, err := env.newHost(cmd.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			if _, err := env.loadOne(cmd.Context(), h, args[0]); err != nil {
				return err
			}
			info, err := h.Inspect(args[0])
			if err != nil {
				return err
			}
			return render(cmd, info, func() *table { return inspectTable(info) })
		},
	}
}

func inspectTable(i host.PluginInfo) *table {
	t := &table{header: []string{"FIELD", "VALUE"}}
	s, m, g, l := i.Status, i.Manifest, i.Spec.Grants, i.Spec.Limits
	t.addRow("name", s.Name)
	t.addRow("module", fmt.Sprintf("%s (%d bytes)", i.File, i.SizeBytes))
	t.addRow("sha256", dash(s.Digest))
	if m != nil {
		t.addRow("manifest", fmt.Sprintf("%s %s (%s)", m.Name, m.Version, m.ABI))
		if m.Description != "" {
			t.addRow("description", m.Description)
		}
		t.addRow("declared hooks", joinHooks(m.Hooks))
	}
	t.addRow("enabled hooks", joinHooks(s.Hooks))
	t.addRow("state", s.State)
	t.addRow("fast path", s.FastPath)
	t.addRow("requested", dash(strings.Join(i.Requested, ", ")))
	t.addRow("granted", dash(strings.Join(i.Granted, ", ")))
	t.addRow("missing", dash(strings.Join(i.Missing, ", ")))
	t.addRow("grants", describeGrants(g))
	t.addRow("limits", fmt.Sprintf("memory %d MiB, timeout %v, output %d bytes, concurrency %d, warm %d",
		l.MemoryMiB, l.Timeout, l.MaxOutputBytes, l.MaxConcurrency, l.WarmInstances))
	if i.Spec.Defaulted {
		t.addRow("resource", "none (defaults: manifest hooks, log and now granted)")
	}
	if s.LastError != "" {
		t.addRow("last error", s.LastError)
	}
	return t
}

func joinHooks(hs []abi.Hook) string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = string(h)
	}
	return dash(strings.Join(out, ", "))
}

func describeGrants(g capability.Grants) string {
	var parts []string
	if g.Log {
		parts = append(parts, "log")
	}
	if g.Now {
		parts = append(parts, "now")
	}
	if g.KV {
		parts = append(parts, "kv")
	}
	if len(g.ConfigGet.Kinds) > 0 {
		parts = append(parts, "configGet.kinds="+strings.Join(g.ConfigGet.Kinds, "|"))
	}
	if len(g.EventEmit.Types) > 0 {
		parts = append(parts, "eventEmit.types="+strings.Join(g.EventEmit.Types, "|"))
	}
	if len(g.ProviderRequest.Hosts) > 0 || len(g.ProviderRequest.ProfileRefs) > 0 {
		parts = append(parts, "providerRequest.hosts="+strings.Join(g.ProviderRequest.Hosts, "|")+
			" profileRefs="+strings.Join(g.ProviderRequest.ProfileRefs, "|"))
	}
	if g.WASI.Env {
		parts = append(parts, "wasi.env")
	}
	for _, f := range g.WASI.Files {
		mode := "rw"
		if f.ReadOnly {
			mode = "ro"
		}
		parts = append(parts, fmt.Sprintf("wasi.file %s→%s (%s)", f.HostPath, f.GuestPath, mode))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// ---- dry-run ----

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
	Rejected     []rejectedResource           `json:"rejected"`
	ActionPlans  []abi.ActionPlan             `json:"actionPlans"`
	Directives   []abi.Directive              `json:"directives"`
	ResultEvents []abi.ResultEvent            `json:"resultEvents"`
	HostCalls    []capability.Record          `json:"hostCalls"`
	Policy       string                       `json:"policy"`
	Applied      bool                         `json:"applied"`
}

// rejectedResource is a resource of the result that would not become a part.
type rejectedResource struct {
	Resource string `json:"resource"`
	Reason   string `json:"reason"`
}

// subscriptionFor returns the EventSubscription source and rules for the plugin.
func subscriptionFor(env *pluginEnv, plugin, name string) (source string, sub dynamic.Subscription, match *schemas.EventSubscription) {
	sub = dynamic.Subscription{AllowedKinds: []string{"RemoteAddressClaim"}, DefaultTTL: 30 * time.Minute}
	if env.cfg != nil {
		dc := dynamic.ConfigFrom(env.cfg)
		for _, s := range env.cfg.EventSubscriptions() {
			if (name != "" && s.Metadata.Name == name) || (name == "" && s.Spec.Trigger.PluginRef == plugin) {
				ds := dc.Subscriptions[s.Metadata.Name]
				if len(ds.AllowedKinds) > 0 {
					sub.AllowedKinds = ds.AllowedKinds
				}
				if ds.DefaultTTL > 0 {
					sub.DefaultTTL = ds.DefaultTTL
				}
				sub.Group = ds.Group
				return dynamic.SourceOf(s.Metadata.Name), sub, s
			}
		}
	}
	if name != "" {
		return dynamic.SourceOf(name), sub, nil
	}
	return "Plugin/" + plugin, sub, nil
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
func readEventsFile(cmd *cobra.Command, name string) ([]abi.Event, error) {
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
	var evs []abi.Event
	if strings.HasPrefix(strings.TrimSpace(string(data)), "[") {
		err = json.Unmarshal(data, &evs)
	} else {
		// One envelope, or {"events": [...]} (an envelope has a type, the wrapper not).
		var probe map[string]json.RawMessage
		if err = json.Unmarshal(data, &probe); err == nil {
			if raw, ok := probe["events"]; ok && probe["type"] == nil {
				err = json.Unmarshal(raw, &evs)
			} else {
				var e abi.Event
				err = json.Unmarshal(data, &e)
				evs = []abi.Event{e}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("events file %s: %w", name, err)
	}
	for i, e := range evs {
		if strings.TrimSpace(e.ID) == "" || strings.TrimSpace(e.Type) == "" || strings.TrimSpace(e.Group) == "" {
			return nil, fmt.Errorf("events file %s: event %d: id, group and type are required", name, i)
		}
	}
	return evs, nil
}

// storeEvents reads events from the node's store.
func storeEvents(ctx context.Context, env *pluginEnv, f store.EventFilter) ([]abi.Event, error) {
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
	out := make([]abi.Event, 0, len(stored))
	for _, s := range stored {
		b, err := json.Marshal(s.Event)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", s.Event.ID, err)
		}
		var e abi.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("event %s: %w", s.Event.ID, err)
		}
		out = append(out, e)
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

// buildRequest encodes the PluginRequest of one batch.
func buildRequest(events []abi.Event, ctxRes []json.RawMessage, now time.Time, batch int, topic string) ([]byte, error) {
	req := abi.Request{
		APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		BatchID: fmt.Sprintf("dry-run-%d", batch),
		Spec: abi.RequestSpec{
			Trigger: abi.Trigger{Type: abi.TriggerDryRun, Topic: topic},
			Now:     now.UTC(), Events: events, Context: abi.RequestContext{Resources: ctxRes}, DryRun: true,
		},
	}
	return json.Marshal(req)
}

// batches splits events into batches of n (n <= 0: one batch).
func batches(events []abi.Event, n int) [][]abi.Event {
	if n <= 0 || n >= len(events) {
		return [][]abi.Event{events}
	}
	var out [][]abi.Event
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
	source, sub, subRes := subscriptionFor(env, name, o.subscription)
	var events []abi.Event
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
		Plugin: name, Version: st.Status.Version, Digest: st.Status.Digest, Hook: string(hook), Source: source,
		Events: len(events), Parts: []*schemas.DynamicConfigPart{}, Rejected: []rejectedResource{},
		ActionPlans: []abi.ActionPlan{}, Directives: []abi.Directive{}, ResultEvents: []abi.ResultEvent{},
		HostCalls: []capability.Record{}, Policy: "not evaluated (no --config)",
	}
	var dc *dynamic.Config
	if env.cfg != nil {
		c := dynamic.ConfigFrom(env.cfg)
		dc = &c
		rep.Policy = fmt.Sprintf("%d DynamicOverridePolicies evaluated", len(c.Policies))
	}
	var total time.Duration
	for i, b := range batches(events, o.batchSize) {
		in, err := buildRequest(b, ctxRes, now, i, "routerctl")
		if err != nil {
			return err
		}
		out, tr, err := h.CallTraced(ctx, name, hook, in)
		total += tr.Duration
		rep.Calls++
		rep.HostCalls = append(rep.HostCalls, tr.HostCalls...)
		if err != nil {
			return fmt.Errorf("batch %d (%d events): %w", i, len(b), err)
		}
		res, err := abi.DecodeResult(out)
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		addResult(&rep, res, b, source, sub, dc, now)
	}
	rep.DurationUs = float64(total.Nanoseconds()) / 1e3
	return render(cmd, rep, func() *table { return dryRunTable(rep) })
}

// addResult turns one PluginResult into parts (or rejections) like the daemon would.
func addResult(rep *dryRunReport, res *abi.Result, events []abi.Event, source string, sub dynamic.Subscription, dc *dynamic.Config, now time.Time) {
	ttl := sub.DefaultTTL
	if d, err := time.ParseDuration(res.Status.TTL); err == nil && d > 0 {
		ttl = d
	}
	for _, raw := range res.Status.Resources {
		obj, err := schemas.DecodeObject(raw)
		if err != nil {
			rep.Rejected = append(rep.Rejected, rejectedResource{Resource: truncateText(string(raw), 120), Reason: "invalid: " + err.Error()})
			continue
		}
		kind, rname := obj.GetKind(), obj.GetName()
		target := kind + "/" + rname
		if !slices.Contains(sub.AllowedKinds, kind) {
			rep.Rejected = append(rep.Rejected, rejectedResource{Resource: target, Reason: fmt.Sprintf("kind %s is not in output.allowedKinds %v", kind, sub.AllowedKinds)})
			continue
		}
		var mask []string
		if dc != nil {
			if dc.Static[target] && dc.Resolution() != dynamic.DynamicWins {
				rep.Rejected = append(rep.Rejected, rejectedResource{Resource: target, Reason: "a static resource of the same Kind and name exists (static-wins)"})
				continue
			}
			fields, err := dynamic.SpecFields(raw)
			if err != nil {
				rep.Rejected = append(rep.Rejected, rejectedResource{Resource: target, Reason: "invalid: " + err.Error()})
				continue
			}
			dec := dynamic.Evaluate(dc.Policies, dynamic.Proposal{Source: source, Operation: dynamic.OpCreate,
				Target: schemas.ResourceRef{APIVersion: obj.GetAPIVersion(), Kind: kind, Name: rname}, Fields: fields})
			if !dec.Allowed {
				rep.Rejected = append(rep.Rejected, rejectedResource{Resource: target, Reason: "policy: " + dec.Reason})
				continue
			}
			mask = dec.Mask
		}
		origin := originOf(events, obj, raw)
		ann := map[string]string{
			dynamic.AnnotationSource: source, dynamic.AnnotationEventGroup: origin.Group,
			dynamic.AnnotationEventID: origin.ID, dynamic.AnnotationEventSubject: origin.Subject,
		}
		meta := obj.GetMeta()
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		for k, v := range ann {
			meta.Annotations[k] = v
		}
		part := &schemas.DynamicConfigPart{}
		part.APIVersion, part.Kind = schemas.ConfigAPIVersion, "DynamicConfigPart"
		part.Metadata = schemas.ObjectMeta{Name: dynamic.PartName(source, kind, rname), Annotations: ann}
		part.Spec = schemas.DynamicConfigPartSpec{
			Source: source, Generation: 1, TTL: schemas.Dur(ttl), ExpiresAt: now.Add(ttl).UTC(),
			Resources: []schemas.Resource{{Object: obj}}, Events: []string{origin.ID},
		}
		if len(mask) > 0 {
			part.Spec.Mask = &schemas.PartMask{Fields: mask}
		}
		rep.Parts = append(rep.Parts, part)
	}
	rep.ActionPlans = append(rep.ActionPlans, res.Status.ActionPlans...)
	rep.Directives = append(rep.Directives, res.Status.Directives...)
	rep.ResultEvents = append(rep.ResultEvents, res.Status.Events...)
}

// originOf picks the event a resource came from: the one the plugin named in the
// routerd.net/event-id annotation, else the newest whose subject or payload address
// appears as a value (with or without a prefix length) in the resource, else the newest
// of the batch.
func originOf(events []abi.Event, obj schemas.Object, raw []byte) abi.Event {
	if len(events) == 0 {
		return abi.Event{}
	}
	if id := obj.GetMeta().Annotations[dynamic.AnnotationEventID]; id != "" {
		for _, e := range events {
			if e.ID == id {
				return e
			}
		}
	}
	doc := string(raw)
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		addr, _, _ := strings.Cut(e.Payload["address"], "/")
		for _, s := range []string{strings.TrimSpace(e.Subject), strings.TrimSpace(addr)} {
			if s != "" && (strings.Contains(doc, `"`+s+`"`) || strings.Contains(doc, `"`+s+`/`)) {
				return e
			}
		}
	}
	return events[len(events)-1]
}

func dryRunTable(r dryRunReport) *table {
	t := &table{header: []string{"KIND", "NAME", "DETAIL"}}
	for _, p := range r.Parts {
		for _, res := range p.Spec.Resources {
			t.addRow("DynamicConfigPart", p.Metadata.Name, fmt.Sprintf("%s/%s ttl %v event %s", res.Object.GetKind(), res.Object.GetName(), p.Spec.TTL, strings.Join(p.Spec.Events, ",")))
		}
	}
	for _, x := range r.Rejected {
		t.addRow("rejected", x.Resource, x.Reason)
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

// ---- replay ----

// replayReport is the output of dry-run --replay.
type replayReport struct {
	Plugin     string        `json:"plugin"`
	Hook       string        `json:"hook"`
	Installed  replayVersion `json:"installed"`
	Candidate  replayVersion `json:"candidate"`
	Since      time.Time     `json:"since"`
	Events     int           `json:"events"`
	Batches    int           `json:"batches"`
	Identical  int           `json:"identical"`
	Differing  int           `json:"differing"`
	Diffs      []replayDiff  `json:"diffs"`
	Conclusion string        `json:"conclusion"`
}

// replayVersion describes one side of a replay.
type replayVersion struct {
	File       string  `json:"file"`
	Version    string  `json:"version"`
	Digest     string  `json:"digest"`
	DurationUs float64 `json:"durationUs"`
	Failures   int     `json:"failures"`
}

// replayDiff is one batch whose outputs differ.
type replayDiff struct {
	Batch          int      `json:"batch"`
	EventIDs       []string `json:"eventIDs"`
	InstalledError string   `json:"installedError,omitempty"`
	CandidateError string   `json:"candidateError,omitempty"`
	OnlyInstalled  []string `json:"onlyInstalled,omitempty"`
	OnlyCandidate  []string `json:"onlyCandidate,omitempty"`
	Changed        []string `json:"changed,omitempty"`
	Other          []string `json:"other,omitempty"`
}

func runReplay(cmd *cobra.Command, env *pluginEnv, name string, hook abi.Hook, o dryRunOptions) error {
	ctx := cmd.Context()
	now := time.Now()
	since, err := parseSince(o.replay, now)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.against); err != nil {
		return fmt.Errorf("--against %s: %w", o.against, err)
	}
	_, _, subRes := subscriptionFor(env, name, o.subscription)
	o.since = since.Format(time.RFC3339Nano)
	f, err := eventFilter(o, subRes, now)
	if err != nil {
		return err
	}
	events, err := storeEvents(ctx, env, f)
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
	spec, err := env.loadOne(ctx, h, name)
	if err != nil {
		return fmt.Errorf("installed version: %w", err)
	}
	cand := spec
	cand.Name, cand.Module, cand.SHA256, cand.Defaulted = name+"@candidate", filepath.Base(o.against), "", false
	if err := h.LoadFile(ctx, o.against, cand); err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	ins, _ := h.Inspect(name)
	can, _ := h.Inspect(cand.Name)
	rep := replayReport{
		Plugin: name, Hook: string(hook), Since: since, Events: len(events), Diffs: []replayDiff{},
		Installed: replayVersion{File: ins.File, Version: ins.Status.Version, Digest: ins.Status.Digest},
		Candidate: replayVersion{File: o.against, Version: can.Status.Version, Digest: can.Status.Digest},
	}
	size := o.batchSize
	if size <= 0 {
		size = 10
	}
	var tIns, tCan time.Duration
	for i, b := range batches(events, size) {
		if len(b) == 0 {
			continue
		}
		rep.Batches++
		in, err := buildRequest(b, ctxRes, now, i, "replay")
		if err != nil {
			return err
		}
		outA, trA, errA := h.CallTraced(ctx, name, hook, in)
		outB, trB, errB := h.CallTraced(ctx, cand.Name, hook, in)
		tIns += trA.Duration
		tCan += trB.Duration
		d := replayDiff{Batch: i}
		for _, e := range b {
			d.EventIDs = append(d.EventIDs, e.ID)
		}
		if errA != nil {
			rep.Installed.Failures++
			d.InstalledError = errA.Error()
		}
		if errB != nil {
			rep.Candidate.Failures++
			d.CandidateError = errB.Error()
		}
		same := errA == nil && errB == nil && compareResults(outA, outB, &d)
		if same || (errA != nil && errB != nil && ErrorKindEqual(errA, errB)) {
			rep.Identical++
			continue
		}
		rep.Differing++
		rep.Diffs = append(rep.Diffs, d)
	}
	rep.Installed.DurationUs = float64(tIns.Nanoseconds()) / 1e3
	rep.Candidate.DurationUs = float64(tCan.Nanoseconds()) / 1e3
	if rep.Differing == 0 {
		rep.Conclusion = fmt.Sprintf("identical on %d events in %d batches", rep.Events, rep.Batches)
	} else {
		rep.Conclusion = fmt.Sprintf("%d of %d batches differ", rep.Differing, rep.Batches)
	}
	if err := render(cmd, rep, func() *table { return replayTable(rep) }); err != nil {
		return err
	}
	if rep.Differing > 0 {
		return silentFailure
	}
	return nil
}

// ErrorKindEqual reports whether two call errors are of the same host error kind (both
// versions failing the same way is not a difference).
func ErrorKindEqual(a, b error) bool { return host.ErrorKind(a) == host.ErrorKind(b) }

// compareResults compares two PluginResults resource by resource (by Kind/name), then
// the rest of the status; it fills d and reports whether they are the same.
func compareResults(a, b []byte, d *replayDiff) bool {
	ra, errA := abi.DecodeResult(a)
	rb, errB := abi.DecodeResult(b)
	if errA != nil || errB != nil {
		d.Other = append(d.Other, "undecodable result")
		return false
	}
	ka, kb := resourceMap(ra.Status.Resources), resourceMap(rb.Status.Resources)
	for k, va := range ka {
		vb, ok := kb[k]
		switch {
		case !ok:
			d.OnlyInstalled = append(d.OnlyInstalled, k)
		case canonical(va) != canonical(vb):
			d.Changed = append(d.Changed, k)
		}
	}
	for k := range kb {
		if _, ok := ka[k]; !ok {
			d.OnlyCandidate = append(d.OnlyCandidate, k)
		}
	}
	slices.Sort(d.OnlyInstalled)
	slices.Sort(d.OnlyCandidate)
	slices.Sort(d.Changed)
	fields := []struct {
		name string
		a, b any
	}{
		{"status.ttl", ra.Status.TTL, rb.Status.TTL},
		{"status.directives", ra.Status.Directives, rb.Status.Directives},
		{"status.actionPlans", ra.Status.ActionPlans, rb.Status.ActionPlans},
		{"status.actionResults", ra.Status.ActionResults, rb.Status.ActionResults},
		{"status.events", ra.Status.Events, rb.Status.Events},
	}
	for _, f := range fields {
		if canonicalValue(f.a) != canonicalValue(f.b) {
			d.Other = append(d.Other, f.name)
		}
	}
	return len(d.OnlyInstalled)+len(d.OnlyCandidate)+len(d.Changed)+len(d.Other) == 0
}

// resourceMap keys resources by "Kind/name" (or their position when unnamed).
func resourceMap(res []json.RawMessage) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(res))
	for i, r := range res {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		key := fmt.Sprintf("resources[%d]", i)
		if json.Unmarshal(r, &head) == nil && head.Kind != "" {
			key = head.Kind + "/" + head.Metadata.Name
		}
		m[key] = r
	}
	return m
}

// canonical re-encodes JSON with sorted keys so formatting differences do not count.
func canonical(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return canonicalValue(v)
}

func canonicalValue(v any) string {
	b, _ := json.Marshal(v)
	var x any
	if json.Unmarshal(b, &x) != nil {
		return string(b)
	}
	c, _ := json.Marshal(x)
	return string(c)
}

func replayTable(r replayReport) *table {
	t := &table{header: []string{"BATCH", "EVENTS", "DIFFERENCE"}}
	for _, d := range r.Diffs {
		var parts []string
		if d.InstalledError != "" {
			parts = append(parts, "installed failed: "+truncateText(d.InstalledError, 100))
		}
		if d.CandidateError != "" {
			parts = append(parts, "candidate failed: "+truncateText(d.CandidateError, 100))
		}
		if len(d.OnlyInstalled) > 0 {
			parts = append(parts, "only installed: "+strings.Join(d.OnlyInstalled, ","))
		}
		if len(d.OnlyCandidate) > 0 {
			parts = append(parts, "only candidate: "+strings.Join(d.OnlyCandidate, ","))
		}
		if len(d.Changed) > 0 {
			parts = append(parts, "changed: "+strings.Join(d.Changed, ","))
		}
		if len(d.Other) > 0 {
			parts = append(parts, "differs in "+strings.Join(d.Other, ","))
		}
		t.addRow(d.Batch, strings.Join(d.EventIDs, ","), strings.Join(parts, "; "))
	}
	t.addRow("-", r.Events, fmt.Sprintf("installed %s (%s) vs candidate %s (%s): %s; %.0fµs vs %.0fµs",
		dash(r.Installed.Version), shortDigest(r.Installed.Digest), dash(r.Candidate.Version), shortDigest(r.Candidate.Digest),
		r.Conclusion, r.Installed.DurationUs, r.Candidate.DurationUs))
	return t
}
