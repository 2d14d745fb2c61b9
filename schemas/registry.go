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

// V1Alpha1Kinds returns every Kind of routerd v1alpha1 (the system this routerd
// re-implements; COMPAT.md lists the same 85 names), sorted. Some are provided here
// ([LookupKind] finds them), Router is the whole-router file form, and the rest describe
// parts of a whole router this routerd does not provide (Interface, BGPPeer, ...): the
// loader names them as such instead of calling them unknown.
func V1Alpha1Kinds() []string { return slices.Clone(v1alpha1Kinds) }

// v1alpha1Kinds is the list behind V1Alpha1Kinds, taken from COMPAT.md ("Every Kind of
// routerd v1alpha1"); a test compares the two.
var v1alpha1Kinds = []string{
	"AddressMobilityDomain", "BFD", "BGPPeer", "BGPRouter", "ClientPolicy",
	"CloudProviderProfile", "ClusterNetworkRoute", "DHCPv4Client", "DHCPv4Relay",
	"DHCPv4Reservation", "DHCPv4Server", "DHCPv4ServerLeaseSync", "DHCPv6Address",
	"DHCPv6Information", "DHCPv6PrefixDelegation", "DHCPv6PrefixDelegationLeaseSync",
	"DHCPv6Server", "DHCPv6ServerLeaseSync", "DNSForwarder", "DNSResolver", "DNSUpstream",
	"DNSZone", "DSLiteTunnel", "DerivedEvent", "DynamicConfigSource", "DynamicOverridePolicy",
	"EgressRoutePolicy", "EventGroup", "EventPeer", "EventRule", "EventSubscription",
	"FederationSLO", "FirewallEventLog", "FirewallPolicy", "FirewallRule", "FirewallZone",
	"HealthCheck", "Hostname", "HybridRoute", "IPAddressSet", "IPsecConnection", "IPv4Route",
	"IPv4StaticAddress", "IPv6DelegatedAddress", "IPv6RAAddress", "IPv6RouterAdvertisement",
	"IngressService", "Interface", "LocalServiceRedirect", "LogRetention", "LogSink",
	"ManagementAccess", "MobilityMemberSet", "MobilityPool", "NAT44Rule", "NAT44SessionSync",
	"NTPClient", "NTPServer", "ObservabilityPipeline", "OverlayPeer", "PPPoESession",
	"Package", "Plugin", "PortForward", "ProviderActionPolicy", "RemoteAddressClaim",
	"Router", "RouterdCluster", "SAMNodeSet", "SAMPeerGroup", "SAMSubnetPolicy",
	"SAMTransportProfile", "SelfAddressPolicy", "Sysctl", "SysctlProfile", "TailscaleNode",
	"Telemetry", "TrafficFlowLog", "TunnelInterface", "VRF", "VXLANTunnel", "VirtualAddress",
	"WebConsole", "WireGuardInterface", "WireGuardPeer",
}

// isV1Alpha1Kind reports whether kind is a Kind of routerd v1alpha1.
func isV1Alpha1Kind(kind string) bool {
	_, ok := slices.BinarySearch(v1alpha1Kinds, kind)
	return ok
}

// kindNames lists the registered Kind names, sorted, for messages.
func kindNames() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Kind)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
