package desired

import (
	"time"

	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/schemas"
)

// FromConfigAndParts is the desired state of a running routerd: the static cfg merged
// with the dynamic parts live at now (federation/dynamic.Merge, with the conflict
// resolution of cfg's DynamicOverridePolicies), translated by FromConfig. When the merged
// resources do not form a valid configuration, the static cfg is used plus the parts'
// claims, and the reason is the first problem. Conflicts the merge resolved are returned
// as well.
func FromConfigAndParts(cfg *schemas.Config, parts []dynamic.Part, now time.Time) (Result, []dynamic.Conflict) {
	merged, conflicts := dynamic.Merge(cfg.Objects(), parts, now, dynamic.ConfigFrom(cfg).Resolution())
	opts := Options{Now: now}
	mc, err := schemas.NewConfig(merged...)
	var problems []string
	if err != nil {
		problems = append(problems, "merged config: "+err.Error())
		mc = cfg
		for _, p := range parts {
			if c, ok := p.Resource().(*schemas.RemoteAddressClaim); ok && !p.Expired(now) {
				opts.Claims = append(opts.Claims, c)
			}
		}
	}
	res := FromConfig(mc, opts)
	res.Problems = append(problems, res.Problems...)
	return res, conflicts
}
