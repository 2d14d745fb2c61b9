package schemas

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// API groups and versions of routerd's Kinds (COMPAT.md).
const (
	// ConfigAPIVersion holds the dynamic-config Kinds.
	ConfigAPIVersion = "config.routerd.net/v1alpha1"
	// HybridAPIVersion holds the CloudEdge / address-mobility Kinds.
	HybridAPIVersion = "hybrid.routerd.net/v1alpha1"
	// FederationAPIVersion holds the event-federation Kinds.
	FederationAPIVersion = "federation.routerd.net/v1alpha1"
	// PluginAPIVersion holds the Plugin Kind (and the plugin request/result documents).
	PluginAPIVersion = "plugin.routerd.net/v1alpha1"
	// RouterAPIVersion is the apiVersion of the original whole-router document
	// (kind: Router, spec.resources[]).
	RouterAPIVersion = "routerd.net/v1alpha1"
	// RouterKind is the kind of the original whole-router document.
	RouterKind = "Router"
)

// KindInfo describes one registered Kind.
type KindInfo struct {
	// APIVersion is the Kind's API group and version.
	APIVersion string
	// Kind is the Kind's name.
	Kind string
	// New returns an empty resource of the Kind with APIVersion and Kind set.
	New func() Object
}

var registry = struct {
	sync.RWMutex
	byKind map[string]KindInfo
}{byKind: map[string]KindInfo{}}

// Register adds a Kind to the registry. It panics when the Kind is already registered, its
// fields are empty, or New returns an object of another Kind: the registry is filled in
// init functions and a mistake there is a programming error.
func Register(info KindInfo) {
	if info.APIVersion == "" || info.Kind == "" || info.New == nil {
		panic(fmt.Sprintf("schemas: register %q/%q: apiVersion, kind and New are required", info.APIVersion, info.Kind))
	}
	obj := info.New()
	if obj.GetAPIVersion() != info.APIVersion || obj.GetKind() != info.Kind {
		panic(fmt.Sprintf("schemas: register %s/%s: New returns %s/%s", info.APIVersion, info.Kind, obj.GetAPIVersion(), obj.GetKind()))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.byKind[info.Kind]; dup {
		panic(fmt.Sprintf("schemas: register %s/%s: kind %s is already registered", info.APIVersion, info.Kind, info.Kind))
	}
	registry.byKind[info.Kind] = info
}

// Kinds returns every registered Kind, sorted by apiVersion, then kind.
func Kinds() []KindInfo {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]KindInfo, 0, len(registry.byKind))
	for _, k := range registry.byKind {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b KindInfo) int {
		if c := strings.Compare(a.APIVersion, b.APIVersion); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}

// LookupKind returns the registered Kind named kind.
func LookupKind(kind string) (KindInfo, bool) {
	registry.RLock()
	defer registry.RUnlock()
	k, ok := registry.byKind[kind]
	return k, ok
}

// New returns an empty resource of kind with apiVersion and kind set, or nil when kind is
// not registered.
func New(kind string) Object {
	k, ok := LookupKind(kind)
	if !ok {
		return nil
	}
	return k.New()
}

// isOurAPIVersion reports whether v is one of routerd's API groups.
func isOurAPIVersion(v string) bool {
	switch v {
	case ConfigAPIVersion, HybridAPIVersion, FederationAPIVersion, PluginAPIVersion:
		return true
	}
	return false
}

// originalKinds are Kinds of the original routerd v1alpha1 (a whole router) that this
// routerd does not implement; naming them lets the loader say so precisely.
var originalKinds = map[string]bool{
	"Interface": true, "VLAN": true, "Bridge": true, "Bond": true, "Loopback": true,
	"IPv4Address": true, "IPv6Address": true, "StaticRoute": true, "Route": true,
	"DHCPServer": true, "DHCPv4Server": true, "DHCPv6Server": true, "DHCPClient": true,
	"DHCPv4Client": true, "DHCPv6Client": true, "DHCPRelay": true, "RouterAdvertisement": true,
	"DNSResolver": true, "DNSServer": true, "DNSForwarder": true, "NTP": true, "NTPServer": true,
	"BGP": true, "BGPPeer": true, "BGPNeighbor": true, "OSPF": true, "WireGuard": true,
	"WireGuardPeer": true, "WireGuardInterface": true, "IPsec": true, "IPsecTunnel": true,
	"GRETunnel": true, "VXLAN": true, "NAT": true, "NAT44": true, "NAT64": true, "NAPT": true,
	"Firewall": true, "FirewallRule": true, "FirewallZone": true, "PortForward": true,
	"HealthCheck": true, "PolicyRoute": true, "Sysctl": true, "System": true, "Hostname": true,
	"User": true, "LogSink": true, "Monitor": true, "PPPoE": true, "DSLite": true, "MAPE": true,
}

// isOriginalKind reports whether kind is a Kind of the original routerd that we do not
// implement.
func isOriginalKind(kind string) bool { return originalKinds[kind] }

// kindNames lists the registered Kind names, sorted, for messages.
func kindNames() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Kind)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
