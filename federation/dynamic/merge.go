package dynamic

import (
	"encoding/json"
	"fmt"
	"time"

	"routerd.net/routerd/schemas"
)

// Merged is the desired configuration of a running routerd: the static configuration
// with the live dynamic parts merged in, ready for dataplane/desired.FromConfig (with
// Claims passed as desired.Options.Claims).
type Merged struct {
	// Config is the static configuration itself when the parts add only claims (see
	// Claims), else a validated copy holding the merged resources. Callers must treat it
	// as read-only: it may be the shared static configuration.
	Config *schemas.Config
	// Claims are dynamic RemoteAddressClaims to translate alongside Config.
	Claims []*schemas.RemoteAddressClaim
	// Problems are reasons the merged resources could not form a configuration (the
	// static Config plus the dynamic claims are used then).
	Problems []string
	// Conflicts are dynamic resources left out or replaced (see Merge).
	Conflicts []Conflict
}

// MergeConfig merges the static cfg with the parts live at now (Merge, with the conflict
// resolution of cfg's DynamicOverridePolicies). It is the one implementation used by the
// daemon's reconciler, `routerctl doctor` and the tests.
//
// It never modifies cfg or the parts: in the common case (every dynamic resource is a
// RemoteAddressClaim that overrides no static resource) cfg is returned as it is with the
// claims alongside, nothing copied or validated again; otherwise every merged resource is
// deep-copied before schemas.NewConfig applies defaults and validates them. When that
// validation fails, cfg plus the parts' claims are used and the problems reported.
func MergeConfig(cfg *schemas.Config, parts []Part, now time.Time) Merged {
	merged, conflicts := Merge(cfg.Objects(), parts, now, ConfigFrom(cfg).Resolution())
	out := Merged{Config: cfg, Conflicts: conflicts}
	static := map[schemas.Object]bool{}
	for _, o := range cfg.Objects() {
		static[o] = true
	}
	var claims []*schemas.RemoteAddressClaim
	fast := true
	for _, o := range merged {
		if static[o] {
			continue
		}
		c, ok := o.(*schemas.RemoteAddressClaim)
		if !ok || cfg.Get(o.GetKind(), o.GetName()) != nil {
			fast = false
			break
		}
		claims = append(claims, c)
	}
	if fast {
		out.Claims = claims
		return out
	}
	copies := make([]schemas.Object, 0, len(merged))
	for _, o := range merged {
		c, err := CopyObject(o)
		if err != nil {
			out.Problems = append(out.Problems, err.Error())
			continue
		}
		copies = append(copies, c)
	}
	mc, err := schemas.NewConfig(copies...)
	if err == nil && len(out.Problems) == 0 {
		out.Config = mc
		return out
	}
	if err != nil {
		out.Problems = append(out.Problems, "merged config: "+err.Error())
	}
	for _, p := range parts {
		if c, ok := p.Resource().(*schemas.RemoteAddressClaim); ok && !p.Expired(now) {
			out.Claims = append(out.Claims, c)
		}
	}
	return out
}

// CopyObject deep-copies a resource through its JSON form.
func CopyObject(o schemas.Object) (schemas.Object, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("copy %s/%s: %w", o.GetKind(), o.GetName(), err)
	}
	c := schemas.New(o.GetKind())
	if c == nil {
		return nil, fmt.Errorf("copy %s/%s: unknown kind", o.GetKind(), o.GetName())
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("copy %s/%s: %w", o.GetKind(), o.GetName(), err)
	}
	return c, nil
}
