package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/settings"
)

// onStarted, when set (by tests), is called with the daemon once it runs.
var onStarted func(*daemon.Daemon)

func newRunCmd() *cobra.Command {
	var (
		dp, netns, eventd string
		noEventd          bool
		noWatch           bool
		shutdownTimeout   time.Duration
		reconcileInterval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon (the default)",
		Long: `Run the routerd daemon until SIGTERM or SIGINT.

routerd loads the resource documents in the config dir (*.yaml), opens the node's store
(<state-dir>/routerd.db), loads the Wasm plugins in the plugin dir, runs every
EventSubscription (events -> plugin on_events -> DynamicConfigParts), reconciles the
dataplane from the static config plus the live dynamic parts, supervises one
routerd-eventd child per EventGroup, and serves the control API on the Unix socket
(GET /v1/status, /v1/plugins, /v1/subscriptions, /v1/dynamic, /v1/dataplane,
POST /v1/reload, /metrics) and Prometheus metrics on --metrics-address.

The dataplane is a dry run (a recording fake backend: the planned changes are logged and
shown at /v1/dataplane) unless --dataplane=netlink, which needs root.

SIGHUP, POST /v1/reload and any change of a *.yaml file in the config dir reload the
configuration: a valid one is applied, an invalid one is refused with every problem
logged, and the running configuration stays. SIGTERM/SIGINT shut down cleanly within
--shutdown-timeout.`,
		Example: `  routerd
  routerd run --config-dir ./conf.d --state-dir /tmp/routerd --control-socket /tmp/routerd.sock
  routerd run --dataplane netlink --netns lab-a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := settings.Load(cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			log := s.Logger()
			if eventd == "" && !noEventd {
				eventd = daemon.DefaultEventdBinary()
				if eventd == "" {
					log.Warn("routerd-eventd not found next to routerd; no federation transport runs (use --eventd-binary)")
				}
			}
			if noEventd {
				eventd = ""
			}
			if dp == daemon.DataplaneNetlink && os.Geteuid() != 0 {
				return usageError{fmt.Errorf("--dataplane=netlink needs root")}
			}
			// Take SIGHUP before starting, so that an early one cannot kill the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			d, err := daemon.New(cmd.Context(), daemon.Options{
				Settings: s, Logger: log, Dataplane: dp, NetNS: netns, EventdBinary: eventd,
				EventdStdout: os.Stderr, EventdStderr: os.Stderr, WatchConfig: !noWatch, ShutdownTimeout: shutdownTimeout,
				ReconcileInterval: reconcileInterval, Reload: hup,
			})
			if err != nil {
				return err
			}
			if onStarted != nil {
				onStarted(d)
			}
			return d.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	settings.AddFlags(fs)
	fs.StringVar(&dp, "dataplane", daemon.DataplaneDryRun, "dataplane backend: dry-run (record only) or netlink (root)")
	fs.StringVar(&netns, "netns", "", "network namespace for --dataplane=netlink (default: routerd's own)")
	fs.StringVar(&eventd, "eventd-binary", "", "routerd-eventd executable supervised per EventGroup (default: next to routerd)")
	fs.BoolVar(&noEventd, "no-eventd", false, "do not supervise routerd-eventd (e.g. when systemd runs routerd-eventd@.service)")
	fs.BoolVar(&noWatch, "no-config-watch", false, "reload only on SIGHUP or POST /v1/reload, not on file changes")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a clean shutdown may take")
	fs.DurationVar(&reconcileInterval, "reconcile-interval", time.Minute, "re-apply the desired state this often to repair drift (negative: only on changes)")
	return cmd
}
