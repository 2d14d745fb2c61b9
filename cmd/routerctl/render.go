package main

// `routerctl render systemd|rc.d`: the unit files that run routerd-eventd per EventGroup
// (room H5).

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"routerd.net/routerd/federation/supervise"
)

func init() { addCommand(newRenderCmd) }

func newRenderCmd() *cobra.Command {
	var (
		opts       supervise.RenderOptions
		outDir     string
		settingsIn string
	)
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render service files that run routerd-eventd per event group",
		Long: `Render the service files that run one routerd-eventd per EventGroup.

  systemd  routerd-eventd@.service, a hardened template unit (dedicated user or
           DynamicUser, ProtectSystem=strict, NoNewPrivileges, empty capability set,
           Restart=on-failure with a growing delay); enable one instance per group:
           systemctl enable --now routerd-eventd@<group>.service
  rc.d     the FreeBSD rc.d script routerd_eventd; list the groups in rc.conf
           (routerd_eventd_groups="lab corp"); daemon(8) restarts each one.

The file is printed, or written into --out DIR.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("render: name what to render: systemd or rc.d")
		},
	}
	fl := cmd.PersistentFlags()
	fl.StringVar(&opts.Binary, "binary", "", "absolute path of routerd-eventd (default /usr/local/sbin/routerd-eventd)")
	fl.StringVar(&opts.User, "user", "", "user the daemon runs as (default routerd)")
	fl.StringVar(&opts.Group, "unix-group", "", "group the daemon runs as (default: the user's name)")
	fl.StringVar(&opts.StateDir, "state-dir", "", "state directory holding the shared store (default /var/lib/routerd; rc.d /var/db/routerd)")
	fl.StringVar(&settingsIn, "settings", "", "settings file passed to the daemon (default /etc/routerd/routerd.yaml; rc.d /usr/local/etc/routerd/routerd.yaml)")
	fl.BoolVar(&opts.BindPrivilegedPorts, "bind-privileged-port", false, "grant CAP_NET_BIND_SERVICE for a listen port below 1024 (systemd)")
	fl.StringVar(&outDir, "out", "", "write the file into this directory instead of printing it")

	sub := func(use, short, fileName string, fn func(supervise.RenderOptions) ([]byte, error), mode os.FileMode) *cobra.Command {
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				o := opts
				o.SettingsFile = settingsIn
				b, err := fn(o)
				if err != nil {
					return usagef("%v", err)
				}
				if outDir == "" {
					_, err := cmd.OutOrStdout().Write(b)
					return err
				}
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return fmt.Errorf("render: %w", err)
				}
				path := filepath.Join(outDir, fileName)
				if err := os.WriteFile(path, b, mode); err != nil {
					return fmt.Errorf("render: %w", err)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
				return err
			},
		}
		return c
	}
	systemd := sub("systemd", "Render the systemd template unit routerd-eventd@.service", supervise.SystemdUnitName, supervise.RenderSystemd, 0o644)
	systemd.Flags().BoolVar(&opts.DynamicUser, "dynamic-user", false, "run under a systemd DynamicUser instead of --user")
	cmd.AddCommand(systemd,
		sub("rc.d", "Render the FreeBSD rc.d script routerd_eventd", supervise.RCDName, supervise.RenderRCD, 0o755))
	return cmd
}
