package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/host"
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
		Config:   daemon.ConfigSource{Config: func() *schemas.Config { return e.cfg }},
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
