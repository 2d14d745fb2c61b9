package subscribe

import "routerd.net/routerd/schemas"

// SpecFrom builds the engine's Spec from an EventSubscription resource.
func SpecFrom(s *schemas.EventSubscription) Spec {
	m := s.Spec.Match
	return Spec{
		Name: s.Metadata.Name, Group: s.Spec.GroupRef, Types: m.Types, SubjectPrefixes: m.SubjectPrefixes,
		Payload: m.Payload, SourceNodes: m.SourceNodes, ExcludeSourceNodes: m.ExcludeSourceNodes,
		Plugin: s.Spec.Trigger.PluginRef, BatchWindow: s.Spec.Trigger.BatchWindow.Duration,
		Debounce: s.Spec.Trigger.Debounce.Duration,
	}
}

// SpecsFrom builds the Specs of every EventSubscription of cfg.
func SpecsFrom(cfg *schemas.Config) []Spec {
	subs := cfg.EventSubscriptions()
	out := make([]Spec, 0, len(subs))
	for _, s := range subs {
		out = append(out, SpecFrom(s))
	}
	return out
}
