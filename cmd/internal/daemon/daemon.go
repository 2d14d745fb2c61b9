package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"routerd.net/routerd/cmd/internal/buildinfo"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/cmd/internal/telemetry"
	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/dataplane/fake"
	"routerd.net/routerd/dataplane/netlinkdp"
	"routerd.net/routerd/federation/actionplan"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/federation/supervise"
	"routerd.net/routerd/federation/tracectx"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/schemas"
)

// Dataplane backends (Options.Dataplane).
const (
	DataplaneDryRun  = "dry-run"
	DataplaneNetlink = "netlink"
)

// Options configure a Daemon.
type Options struct {
	// Settings are the daemon settings (state, plugin and config dirs, socket, metrics).
	Settings settings.Settings
	// Logger receives the daemon's logs (default: discard).
	Logger *slog.Logger
	// Dataplane is DataplaneDryRun (default: a recording fake backend) or
	// DataplaneNetlink (the kernel, in NetNS or the daemon's own namespace; needs root).
	Dataplane string
	NetNS     string
	// EventdBinary is the routerd-eventd executable supervised once per EventGroup; ""
	// runs no transport (the store still accepts events from routerctl).
	EventdBinary string
	// EventdArgs returns a child's arguments (default: --group and the settings dirs); the
	// daemon appends --metrics-socket (see EventdMetricsSocket).
	EventdArgs func(group string) []string
	// EventdStdout and EventdStderr receive the children's output (nil: discarded).
	EventdStdout, EventdStderr io.Writer
	// Metrics is the process's telemetry; nil makes the daemon create and serve its own
	// on Settings.MetricsAddress.
	Metrics *telemetry.Metrics
	// NoControlSocket skips the control API (tests, demo use the Daemon directly).
	NoControlSocket bool
	// WatchConfig reloads when files in the config dir change (besides SIGHUP and
	// POST /v1/reload).
	WatchConfig bool
	// CacheDir overrides the wazero compilation cache directory (default
	// Settings.CacheDir()).
	CacheDir string
	// PollInterval is how often the store is checked for events written by routerd-eventd
	// (default 10ms).
	PollInterval time.Duration
	// ShutdownTimeout bounds Shutdown (default 15s).
	ShutdownTimeout time.Duration
	// ReconcileInterval re-applies the desired state this often even without a change,
	// repairing drift in the kernel (default 1m; negative disables).
	ReconcileInterval time.Duration
	// ReconcileMinGap is the least time between the starts of two reconciliations
	// (default 50ms): changes arriving meanwhile are applied together, so a burst of new
	// claims costs a few reconciliations, not one each.
	ReconcileMinGap time.Duration
	// Reload, when set, makes Run reload the configuration on every value received (the
	// command passes SIGHUP here; subscribe to it before New, so that an early signal
	// cannot kill the process).
	Reload <-chan os.Signal
}

// ReconcileRecord describes one reconciliation of the dataplane.
type ReconcileRecord struct {
	// Seq numbers the reconciliations of this daemon, from 1.
	Seq int64 `json:"seq"`
	// At and DurationMS say when it ran and how long it took.
	At         time.Time `json:"at"`
	DurationMS float64   `json:"durationMS"`
	// Backend names the dataplane backend; DryRun is true for the recording fake.
	Backend string `json:"backend"`
	DryRun  bool   `json:"dryRun"`
	// Diff is what was applied; Changes is the same, one line per change.
	Diff    dataplane.Diff `json:"-"`
	Changes []string       `json:"changes"`
	// Objects is the size of the desired state; DynamicParts the live parts merged in.
	Objects      int `json:"objects"`
	DynamicParts int `json:"dynamicParts"`
	// Problems are resources that could not be translated; Conflicts dynamic resources
	// left out; Error a failure to apply.
	Problems  []string           `json:"problems,omitempty"`
	Conflicts []dynamic.Conflict `json:"conflicts,omitempty"`
	Error     string             `json:"error,omitempty"`
}

// Daemon is a running routerd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	metrics    *telemetry.Metrics
	ownMetrics bool
	tracing    *telemetry.Tracing // nil without --otlp-endpoint
	mp         metric.MeterProvider
	store      *store.Store
	host       *host.Host
	dyn        *dynamic.Manager
	engine     *subscribe.Engine
	sup        *supervise.Supervisor
	reconciler *dataplane.Reconciler
	actions    *actionplan.Service
	profiles   *profiles
	backend    dataplane.Backend
	api        *controlServer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	reloadMu sync.Mutex // serialises reloads

	mu           sync.Mutex
	cfg          *schemas.Config
	cfgLoadedAt  time.Time
	cfgReloads   int
	lastReload   error
	reconciles   []ReconcileRecord
	reconcileSeq int64
	reconciled   chan struct{} // closed and replaced after every reconcile
	lastPlanned  [32]byte      // digest of the plan context last planned
	reloaded     chan struct{} // closed and replaced after every reload attempt
	// traceWaiting are the trace contexts of dynamic changes the next reconcile applies
	// (empty without tracing); its dataplane.apply span continues the first, links all.
	traceWaiting []string

	closeOnce sync.Once
	closeErr  error
}

// New loads the configuration, opens the store, starts the plugin host, the subscription
// engine, the dynamic-part manager, the reconciler and the eventd supervisor, and serves
// the control API: the daemon runs when New returns. An invalid configuration is an
// error (every problem is logged first). On error everything started is stopped again.
// Run waits for the end; Shutdown stops it.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dataplane == "" {
		opts.Dataplane = DataplaneDryRun
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 15 * time.Second
	}
	if opts.ReconcileInterval == 0 {
		opts.ReconcileInterval = time.Minute
	}
	if opts.ReconcileMinGap <= 0 {
		opts.ReconcileMinGap = 50 * time.Millisecond
	}
	if opts.CacheDir == "" {
		opts.CacheDir = opts.Settings.CacheDir()
	}
	d := &Daemon{opts: opts, log: opts.Logger, started: time.Now(), kick: make(chan struct{}, 1), reconciled: make(chan struct{}), reloaded: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if err := d.start(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
		defer cancel()
		_ = d.Shutdown(sctx)
		return nil, err
	}
	return d, nil
}

func (d *Daemon) start(ctx context.Context) error {
	s := d.opts.Settings
	cfg, err := d.loadConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.StateDir, 0o750); err != nil {
		return fmt.Errorf("routerd: state dir %s: %w", s.StateDir, err)
	}
	d.metrics = d.opts.Metrics
	if d.metrics == nil {
		m, err := telemetry.New()
		if err != nil {
			return err
		}
		d.metrics, d.ownMetrics = m, true
		if s.MetricsAddress != "" {
			addr, err := m.Serve(s.MetricsAddress)
			if err != nil {
				return err
			}
			d.log.Info("metrics", "address", "http://"+addr+"/metrics")
		}
	}
	if d.tracing, err = telemetry.StartTracing(s.OTLPEndpoint, "routerd", nodeName(cfg)); err != nil {
		return fmt.Errorf("routerd: --otlp-endpoint: %w", err)
	}
	d.mp = d.metrics.Provider()
	if d.mp == nil {
		d.mp = noop.NewMeterProvider()
	}

	auditKey, err := store.LoadAuditKey(filepath.Join(s.StateDir, "audit.key"))
	if err != nil {
		return fmt.Errorf("routerd: %w", err)
	}
	d.store, err = store.Open(s.StorePath(), store.Options{Logger: d.log, MeterProvider: d.mp, AuditKey: auditKey})
	if err != nil {
		return fmt.Errorf("routerd: %w", err)
	}
	d.profiles = &profiles{}
	requester := &provider.Requester{Profiles: d.profiles.lookup, Log: d.log.With("component", "provider")}

	d.host, err = host.New(host.Options{
		Logger: d.log.With("component", "host"), CacheDir: d.opts.CacheDir, MeterProvider: d.mp,
		Auditor: hostAuditor(d.store), KV: d.store, KVNotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Config: ConfigSource{Config: d.Config}, Events: eventEmitter{d},
		Functions: []capability.Function{provider.Function(requester)},
	})
	if err != nil {
		return fmt.Errorf("routerd: %w", err)
	}
	d.actions = actionplan.New(actionplan.Options{Store: d.store, Plugins: d.host, Logger: d.log.With("component", "actionplan"), MeterProvider: d.mp})
	if recovered, err := d.store.RecoverInterruptedPlans(ctx, "routerd"); err != nil {
		return fmt.Errorf("routerd: %w", err)
	} else if len(recovered) > 0 {
		d.log.Warn("action plans interrupted by the last stop are marked failed; check the provider and approve them again", "plans", len(recovered))
	}

	d.dyn, err = dynamic.NewManager(dynamic.Options{
		Repo: dynamic.NewSQLRepo(d.store), Logger: d.log.With("component", "dynamic"),
		MeterProvider: d.mp, OnChange: d.kickReconcile,
	})
	if err != nil {
		return fmt.Errorf("routerd: %w", err)
	}
	ad := subscribe.StoreAdapter{Store: d.store}
	d.engine, err = subscribe.New(subscribe.Options{
		Source: ad, Cursors: ad, Recorder: ad, Invoker: d.host, Handler: tracedHandler{d},
		Logger: d.log.With("component", "subscribe"), MeterProvider: d.mp, PollInterval: d.opts.PollInterval,
	})
	if err != nil {
		return fmt.Errorf("routerd: %w", err)
	}

	switch d.opts.Dataplane {
	case DataplaneDryRun:
		d.backend = fake.New(nodeName(cfg))
	case DataplaneNetlink:
		b, err := netlinkdp.Open(netlinkdp.Options{NetNS: d.opts.NetNS, Logger: d.log.With("component", "dataplane")})
		if err != nil {
			return fmt.Errorf("routerd: dataplane: %w", err)
		}
		d.backend = b
	default:
		return fmt.Errorf("routerd: --dataplane %q: want %s or %s", d.opts.Dataplane, DataplaneDryRun, DataplaneNetlink)
	}
	d.reconciler = dataplane.NewReconciler(d.backend, d.log.With("component", "dataplane"), dataplane.WithMeterProvider(d.mp))

	if d.opts.EventdBinary != "" {
		args := d.opts.EventdArgs
		if args == nil {
			args = func(group string) []string {
				a := []string{"--group", group, "--state-dir", s.StateDir, "--config-dir", s.ConfigDir,
					"--plugin-dir", s.PluginDir, "--log-level", s.LogLevel, "--log-format", s.LogFormat}
				if s.OTLPEndpoint != "" {
					a = append(a, "--otlp-endpoint", s.OTLPEndpoint)
				}
				return a
			}
		}
		// Every child serves its metrics on a socket in the state dir; routerd re-exposes
		// their routerd_eventd_* families on its own /metrics.
		childArgs := func(group string) []string {
			a := args(group)
			if p := EventdMetricsSocket(s.StateDir, group); len(p) < maxSocketPath {
				a = append(a, "--metrics-socket", p)
			} else {
				d.log.Warn("eventd metrics: socket path too long, the child's metrics are not re-exposed; use a shorter --state-dir", "group", group, "path", p)
			}
			return a
		}
		d.metrics.AddChildren(telemetry.Children{Prefix: transport.MetricPrefix, Sockets: d.eventdSockets})
		d.sup, err = supervise.New(supervise.Options{
			Binary: d.opts.EventdBinary, Args: childArgs, Stdout: d.opts.EventdStdout, Stderr: d.opts.EventdStderr,
			Logger: d.log.With("component", "supervise"), StopTimeout: 10 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("routerd: %w", err)
		}
		if err := d.sup.Start(d.ctx); err != nil {
			return fmt.Errorf("routerd: %w", err)
		}
	}

	// Plugin resources first, so that each module is compiled once, under its resource.
	if err := d.host.Configure(ctx, host.SpecsFromConfig(cfg)); err != nil {
		d.log.Warn("plugins: configure", "err", err)
	}
	// Follow the plugin dir: new, replaced and removed modules (re)load while running.
	if err := os.MkdirAll(s.PluginDir, 0o755); err != nil {
		d.log.Warn("plugins: create plugin dir", "dir", s.PluginDir, "err", err)
	}
	if err := d.host.Watch(ctx, s.PluginDir); err != nil {
		// Plugins that failed stay visible in Status; the others serve.
		d.log.Warn("plugins: some failed to load", "dir", s.PluginDir, "err", err)
	}
	if err := d.apply(ctx, cfg); err != nil {
		return err
	}

	d.wg.Go(func() { d.engine.Watch(d.ctx) })
	d.wg.Go(func() { d.dyn.Run(d.ctx, time.Minute) })
	d.wg.Go(d.reconcileLoop)
	if d.opts.WatchConfig {
		if err := d.watchConfig(); err != nil {
			return err
		}
	}
	if !d.opts.NoControlSocket {
		d.api, err = serveControl(d, s.ControlSocket)
		if err != nil {
			return err
		}
		d.log.Info("control API", "socket", s.ControlSocket)
	}
	d.log.Info("routerd started", "version", buildinfo.Get(), "node", nodeName(cfg), "config", s.ConfigDir,
		"resources", cfg.Len(), "dataplane", d.opts.Dataplane)
	return nil
}

// nodeName is the first EventGroup's nodeName ("routerd" when there is none).
func nodeName(cfg *schemas.Config) string {
	if cfg != nil {
		if gs := cfg.EventGroups(); len(gs) > 0 && gs[0].Spec.NodeName != "" {
			return gs[0].Spec.NodeName
		}
	}
	return "routerd"
}

// configError is an invalid configuration: a short message (the problems are logged one
// per line) that unwraps to the *schemas.ErrorList.
type configError struct {
	dir  string
	list *schemas.ErrorList
}

// Error says how many problems the configuration has.
func (e *configError) Error() string {
	return fmt.Sprintf("routerd: config %s: %d problems", e.dir, len(e.list.Problems))
}

// Unwrap returns the *schemas.ErrorList.
func (e *configError) Unwrap() error { return e.list }

// loadConfig loads the config dir, logging every problem of an invalid one.
func (d *Daemon) loadConfig() (*schemas.Config, error) {
	dir := d.opts.Settings.ConfigDir
	cfg, err := schemas.LoadDir(dir)
	if err != nil {
		var el *schemas.ErrorList
		if errors.As(err, &el) {
			for _, p := range el.Problems {
				d.log.Error("config: "+p.String(), "dir", dir)
			}
			return nil, &configError{dir: dir, list: el}
		}
		return nil, fmt.Errorf("routerd: config %s: %w", dir, err)
	}
	for _, w := range cfg.Warnings {
		d.log.Warn("config: "+w.String(), "dir", dir)
	}
	return cfg, nil
}

// apply makes cfg the running configuration.
func (d *Daemon) apply(ctx context.Context, cfg *schemas.Config) error {
	for _, err := range d.profiles.update(cfg) {
		d.log.Warn("provider profile unusable: its plans cannot execute", "err", err)
	}
	if err := d.host.Configure(ctx, host.SpecsFromConfig(cfg)); err != nil {
		d.log.Warn("plugins: configure", "err", err)
	}
	d.dyn.SetConfig(dynamic.ConfigFrom(cfg))
	specs, err := SubscriptionSpecs(cfg)
	if err != nil {
		return err
	}
	if err := d.engine.Update(specs); err != nil {
		return fmt.Errorf("routerd: subscriptions: %w", err)
	}
	d.mu.Lock()
	d.cfg, d.cfgLoadedAt = cfg, time.Now()
	d.mu.Unlock()
	if d.sup != nil {
		var groups []string
		for _, g := range cfg.EventGroups() {
			if !transport.HasAuth(cfg, g) {
				// routerd-eventd would refuse it (and the supervisor restart it forever).
				d.log.Warn("no transport for this group", "group", g.Metadata.Name, "err", (&transport.NoAuthError{Group: g.Metadata.Name}).Error())
				continue
			}
			groups = append(groups, g.Metadata.Name)
		}
		if err := d.sup.SetGroups(groups); err != nil {
			return fmt.Errorf("routerd: eventd: %w", err)
		}
	}
	d.kickReconcile()
	return nil
}

// SubscriptionSpecs returns the subscriptions of cfg as the engine runs them, each with
// the context resources its plugin's Plugin resource allowlists (host.ContextResources).
func SubscriptionSpecs(cfg *schemas.Config) ([]subscribe.Spec, error) {
	specs := subscribe.SpecsFrom(cfg)
	for i := range specs {
		if p, ok := cfg.Get("Plugin", specs[i].Plugin).(*schemas.Plugin); ok {
			res, err := host.ContextResources(cfg, p.Spec.Context.Resources)
			if err != nil {
				return nil, fmt.Errorf("routerd: subscription %s: %w", specs[i].Name, err)
			}
			specs[i].Context = res
		}
	}
	return specs, nil
}

// Reload loads the config dir again and applies it when valid. An invalid config is
// refused (its problems logged and returned) and the running one stays.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := d.loadConfig()
	if err == nil {
		err = d.apply(ctx, cfg)
	}
	d.mu.Lock()
	d.cfgReloads++
	d.lastReload = err
	close(d.reloaded)
	d.reloaded = make(chan struct{})
	d.mu.Unlock()
	if err != nil {
		d.log.Error("reload refused; the previous configuration keeps running", "err", err)
		return err
	}
	d.log.Info("config reloaded", "resources", cfg.Len())
	return nil
}

// WaitReload waits until more than after reloads (successful or refused) have been
// attempted, or ctx ends, and returns the number of reloads and the last one's error.
func (d *Daemon) WaitReload(ctx context.Context, after int) (int, error) {
	for {
		d.mu.Lock()
		n, last, ch := d.cfgReloads, d.lastReload, d.reloaded
		d.mu.Unlock()
		if n > after {
			return n, last
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// Run serves until ctx ends, reloading the configuration on every Options.Reload signal,
// then shuts down within Options.ShutdownTimeout and returns Shutdown's error.
func (d *Daemon) Run(ctx context.Context) error {
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-d.opts.Reload:
			d.log.Info("SIGHUP: reloading")
			_ = d.Reload(ctx) // a refused reload is logged by Reload
		}
	}
	d.log.Info("shutting down", "timeout", d.opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownTimeout)
	defer cancel()
	return d.Shutdown(sctx)
}

// Plugins returns the plugin host's status of every plugin.
func (d *Daemon) Plugins() []host.PluginStatus { return d.host.Status() }

// Subscriptions returns the state of every subscription.
func (d *Daemon) Subscriptions() []subscribe.Status { return d.engine.Status() }

// Parts returns every stored dynamic part (expired ones included until withdrawn).
func (d *Daemon) Parts(ctx context.Context) ([]dynamic.Part, error) { return d.dyn.List(ctx) }

// Withdraw removes dynamic parts named kind/name (of source, or of every source when
// empty) on actor's request and returns them.
func (d *Daemon) Withdraw(ctx context.Context, source, kind, name, actor string) ([]dynamic.Part, error) {
	return d.dyn.Withdraw(ctx, source, kind, name, actor)
}

// Store returns the node's event store (shared; the daemon closes it on Shutdown).
func (d *Daemon) Store() *store.Store { return d.store }

// Config returns the running configuration.
func (d *Daemon) Config() *schemas.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Emit validates and stores a locally observed event and wakes the subscriptions. The
// event.emit span (a trace's root, unless ctx carries a span) is stored with the event:
// its delivery to peers and their work on it continue that trace.
func (d *Daemon) Emit(ctx context.Context, e event.Event) (store.InsertResult, error) {
	ctx, span := tracectx.Start(ctx, "event.emit", nil)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("routerd.node", e.SourceNode), attribute.String("routerd.group", e.Group),
			attribute.String("routerd.event_type", e.Type))
	}
	res, err := d.store.InsertEvent(ctx, e)
	if err != nil {
		return res, fmt.Errorf("routerd: emit: %w", err)
	}
	d.engine.Notify()
	return res, nil
}

// tracedHandler hands the subscriptions' results to the dynamic-part manager, noting
// their trace context for the reconcile that applies them.
type tracedHandler struct{ d *Daemon }

// HandleResult implements subscribe.Handler.
func (h tracedHandler) HandleResult(ctx context.Context, b subscribe.Batch, r subscribe.Result) error {
	if tp := tracectx.Format(ctx); tp != "" {
		h.d.mu.Lock()
		if len(h.d.traceWaiting) < maxTraceWaiting {
			h.d.traceWaiting = append(h.d.traceWaiting, tp)
		}
		h.d.mu.Unlock()
	}
	return h.d.dyn.HandleResult(ctx, b, r)
}

// maxTraceWaiting bounds the links of one dataplane.apply span.
const maxTraceWaiting = 128

func (d *Daemon) kickReconcile() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Daemon) reconcileLoop() {
	var tick <-chan time.Time
	if d.opts.ReconcileInterval > 0 {
		t := time.NewTicker(d.opts.ReconcileInterval)
		defer t.Stop()
		tick = t.C
	}
	var last time.Time
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.kick:
		case <-tick:
		}
		if wait := d.opts.ReconcileMinGap - time.Since(last); wait > 0 {
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		// Changes that arrived while waiting are part of this reconciliation.
		select {
		case <-d.kick:
		default:
		}
		last = time.Now()
		d.reconcile(d.ctx)
	}
}

// reconcile merges the static configuration with the live dynamic parts, translates the
// result into a dataplane state and applies it (the dry-run backend records it).
func (d *Daemon) reconcile(ctx context.Context) {
	start := time.Now()
	cfg := d.Config()
	d.mu.Lock()
	waiting := d.traceWaiting
	d.traceWaiting = nil
	d.mu.Unlock()
	ctx, span := tracectx.Start(ctx, "dataplane.apply", waiting)
	defer span.End()
	rec := ReconcileRecord{At: start, Backend: d.backend.Name(), DryRun: d.opts.Dataplane == DataplaneDryRun}
	parts, err := d.dyn.Live(ctx)
	if err != nil {
		rec.Error = err.Error()
	} else {
		rec.DynamicParts = len(parts)
		m := dynamic.MergeConfig(cfg, parts, start)
		rec.Problems, rec.Conflicts = m.Problems, m.Conflicts
		out := desired.FromConfig(m.Config, desired.Options{Now: start, Claims: m.Claims})
		rec.Problems = append(rec.Problems, out.Problems...)
		rec.Objects = out.State.Len()
		diff, err := d.reconciler.Apply(ctx, out.State)
		rec.Diff = diff
		rec.Changes = []string{}
		for _, c := range diff.Changes {
			rec.Changes = append(rec.Changes, c.String())
		}
		if err != nil {
			rec.Error = err.Error()
		}
		d.planActions(ctx, m)
	}
	rec.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if span.IsRecording() {
		span.SetAttributes(attribute.String("routerd.node", nodeName(cfg)), attribute.String("routerd.dataplane", rec.Backend),
			attribute.Int("routerd.changes", len(rec.Changes)), attribute.Int("routerd.objects", rec.Objects))
		if rec.Error != "" {
			span.SetStatus(codes.Error, rec.Error)
		}
	}
	if ctx.Err() != nil {
		return // shutting down: nothing to record
	}
	if rec.Error != "" {
		d.log.Error("dataplane: reconcile", "err", rec.Error)
	} else if !rec.Diff.Empty() {
		shown := rec.Changes
		if len(shown) > 20 {
			shown = append(shown[:20:20], fmt.Sprintf("... and %d more", len(rec.Changes)-20))
		}
		d.log.Info("dataplane: applied", "changes", len(rec.Changes), "dryRun", rec.DryRun, "diff", strings.Join(shown, "\n"))
	}
	d.mu.Lock()
	d.reconcileSeq++
	rec.Seq = d.reconcileSeq
	d.reconciles = append(d.reconciles, rec)
	if len(d.reconciles) > 50 {
		d.reconciles = d.reconciles[len(d.reconciles)-50:]
	}
	close(d.reconciled)
	d.reconciled = make(chan struct{})
	d.mu.Unlock()
}

// Reconciles returns the recent reconciliations, oldest first.
func (d *Daemon) Reconciles() []ReconcileRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ReconcileRecord(nil), d.reconciles...)
}

// WaitReconcile waits until a reconciliation after seq satisfies cond, or ctx ends.
func (d *Daemon) WaitReconcile(ctx context.Context, after int64, cond func(ReconcileRecord) bool) (ReconcileRecord, error) {
	for {
		d.mu.Lock()
		ch := d.reconciled
		recs := append([]ReconcileRecord(nil), d.reconciles...)
		d.mu.Unlock()
		for _, r := range recs {
			if r.Seq > after && cond(r) {
				return r, nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ReconcileRecord{}, ctx.Err()
		}
	}
}

// Status is the daemon's state as served at GET /v1/status.
type Status struct {
	Node         string    `json:"node"`
	Version      string    `json:"version"`
	StartedAt    time.Time `json:"startedAt"`
	ConfigDir    string    `json:"configDir"`
	ConfigLoaded time.Time `json:"configLoadedAt"`
	// ConfigDigest is the sha256 of the running config's documents (see configDigest):
	// unchanged by a refused reload.
	ConfigDigest  string                  `json:"configDigest"`
	Resources     int                     `json:"resources"`
	Reloads       int                     `json:"reloads"`
	LastReloadErr string                  `json:"lastReloadError,omitempty"`
	Store         string                  `json:"store"`
	Groups        []string                `json:"groups"`
	Eventd        []supervise.ChildStatus `json:"eventd"`
	Plugins       int                     `json:"plugins"`
	Subscriptions []subscribe.Status      `json:"subscriptions"`
	DynamicParts  int                     `json:"dynamicParts"`
	Dataplane     string                  `json:"dataplane"`
	LastReconcile *ReconcileRecord        `json:"lastReconcile,omitempty"`
}

// Status reports the daemon's state.
func (d *Daemon) Status(ctx context.Context) Status {
	cfg := d.Config()
	st := Status{
		Node: nodeName(cfg), Version: buildinfo.Get(), StartedAt: d.started, ConfigDir: d.opts.Settings.ConfigDir,
		Store: d.store.Path(), Plugins: len(d.host.Status()), Subscriptions: d.engine.Status(), Dataplane: d.opts.Dataplane,
		Groups: []string{}, Eventd: []supervise.ChildStatus{},
	}
	if cfg != nil {
		st.Resources = cfg.Len()
		st.ConfigDigest = configDigest(cfg)
		for _, g := range cfg.EventGroups() {
			st.Groups = append(st.Groups, g.Metadata.Name)
		}
	}
	if d.sup != nil {
		st.Eventd = d.sup.Status()
	}
	if parts, err := d.dyn.Live(ctx); err == nil {
		st.DynamicParts = len(parts)
	}
	d.mu.Lock()
	st.ConfigLoaded, st.Reloads = d.cfgLoadedAt, d.cfgReloads
	if d.lastReload != nil {
		st.LastReloadErr = d.lastReload.Error()
	}
	if n := len(d.reconciles); n > 0 {
		r := d.reconciles[n-1]
		st.LastReconcile = &r
	}
	d.mu.Unlock()
	sort.Strings(st.Groups)
	return st
}

// Shutdown stops the control API, the eventd children, the subscriptions (cancelling
// plugin calls), the host and the store, bounded by ctx. Safe to call more than once.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.api != nil {
			errs = append(errs, d.api.Shutdown(ctx))
		}
		d.cancel()
		if d.sup != nil {
			errs = append(errs, d.sup.Shutdown(ctx))
		}
		if d.engine != nil {
			errs = append(errs, d.engine.Close())
		}
		done := make(chan struct{})
		go func() { d.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("routerd: shutdown: background work did not stop: %w", ctx.Err()))
		}
		if d.host != nil {
			errs = append(errs, d.host.Shutdown(ctx))
		}
		if d.reconciler != nil {
			errs = append(errs, d.reconciler.Close())
		}
		if d.store != nil {
			errs = append(errs, d.store.Close())
		}
		if d.ownMetrics && d.metrics != nil {
			errs = append(errs, d.metrics.Shutdown(ctx))
		}
		errs = append(errs, d.tracing.Shutdown(ctx))
		d.closeErr = errors.Join(errs...)
		if d.closeErr == nil {
			d.log.Info("routerd stopped")
		}
	})
	return d.closeErr
}

// DefaultEventdBinary finds routerd-eventd next to the running executable, else on PATH
// ("" when neither has it).
func DefaultEventdBinary() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "routerd-eventd")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// configDigest is the lowercase hex sha256 over the running config's documents, each
// encoded as JSON in the config's order: the same documents give the same digest.
func configDigest(cfg *schemas.Config) string {
	h := sha256.New()
	for _, o := range cfg.Objects() {
		js, err := json.Marshal(o)
		if err != nil {
			fmt.Fprintf(h, "%s/%s: %v\n", o.GetKind(), o.GetName(), err)
			continue
		}
		h.Write(js)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path less its NUL).
const maxSocketPath = 108

// EventdMetricsSocket is where the routerd-eventd child of group serves /metrics under
// supervision: <state-dir>/eventd/<group>.metrics.sock.
func EventdMetricsSocket(stateDir, group string) string {
	return filepath.Join(stateDir, "eventd", group+".metrics.sock")
}

// eventdSockets lists the metrics sockets of the running children (for the gatherer).
func (d *Daemon) eventdSockets() []string {
	if d.sup == nil {
		return nil
	}
	var out []string
	for _, c := range d.sup.Status() {
		p := EventdMetricsSocket(d.opts.Settings.StateDir, c.Group)
		if c.Running && len(p) < maxSocketPath {
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
