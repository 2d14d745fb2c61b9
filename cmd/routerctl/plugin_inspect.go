package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/capability"
)

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
