package dynamic

import "routerd.net/routerd/schemas"

// ConfigFrom extracts what the Manager enforces from a loaded configuration: the
// override policies, each subscription's group, allowed Kinds and default TTL (its
// group's delivery.defaultTTL), and the names of the static resources.
func ConfigFrom(cfg *schemas.Config) Config {
	c := Config{
		Policies:      cfg.DynamicOverridePolicies(),
		Subscriptions: map[string]Subscription{},
		Static:        map[string]bool{},
		StaticConfig:  cfg,
	}
	groups := map[string]*schemas.EventGroup{}
	for _, g := range cfg.EventGroups() {
		groups[g.Metadata.Name] = g
	}
	for _, s := range cfg.EventSubscriptions() {
		sub := Subscription{Group: s.Spec.GroupRef, AllowedKinds: s.Spec.Output.AllowedKinds}
		if g := groups[s.Spec.GroupRef]; g != nil {
			sub.DefaultTTL = g.Spec.Delivery.DefaultTTL.Duration
		}
		c.Subscriptions[s.Metadata.Name] = sub
	}
	for _, o := range cfg.Objects() {
		c.Static[o.GetKind()+"/"+o.GetName()] = true
	}
	return c
}
