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
	"reflect"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/buildinfo"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/cmd/internal/telemetry"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
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

func newCmd() *cobra.Command {
	var (
		group  string
		listen string
	)
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
            --metrics-address when that is set explicitly).

Secrets are read from the files the EventGroup/EventPeer auth names and never logged.
SIGTERM or SIGINT stops receiving, lets in-flight pushes finish and exits 0; after a
crash the outbox resumes from the store, and receivers drop duplicates by event id.
SIGHUP reloads the config dir: a changed group (peers, keys, listen address, delivery
settings) is applied by draining the running transport and starting the new one; an
invalid config is logged and the running one stays.

Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage or configuration error.`,
		Example: `  routerd-eventd --group lab
  routerd-eventd --group lab --config-dir ./conf.d --state-dir /tmp/node-a --listen 127.0.0.1:9471`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.String(programName),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if group == "" {
				return configError{errors.New("--group is required")}
			}
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return configError{err}
			}
			metricsExplicit := cmd.Flags().Changed("metrics-address") || os.Getenv("ROUTERD_METRICS_ADDRESS") != ""
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return run(ctx, s, group, listen, metricsExplicit)
		},
	}
	fs := cmd.Flags()
	settings.AddFlags(fs)
	fs.StringVar(&group, "group", "", "EventGroup to serve (required)")
	fs.StringVar(&listen, "listen", "", "host:port of the receiver, overriding the EventGroup's spec.listen")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return configError{err} })
	return cmd
}

// run serves the group until ctx ends.
func run(ctx context.Context, s settings.Settings, group, listen string, metricsExplicit bool) error {
	// The transport names the group in its own lines; ours add it here.
	base := s.Logger()
	log := base.With("group", group)
	gc, err := reloadConfig(s, group, listen)
	if err != nil {
		return configError{err}
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

	st, err := store.Open(s.StorePath(), store.Options{Logger: log, MeterProvider: metrics.Provider()})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	start := func(gc transport.GroupConfig) (*transport.Daemon, error) {
		d, err := transport.NewDaemon(gc, st, transport.DaemonOptions{
			Logger: base, MeterProvider: metrics.Provider(), MetricsHandler: metrics.Handler(),
		})
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
		log.Info("routerd-eventd started", "node", gc.LocalNode, "listen", d.Addr(), "peers", peers, "store", s.StorePath())
		return d, nil
	}
	stop := func(d *transport.Daemon) error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return d.Shutdown(sctx)
	}
	d, err := start(gc)
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
			next, err := reloadConfig(s, group, listen)
			if err != nil {
				log.Error("reload: config refused, keeping the running one", "err", err)
				continue
			}
			if reflect.DeepEqual(next, gc) {
				log.Info("reload: configuration unchanged")
				continue
			}
			// Drain the running transport, then start the new one on the same store:
			// the outbox resumes where the old one stopped.
			if err := stop(d); err != nil {
				log.Warn("reload: stop running transport", "err", err)
			}
			if d, err = start(next); err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			gc = next
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
