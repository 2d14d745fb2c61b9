// Command routerd-eventd is the federation transport of one event group: it receives
// HMAC-signed events pushed by the group's peers into the node's SQLite store, and pushes
// the events this node originates to every peer through a persistent outbox with
// retries, backoff and TTL refresh.
//
// Run one per EventGroup (systemd: routerd-eventd@<group>.service; elsewhere routerd
// supervises it as a child process). It shares the store file with routerd.
//
// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a runtime failure, 2 on a
// usage or configuration error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"routerd.net/routerd/cmd/internal/buildinfo"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/cmd/internal/telemetry"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/federation/transport/jetstream"
	"routerd.net/routerd/schemas"
)

const programName = "routerd-eventd"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// shutdownTimeout bounds the graceful drain after SIGTERM.
const shutdownTimeout = 20 * time.Second

// configError marks a usage or configuration problem (exit code 2).
type configError struct{ err error }

// Error implements error.
func (e configError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e configError) Unwrap() error { return e.err }

// flags are the options shared by the root command and the daemon subcommand.
type flags struct {
	group, listen         string
	configFile, stateFile string
	metricsSocket         string
	readTimeout           time.Duration
}

func (f *flags) add(fs *pflag.FlagSet, withGroup bool) {
	settings.AddFlags(fs)
	if withGroup {
		fs.StringVar(&f.group, "group", "", "EventGroup to serve (required unless --config-file is given)")
	}
	fs.StringVar(&f.listen, "listen", "", "host:port of the receiver, overriding the EventGroup's spec.listen")
	fs.StringVar(&f.configFile, "config-file", "", "JSON config of routerd v1alpha1's routerd-eventd (instead of --group and the config dir)")
	fs.StringVar(&f.stateFile, "state-file", "", "store file, overriding statePath of --config-file")
	fs.DurationVar(&f.readTimeout, "read-timeout", transport.DefaultReadTimeout, "longest a peer may take to send one request, headers and body")
	fs.StringVar(&f.metricsSocket, "metrics-socket", "", "also serve /metrics on this Unix socket (mode 0600); routerd passes one to each child it supervises and re-exposes the child's routerd_eventd_* metrics on its own /metrics")
}

// execute validates f and serves until a signal.
func (f *flags) execute(cmd *cobra.Command) error {
	if f.group == "" && f.configFile == "" {
		return configError{errors.New("--group is required (or --config-file with a routerd v1alpha1 eventd JSON config)")}
	}
	if f.group != "" && f.configFile != "" {
		return configError{errors.New("--group and --config-file exclude each other: the JSON config names its group")}
	}
	if f.stateFile != "" && f.configFile == "" {
		return configError{errors.New("--state-file goes with --config-file; with --group the store is in --state-dir")}
	}
	if f.readTimeout <= 0 {
		return configError{fmt.Errorf("--read-timeout %v: must be positive", f.readTimeout)}
	}
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return configError{err}
	}
	src := f.source(s)
	src.metricsSocket = f.metricsSocket
	metricsExplicit := cmd.Flags().Changed("metrics-address") || os.Getenv("ROUTERD_METRICS_ADDRESS") != ""
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, s, src, metricsExplicit)
}

// source is where the group's configuration comes from (the config dir or a JSON config
// file), read again on SIGHUP.
type source struct {
	group       string
	storePath   string
	readTimeout time.Duration
	// metricsSocket, when set, is a Unix socket serving /metrics.
	metricsSocket string
	// load reads the configuration; warnings are logged by the caller.
	load func() (gc transport.GroupConfig, prune time.Duration, warnings []string, err error)
}

func (f *flags) source(s settings.Settings) source {
	src := source{group: f.group, storePath: s.StorePath(), readTimeout: f.readTimeout}
	if f.configFile == "" {
		src.load = func() (transport.GroupConfig, time.Duration, []string, error) {
			gc, err := reloadConfig(s, f.group, f.listen)
			return gc, 0, nil, err
		}
		return src
	}
	// The JSON config names the group and the store; read it once now for both.
	if lc, err := transport.LoadLegacyConfig(f.configFile); err == nil {
		src.group = lc.Group
		if p := lc.StateFile(); p != "" {
			src.storePath = p
		}
	}
	if f.stateFile != "" {
		src.storePath = f.stateFile
	}
	src.load = func() (transport.GroupConfig, time.Duration, []string, error) {
		lc, err := transport.LoadLegacyConfig(f.configFile)
		if err != nil {
			return transport.GroupConfig{}, 0, nil, err
		}
		if src.group != "" && lc.Group != src.group {
			return transport.GroupConfig{}, 0, nil, fmt.Errorf("%s: group changed from %q to %q; restart to serve another group", f.configFile, src.group, lc.Group)
		}
		gc, err := lc.GroupConfig()
		if err != nil {
			return transport.GroupConfig{}, 0, nil, fmt.Errorf("%s: %w", f.configFile, err)
		}
		if f.listen != "" {
			gc.ListenAddress = f.listen
		}
		var warnings []string
		for _, x := range lc.Ignored() {
			warnings = append(warnings, f.configFile+": ignored: "+x)
		}
		return gc, lc.PruneEvery(), warnings, nil
	}
	return src
}

func newCmd() *cobra.Command {
	var root, daemon flags
	cmd := &cobra.Command{
		Use:   programName + " --group GROUP [flags]",
		Short: "Federation transport for one routerd event group",
		Long: `routerd-eventd carries federation events between the routers of one event group.

It loads the resource documents from the config dir, finds the EventGroup named by
--group and its EventPeers, and then:

  receives  POST /v1/events (one event, routerd v1 wire protocol) and
            POST /v1/events:batch (our batch extension), each HMAC-SHA256 signed over
            timestamp + "\n" + body, checked in order (size, timestamp, replay window,
            key and signature, JSON, validation, group, source node), into the store;
  pushes    every event this node originated to each peer, in order, batched when the
            peer advertises batches in GET /v1/status, retried with exponential backoff,
            and re-pushed before it expires at the peer (TTL refresh);
  serves    GET /v1/status (counters, extensions) and /metrics (also on
            --metrics-address when that is set explicitly, and on --metrics-socket,
            which routerd sets for the children it supervises).

Instead of --group and the config dir, --config-file takes the JSON config of routerd
v1alpha1's routerd-eventd (nodeName, group, listen, secretFile, replayWindow, peers,
retention, pushRetry, statePath), and "routerd-eventd daemon --config-file FILE
[--state-file DB]" is accepted as the original's units start it; docs/transport.md shows
the YAML equivalent.

Secrets are read from the files the EventGroup/EventPeer auth names and never logged.
SIGTERM or SIGINT stops receiving, lets in-flight pushes finish and exits 0; after a
crash the outbox resumes from the store, and receivers drop duplicates by event id.
SIGHUP reloads the config dir (or file): a changed group (peers, keys, listen address,
delivery settings) is applied by draining the running transport and starting the new one;
an invalid config is logged and the running one stays.

Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage or configuration error.`,
		Example: `  routerd-eventd --group lab
  routerd-eventd --group lab --config-dir ./conf.d --state-dir /tmp/node-a --listen 127.0.0.1:9471
  routerd-eventd daemon --config-file /etc/routerd/eventd.json`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.String(programName),
		RunE:          func(cmd *cobra.Command, _ []string) error { return root.execute(cmd) },
	}
	root.add(cmd.Flags(), true)
	sub := &cobra.Command{
		Use:   "daemon --config-file FILE [--state-file DB]",
		Short: "Serve the group of a routerd v1alpha1 eventd JSON config (the original's command line)",
		Long: `Serve the group described by the JSON config of routerd v1alpha1's routerd-eventd, as
the original's units start it. The config maps onto an EventGroup and one EventPeer per
entry of peers (docs/transport.md, "Config file of routerd v1alpha1"); --state-file
overrides statePath.`,
		Example:       `  routerd-eventd daemon --config-file /etc/routerd/eventd.json --state-file /var/lib/routerd/state.db`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if daemon.configFile == "" {
				return configError{errors.New("daemon: --config-file is required (the routerd v1alpha1 eventd JSON config); with a config dir run routerd-eventd --group GROUP")}
			}
			return daemon.execute(cmd)
		},
	}
	daemon.add(sub.Flags(), false)
	cmd.AddCommand(sub)
	flagErr := func(_ *cobra.Command, err error) error { return configError{err} }
	cmd.SetFlagErrorFunc(flagErr)
	sub.SetFlagErrorFunc(flagErr)
	return cmd
}

// run serves the group until ctx ends.
func run(ctx context.Context, s settings.Settings, src source, metricsExplicit bool) error {
	// The transport names the group in its own lines; ours add it here.
	base := s.Logger()
	log := base.With("group", src.group)
	gc, prune, warnings, err := src.load()
	if err != nil {
		return configError{err}
	}
	for _, w := range warnings {
		log.Warn(w)
	}

	metrics, err := telemetry.New()
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = metrics.Shutdown(sctx)
	}()
	if metricsExplicit && s.MetricsAddress != "" {
		addr, err := metrics.Serve(s.MetricsAddress)
		if err != nil {
			return err
		}
		log.Info("metrics listening", "address", addr)
	}
	if src.metricsSocket != "" {
		if err := metrics.ServeUnix(src.metricsSocket); err != nil {
			return err
		}
		defer os.Remove(src.metricsSocket)
		log.Info("metrics listening", "socket", src.metricsSocket)
	}

	// Spans (eventd.deliver, eventd.receive) go to the OTLP endpoint, when one is set.
	tracing, err := telemetry.StartTracing(s.OTLPEndpoint, "routerd-eventd", gc.LocalNode)
	if err != nil {
		return configError{err}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
	}()

	// The store's metrics stay routerd's: here each of their facts (events received,
	// duplicates, retention) is counted once, by the transport's routerd_eventd_* metrics.
	st, err := store.Open(src.storePath, store.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	start := func(gc transport.GroupConfig, prune time.Duration) (*transport.Daemon, error) {
		opts := transport.DaemonOptions{
			Logger: base, MeterProvider: metrics.Provider(), MetricsHandler: metrics.Handler(),
			ReadTimeout: src.readTimeout, PruneInterval: prune,
		}
		if gc.JetStream != nil {
			b, err := jetstream.NewBroker(jetstream.Options{
				Group: gc.Group, LocalNode: gc.LocalNode, Config: *gc.JetStream, Logger: base,
				DefaultStoreDir: filepath.Join(s.StateDir, "nats", gc.Group),
				// The routerd_eventd_jetstream_* metrics go to the same /metrics.
				MeterProvider: opts.MeterProvider,
			})
			if err != nil {
				return nil, configError{err}
			}
			opts.Broker = b
		}
		d, err := transport.NewDaemon(gc, st, opts)
		if err != nil {
			return nil, configError{err}
		}
		if err := d.Start(ctx); err != nil {
			return nil, err
		}
		peers := make([]string, 0, len(gc.Peers))
		for _, p := range gc.Peers {
			peers = append(peers, p.Name)
		}
		// Tests and supervisors wait for this line: the receiver is listening.
		kind := "hmac-push"
		if gc.JetStream != nil {
			kind = "nats-jetstream"
			peers = append(peers, jetstream.PeerName(gc.JetStream.Stream))
		}
		log.Info("routerd-eventd started", "node", gc.LocalNode, "transport", kind, "listen", d.Addr(), "peers", peers, "store", src.storePath)
		return d, nil
	}
	stop := func(d *transport.Daemon) error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return d.Shutdown(sctx)
	}
	d, err := start(gc, prune)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: draining in-flight requests")
			err := stop(d)
			if cerr := st.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			if err == nil {
				log.Info("routerd-eventd stopped")
			}
			return err
		case err := <-d.Errors():
			log.Error("receiver failed", "err", err)
			return errors.Join(err, stop(d))
		case <-hup:
			next, nextPrune, warnings, err := src.load()
			if err != nil {
				log.Error("reload: config refused, keeping the running one", "err", err)
				continue
			}
			for _, w := range warnings {
				log.Warn(w)
			}
			if reflect.DeepEqual(next, gc) && nextPrune == prune {
				log.Info("reload: configuration unchanged")
				continue
			}
			// Drain the running transport, then start the new one on the same store:
			// the outbox resumes where the old one stopped.
			if err := stop(d); err != nil {
				log.Warn("reload: stop running transport", "err", err)
			}
			if d, err = start(next, nextPrune); err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			gc, prune = next, nextPrune
			log.Info("reload: configuration applied")
		}
	}
}

// reloadConfig loads the config dir again and builds the group's configuration.
func reloadConfig(s settings.Settings, group, listen string) (transport.GroupConfig, error) {
	cfg, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		return transport.GroupConfig{}, fmt.Errorf("load config %s: %w", s.ConfigDir, err)
	}
	gc, err := transport.FromSchemas(cfg, group, s.ConfigDir)
	if err != nil {
		return transport.GroupConfig{}, err
	}
	if listen != "" {
		gc.ListenAddress = listen
	}
	return gc, nil
}

func main() {
	cmd := newCmd()
	err := cmd.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", programName, err)
	var ce configError
	if errors.As(err, &ce) {
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", programName)
		os.Exit(exitUsage)
	}
	os.Exit(exitFailed)
}
