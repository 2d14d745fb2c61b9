package host

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// Default limits, applied where a Plugin resource leaves a limit unset (zero).
const (
	DefaultMemoryMiB      = 64
	DefaultTimeout        = 2 * time.Second
	DefaultMaxOutputBytes = 1 << 20
	DefaultMaxConcurrency = 4
	DefaultWarmInstances  = 2
	// DefaultMaxModuleBytes is the largest module file the host reads.
	DefaultMaxModuleBytes = 64 << 20
)

// Limits bound every call of a plugin.
type Limits struct {
	// MemoryMiB caps the guest's linear memory.
	MemoryMiB int `json:"memoryMiB"`
	// Timeout is the wall-clock limit per call.
	Timeout time.Duration `json:"timeout"`
	// MaxOutputBytes caps a call's output.
	MaxOutputBytes int `json:"maxOutputBytes"`
	// MaxConcurrency is how many calls may run at once (one instance each).
	MaxConcurrency int `json:"maxConcurrency"`
	// WarmInstances is how many idle instances are kept ready between calls (at least
	// one; never more than MaxConcurrency).
	WarmInstances int `json:"warmInstances"`
}

// withDefaults fills zero limits with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MemoryMiB <= 0 {
		l.MemoryMiB = DefaultMemoryMiB
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if l.MaxConcurrency <= 0 {
		l.MaxConcurrency = DefaultMaxConcurrency
	}
	if l.WarmInstances <= 0 {
		l.WarmInstances = DefaultWarmInstances
	}
	if l.WarmInstances > l.MaxConcurrency {
		l.WarmInstances = l.MaxConcurrency
	}
	return l
}

// memoryPages converts MemoryMiB to 64 KiB Wasm pages.
func (l Limits) memoryPages() uint32 { return uint32(l.MemoryMiB) * 16 }

// Spec is the runtime form of a Plugin resource (plugin.routerd.net/v1alpha1): which
// module file it binds, what the plugin may do and how it is limited.
type Spec struct {
	// Name is the plugin's name (the Plugin resource's metadata.name); subscriptions
	// refer to it.
	Name string `json:"name"`
	// Module is the file name in the plugin directory, e.g. "echo.wasm".
	Module string `json:"module"`
	// SHA256 optionally pins the module's digest (64 lowercase hex digits).
	SHA256 string `json:"sha256,omitempty"`
	// Hooks are the hooks enabled for this plugin; empty means every hook the manifest
	// declares.
	Hooks []abi.Hook `json:"hooks,omitempty"`
	// Capabilities are the original routerd capability names granted
	// (observe.cloud, propose.dynamicConfig, ...).
	Capabilities []string `json:"capabilities,omitempty"`
	// Grants are the host functions and resources the plugin may use.
	Grants capability.Grants `json:"grants"`
	// Limits bound each call.
	Limits Limits `json:"limits"`
	// Env are the environment variables the module sees when grants.wasi.env is true.
	Env map[string]string `json:"env,omitempty"`
	// Defaulted is true when no Plugin resource names this module and the host made up
	// a spec (manifest hooks, log and now granted, default limits).
	Defaulted bool `json:"defaulted,omitempty"`
}

// DefaultSpec is the spec of a module no Plugin resource names: every hook the manifest
// declares, only the harmless grants (log, now), default limits.
func DefaultSpec(module string) Spec {
	return Spec{
		Name:      NameFromFile(module),
		Module:    module,
		Grants:    capability.Grants{Log: true, Now: true},
		Defaulted: true,
	}
}

// NameFromFile derives a plugin name from a module file name: "echo.wasm" → "echo".
func NameFromFile(file string) string {
	return strings.TrimSuffix(file, ".wasm")
}

// normalize validates s and fills defaults.
func (s Spec) normalize() (Spec, error) {
	if s.Name == "" {
		return s, fmt.Errorf("plugin spec: name is empty")
	}
	if s.Module == "" {
		s.Module = s.Name + ".wasm"
	}
	if strings.ContainsAny(s.Module, `/\`) || s.Module == "." || s.Module == ".." {
		return s, fmt.Errorf("plugin %s: module %q: want a file name inside the plugin directory", s.Name, s.Module)
	}
	if s.SHA256 != "" {
		s.SHA256 = strings.ToLower(s.SHA256)
		if len(s.SHA256) != 64 || strings.Trim(s.SHA256, "0123456789abcdef") != "" {
			return s, fmt.Errorf("plugin %s: sha256 %q: want 64 hex digits", s.Name, s.SHA256)
		}
	}
	for _, h := range s.Hooks {
		if !h.Valid() {
			return s, fmt.Errorf("plugin %s: hook %q: want one of %v", s.Name, h, abi.Hooks())
		}
	}
	s.Limits = s.Limits.withDefaults()
	return s, nil
}

// hookEnabled reports whether the spec enables h (given the manifest's declared hooks).
func (s Spec) hookEnabled(h abi.Hook, declared []abi.Hook) bool {
	if !slices.Contains(declared, h) {
		return false
	}
	return len(s.Hooks) == 0 || slices.Contains(s.Hooks, h)
}
