package schemas

import (
	"fmt"
	"slices"
	"strings"
)

// Config is a validated set of resources: every document loaded, defaults applied,
// references checked, names unique per Kind. It is safe for concurrent reads; callers
// must not change the returned objects while others read them.
type Config struct {
	// Warnings are what loading accepted but reports (Problem.Severity warning, with a
	// Code): documents skipped (LoadOptions.SkipUnknownKinds), fields ignored in a
	// kind: Router file, EventGroups without a secret. Sorted by file and line.
	Warnings []Problem

	entries []*entry
	byKind  map[string]map[string]int // kind -> name -> index in entries
}

func newConfig() *Config { return &Config{byKind: map[string]map[string]int{}} }

func (c *Config) addEntry(e *entry) {
	kind := e.obj.GetKind()
	if c.byKind[kind] == nil {
		c.byKind[kind] = map[string]int{}
	}
	c.byKind[kind][e.obj.GetName()] = len(c.entries)
	c.entries = append(c.entries, e)
}

// NewConfig builds a Config from objects made in Go (for example a static config merged
// with dynamic parts): it applies defaults, validates each object and checks names and
// references, like loading does. The error is an *ErrorList.
func NewConfig(objs ...Object) (*Config, error) {
	b := newBuilder(LoadOptions{})
	for i, o := range objs {
		d := newDocContext("", i+1, b.opts)
		d.kind, d.name = o.GetKind(), o.GetName()
		info, ok := LookupKind(o.GetKind())
		if !ok || info.APIVersion != o.GetAPIVersion() {
			d.errorf(0, "", "apiVersion %q, kind %q is not a registered Kind", o.GetAPIVersion(), o.GetKind())
			b.add(d, nil)
			continue
		}
		o.SetDefaults()
		c := newChecker()
		validateObject(o, c)
		d.report(c)
		b.add(d, o)
	}
	return b.finish()
}

// Objects returns every resource, sorted by apiVersion, kind and name.
func (c *Config) Objects() []Object {
	out := make([]Object, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e.obj)
	}
	slices.SortFunc(out, func(a, b Object) int {
		if x := strings.Compare(a.GetAPIVersion(), b.GetAPIVersion()); x != 0 {
			return x
		}
		if x := strings.Compare(a.GetKind(), b.GetKind()); x != 0 {
			return x
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return out
}

// Len returns the number of resources.
func (c *Config) Len() int { return len(c.entries) }

// Get returns the resource of kind named name, or nil.
func (c *Config) Get(kind, name string) Object {
	i, ok := c.byKind[kind][name]
	if !ok {
		return nil
	}
	return c.entries[i].obj
}

// Origin returns the file and line where the resource of kind named name was defined
// ("" and 0 for objects built in memory or not found).
func (c *Config) Origin(kind, name string) (file string, line int) {
	i, ok := c.byKind[kind][name]
	if !ok {
		return "", 0
	}
	d := c.entries[i].ctx
	return d.file, d.lineOf("")
}

// ofKind returns every resource of kind T, sorted by name.
func ofKind[T Object](c *Config) []T {
	var out []T
	for _, e := range c.entries {
		if o, ok := e.obj.(T); ok {
			out = append(out, o)
		}
	}
	return sortedObjects(out)
}

// EventGroups returns the EventGroups, sorted by name.
func (c *Config) EventGroups() []*EventGroup { return ofKind[*EventGroup](c) }

// EventPeers returns the EventPeers, sorted by name.
func (c *Config) EventPeers() []*EventPeer { return ofKind[*EventPeer](c) }

// EventSubscriptions returns the EventSubscriptions, sorted by name.
func (c *Config) EventSubscriptions() []*EventSubscription { return ofKind[*EventSubscription](c) }

// FederationSLOs returns the FederationSLOs, sorted by name.
func (c *Config) FederationSLOs() []*FederationSLO { return ofKind[*FederationSLO](c) }

// Plugins returns the Plugins, sorted by name.
func (c *Config) Plugins() []*Plugin { return ofKind[*Plugin](c) }

// OverlayPeers returns the OverlayPeers, sorted by name.
func (c *Config) OverlayPeers() []*OverlayPeer { return ofKind[*OverlayPeer](c) }

// HybridRoutes returns the HybridRoutes, sorted by name.
func (c *Config) HybridRoutes() []*HybridRoute { return ofKind[*HybridRoute](c) }

// AddressMobilityDomains returns the AddressMobilityDomains, sorted by name.
func (c *Config) AddressMobilityDomains() []*AddressMobilityDomain {
	return ofKind[*AddressMobilityDomain](c)
}

// RemoteAddressClaims returns the RemoteAddressClaims, sorted by name.
func (c *Config) RemoteAddressClaims() []*RemoteAddressClaim { return ofKind[*RemoteAddressClaim](c) }

// CloudProviderProfiles returns the CloudProviderProfiles, sorted by name.
func (c *Config) CloudProviderProfiles() []*CloudProviderProfile {
	return ofKind[*CloudProviderProfile](c)
}

// ProviderActionPolicies returns the ProviderActionPolicies, sorted by name.
func (c *Config) ProviderActionPolicies() []*ProviderActionPolicy {
	return ofKind[*ProviderActionPolicy](c)
}

// MSSClamps returns the MSSClamps, sorted by name.
func (c *Config) MSSClamps() []*MSSClamp { return ofKind[*MSSClamp](c) }

// DynamicConfigParts returns the DynamicConfigParts, sorted by name.
func (c *Config) DynamicConfigParts() []*DynamicConfigPart { return ofKind[*DynamicConfigPart](c) }

// DynamicOverridePolicies returns the DynamicOverridePolicies, sorted by name.
func (c *Config) DynamicOverridePolicies() []*DynamicOverridePolicy {
	return ofKind[*DynamicOverridePolicy](c)
}

// EventPeersOf returns the EventPeers of group, sorted by name.
func (c *Config) EventPeersOf(group string) []*EventPeer {
	var out []*EventPeer
	for _, p := range c.EventPeers() {
		if p.Spec.GroupRef == group {
			out = append(out, p)
		}
	}
	return out
}

// String summarises the config: the number of resources per Kind.
func (c *Config) String() string {
	var parts []string
	for _, k := range Kinds() {
		if n := len(c.byKind[k.Kind]); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k.Kind))
		}
	}
	return strings.Join(parts, ", ")
}
