package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/host"
)

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
	var sts []host.PluginStatus
	if err := daemonGet(ctx, socket, "/v1/plugins", &sts); err != nil {
		return nil, err
	}
	return sts, nil
}

// daemonGet GETs path from the daemon's control API on socket (3s timeout) and decodes
// the JSON answer into out.
func daemonGet(ctx context.Context, socket, path string, out any) error {
	if socket == "" {
		return errors.New("no control socket")
	}
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://routerd"+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control API: GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(out); err != nil {
		return fmt.Errorf("control API: GET %s: %w", path, err)
	}
	return nil
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
