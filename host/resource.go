package host

import (
	"encoding/json"
	"fmt"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/schemas"
)

// SpecFromResource converts a Plugin resource into the host's runtime spec. The original
// top-level spec.timeout is the default of limits.timeout; a WASI file mount is read-only
// unless readOnly is false.
func SpecFromResource(p *schemas.Plugin) Spec {
	s := p.Spec
	spec := Spec{
		Name:         p.Metadata.Name,
		Module:       s.Module,
		SHA256:       s.SHA256,
		Capabilities: append([]string(nil), s.Capabilities...),
		Env:          s.Env,
		Grants:       capability.Grants{Log: s.Grants.Log, Now: s.Grants.Now, KV: s.Grants.KV},
		Limits: Limits{
			MemoryMiB:      s.Limits.MemoryMiB,
			Timeout:        s.Limits.Timeout.Duration,
			MaxOutputBytes: s.Limits.MaxOutputBytes,
			MaxConcurrency: s.Limits.MaxConcurrency,
			WarmInstances:  s.Limits.WarmInstances,
		},
	}
	if spec.Limits.Timeout == 0 {
		spec.Limits.Timeout = s.Timeout.Duration
	}
	for _, h := range s.Hooks {
		spec.Hooks = append(spec.Hooks, abi.Hook(h))
	}
	g := s.Grants
	if g.ConfigGet != nil {
		spec.Grants.ConfigGet.Kinds = append([]string(nil), g.ConfigGet.Kinds...)
	}
	if g.EventEmit != nil {
		spec.Grants.EventEmit.Types = append([]string(nil), g.EventEmit.Types...)
	}
	if g.ProviderRequest != nil {
		spec.Grants.ProviderRequest.Hosts = append([]string(nil), g.ProviderRequest.Hosts...)
		spec.Grants.ProviderRequest.ProfileRefs = append([]string(nil), g.ProviderRequest.ProfileRefs...)
		spec.Grants.ProviderRequest.Methods = append([]string(nil), g.ProviderRequest.Methods...)
		if len(spec.Grants.ProviderRequest.Methods) == 0 {
			spec.Grants.ProviderRequest.Methods = []string{"GET", "POST", "PUT", "DELETE"}
		}
		spec.Grants.ProviderRequest.PathPrefixes = append([]string(nil), g.ProviderRequest.PathPrefixes...)
		if len(spec.Grants.ProviderRequest.PathPrefixes) == 0 {
			spec.Grants.ProviderRequest.PathPrefixes = []string{"/"}
		}
	}
	if g.WASI != nil {
		spec.Grants.WASI.Env = g.WASI.Env
		for _, f := range g.WASI.Files {
			ro := f.ReadOnly == nil || *f.ReadOnly
			spec.Grants.WASI.Files = append(spec.Grants.WASI.Files, capability.FileGrant{HostPath: f.HostPath, GuestPath: f.GuestPath, ReadOnly: ro})
		}
	}
	return spec
}

// SpecsFromConfig converts every Plugin resource of cfg (nil cfg: none).
func SpecsFromConfig(cfg *schemas.Config) []Spec {
	if cfg == nil {
		return nil
	}
	var out []Spec
	for _, p := range cfg.Plugins() {
		out = append(out, SpecFromResource(p))
	}
	return out
}

// ContextResources returns the documents a Plugin resource's spec.context allowlists
// (a ref without a name selects every resource of its Kind), as JSON for
// PluginRequest.spec.context.resources. Resource documents hold references to secrets
// (files, env names), never secret values, so nothing secret enters the sandbox.
func ContextResources(cfg *schemas.Config, refs []schemas.ResourceRef) ([]json.RawMessage, error) {
	if cfg == nil {
		return nil, nil
	}
	var out []json.RawMessage
	for _, o := range cfg.Objects() {
		for _, r := range refs {
			if o.GetKind() != r.Kind || (r.Name != "" && o.GetName() != r.Name) || (r.APIVersion != "" && o.GetAPIVersion() != r.APIVersion) {
				continue
			}
			b, err := json.Marshal(o)
			if err != nil {
				return nil, fmt.Errorf("host: context resource %s/%s: %w", o.GetKind(), o.GetName(), err)
			}
			out = append(out, b)
			break
		}
	}
	return out, nil
}
