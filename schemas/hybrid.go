package schemas

// OverlayPeer is a remote router reachable over the L3 hybrid overlay: its role, node id,
// the underlay that carries the overlay and the remote end.
type OverlayPeer struct {
	TypeMeta `json:",inline"`
	// Metadata names the overlay peer.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the overlay peer's configuration.
	Spec OverlayPeerSpec `json:"spec" jsonschema:"required"`
}

// OverlayPeerSpec configures one overlay peer.
type OverlayPeerSpec struct {
	// Role is the local site's role in the overlay: onprem or cloud.
	Role string `json:"role" jsonschema:"required,enum=onprem,enum=cloud"`
	// NodeID is the local node's id in the overlay.
	NodeID string `json:"nodeID,omitempty"`
	// Underlay is the transport that carries overlay traffic to the peer.
	Underlay OverlayUnderlay `json:"underlay" jsonschema:"required"`
	// Remote is the peer's end of the overlay.
	Remote OverlayRemote `json:"remote" jsonschema:"required"`
	// PathMTU configures the path MTU of the overlay (used by MSSClamp).
	PathMTU PathMTU `json:"pathMTU,omitzero"`
}

// OverlayUnderlay is the transport under the overlay.
type OverlayUnderlay struct {
	// Type is the underlay: wireguard, ipsec, route, ipip, gre or vxlan.
	Type string `json:"type" jsonschema:"required,enum=wireguard,enum=ipsec,enum=route,enum=ipip,enum=gre,enum=vxlan"`
	// Interface is the local tunnel (or routed) interface, for example wg-hybrid.
	Interface string `json:"interface,omitempty"`
	// Address is the local overlay address (IP or IP/prefix) on Interface.
	Address string `json:"address,omitempty"`
}

// OverlayRemote is the remote end of an overlay peer.
type OverlayRemote struct {
	// NodeID is the remote node's id in the overlay.
	NodeID string `json:"nodeID,omitempty"`
	// Address is the remote overlay address, used as the next hop of HybridRoutes and
	// claims delivered to this peer.
	Address string `json:"address" jsonschema:"required"`
}

// PathMTU configures the overlay's path MTU.
type PathMTU struct {
	// MTU is the overlay path MTU in bytes (default 1420).
	MTU int `json:"mtu,omitempty" jsonschema:"minimum=0,maximum=65535"`
	// Discovery is how the path MTU is found: static (use MTU) or probe (default static).
	Discovery string `json:"discovery,omitempty" jsonschema:"enum=static,enum=probe"`
}

// HybridRoute is an L3 route whose next hop is an OverlayPeer.
type HybridRoute struct {
	TypeMeta `json:",inline"`
	// Metadata names the route.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the route's configuration.
	Spec HybridRouteSpec `json:"spec" jsonschema:"required"`
}

// HybridRouteSpec configures one hybrid route.
type HybridRouteSpec struct {
	// DestinationCIDRs are the routed prefixes (IPv4 or IPv6 CIDRs).
	DestinationCIDRs []string `json:"destinationCIDRs" jsonschema:"required,minItems=1"`
	// PeerRef names the OverlayPeer that is the next hop.
	PeerRef string `json:"peerRef" jsonschema:"required"`
	// Install says where the route is installed.
	Install RouteInstall `json:"install,omitzero"`
	// HealthCheckRef names a health check that must pass for the route to be installed.
	HealthCheckRef string `json:"healthCheckRef,omitempty"`
}

// RouteInstall says where a route is installed in the kernel.
type RouteInstall struct {
	// Table is the kernel routing table id (default 254, main).
	Table int `json:"table,omitempty" jsonschema:"minimum=0,maximum=4294967295"`
	// Metric is the route priority (default 100).
	Metric int `json:"metric,omitempty" jsonschema:"minimum=0,maximum=4294967295"`
}

// AddressMobilityDomain is a prefix whose individual addresses may move between sites.
type AddressMobilityDomain struct {
	TypeMeta `json:",inline"`
	// Metadata names the domain.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the domain's configuration.
	Spec AddressMobilityDomainSpec `json:"spec" jsonschema:"required"`
}

// AddressMobilityDomainSpec configures one mobility domain.
type AddressMobilityDomainSpec struct {
	// Prefix is the CIDR whose addresses may move.
	Prefix string `json:"prefix" jsonschema:"required"`
	// Mode is the mobility mode; only selective-address is supported (default
	// selective-address).
	Mode string `json:"mode,omitempty" jsonschema:"enum=selective-address"`
	// PeerRef names the OverlayPeer that carries the domain's moved addresses by default.
	PeerRef string `json:"peerRef,omitempty"`
}

// RemoteAddressClaim says that one address currently lives at one site: it installs the
// route/neighbor state that sends traffic for the address there, and optionally captures
// the address at the provider (secondary IP) or with proxy ARP.
type RemoteAddressClaim struct {
	TypeMeta `json:",inline"`
	// Metadata names the claim, for example onprem-10-88-60-9.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the claim.
	Spec RemoteAddressClaimSpec `json:"spec" jsonschema:"required"`
}

// RemoteAddressClaimSpec is one address claim.
type RemoteAddressClaimSpec struct {
	// DomainRef names the AddressMobilityDomain the address belongs to.
	DomainRef string `json:"domainRef" jsonschema:"required"`
	// Address is the claimed address (an IP, or an IP with prefix length).
	Address string `json:"address" jsonschema:"required"`
	// OwnerSide is the side where the address lives: cloud or onprem (default onprem).
	OwnerSide string `json:"ownerSide,omitempty" jsonschema:"enum=cloud,enum=onprem"`
	// Capture says how the local site captures traffic for the address.
	Capture *ClaimCapture `json:"capture,omitempty"`
	// Delivery says how captured traffic reaches the owner side.
	Delivery *ClaimDelivery `json:"delivery,omitempty"`
}

// ClaimCapture says how traffic for a claimed address is captured at the local site.
type ClaimCapture struct {
	// Type is provider-secondary-ip (the provider attaches the address to a NIC) or
	// proxy-arp.
	Type string `json:"type" jsonschema:"required,enum=provider-secondary-ip,enum=proxy-arp"`
	// ProviderRef names the CloudProviderProfile used for provider-secondary-ip.
	ProviderRef string `json:"providerRef,omitempty"`
	// ProviderMode is the provider-side mechanism, for example secondary-ip.
	ProviderMode string `json:"providerMode,omitempty"`
	// NicRef identifies the provider NIC that receives the address (for example an ENI id).
	NicRef string `json:"nicRef,omitempty"`
	// ConfigureOSAddress also adds the address to the local interface (unset: false). A
	// pointer, so that an explicit false a plugin wrote is kept and shown.
	ConfigureOSAddress *bool `json:"configureOSAddress,omitempty"`
	// Interface is the local interface used for proxy-arp or the OS address.
	Interface string `json:"interface,omitempty"`
	// ExcludeAddresses are addresses never captured (for example gateways).
	ExcludeAddresses []string `json:"excludeAddresses,omitempty"`
	// GratuitousARP announces the captured address with gratuitous ARP (unset: false). A
	// pointer, so that an explicit false is kept.
	GratuitousARP *bool `json:"gratuitousARP,omitempty"`
}

// ConfiguresOSAddress reports whether ConfigureOSAddress is set to true.
func (c *ClaimCapture) ConfiguresOSAddress() bool {
	return c != nil && c.ConfigureOSAddress != nil && *c.ConfigureOSAddress
}

// SendsGratuitousARP reports whether GratuitousARP is set to true.
func (c *ClaimCapture) SendsGratuitousARP() bool {
	return c != nil && c.GratuitousARP != nil && *c.GratuitousARP
}

// ClaimDelivery says how captured traffic is delivered to the owner side.
type ClaimDelivery struct {
	// PeerRef names the OverlayPeer traffic is sent to.
	PeerRef string `json:"peerRef" jsonschema:"required"`
	// Mode is the delivery mode; only route is supported (default route).
	Mode string `json:"mode,omitempty" jsonschema:"enum=route"`
	// TunnelInterface is the overlay interface the route points at, for example wg-hybrid.
	TunnelInterface string `json:"tunnelInterface,omitempty"`
}

// CloudProviderProfile says how to talk to one cloud provider: endpoint, region and a
// credentials reference (a file or environment variables; never inline secrets).
type CloudProviderProfile struct {
	TypeMeta `json:",inline"`
	// Metadata names the profile.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the profile.
	Spec CloudProviderProfileSpec `json:"spec" jsonschema:"required"`
}

// CloudProviderProfileSpec configures one provider profile.
type CloudProviderProfileSpec struct {
	// Provider is aws, azure, oci or gcp.
	Provider string `json:"provider" jsonschema:"required,enum=aws,enum=azure,enum=oci,enum=gcp"`
	// Region is the provider region, for example eu-central-1.
	Region string `json:"region,omitempty"`
	// Endpoint overrides the provider API endpoint (https URL; http only for 127.0.0.1
	// test doubles).
	Endpoint string `json:"endpoint,omitempty"`
	// SubscriptionID is the Azure subscription id.
	SubscriptionID string `json:"subscriptionID,omitempty"`
	// ResourceGroup is the Azure resource group.
	ResourceGroup string `json:"resourceGroup,omitempty"`
	// CompartmentID is the OCI compartment OCID.
	CompartmentID string `json:"compartmentID,omitempty"`
	// Capabilities are what routerd may do with this profile, for example observe.cloud or
	// execute.providerAction.
	Capabilities []string `json:"capabilities,omitempty"`
	// NICs are the provider NICs (ENI ids, ARM NIC ids or names, VNIC OCIDs) action plans
	// may change through this profile; a plan for another NIC is refused (rule
	// profile-nics). Empty: any NIC a claim names.
	NICs []string `json:"nics,omitempty"`
	// Auth says where the host finds credentials; plugins never see them.
	Auth ProviderAuth `json:"auth,omitzero"`
}

// ProviderAuth says where the host gets provider credentials; it never contains them.
// Each mode uses its own field: command for external-command, file for file, env for
// env, none for instance.
type ProviderAuth struct {
	// Mode is external-command (run Command, which prints a credential; routerd v1alpha1's
	// only mode), file (read File), env (read the environment variables starting with
	// Env) or instance (instance metadata / managed identity). Default: external-command
	// when command is set, else instance.
	Mode string `json:"mode,omitempty" jsonschema:"enum=external-command,enum=file,enum=env,enum=instance"`
	// Command is the program that prints a credential, for mode external-command: a
	// string as routerd v1alpha1 writes it, or a list of the program and its arguments.
	Command *CommandLine `json:"command,omitempty"`
	// File is the credentials file for mode file.
	File string `json:"file,omitempty"`
	// Env is the prefix of the environment variables for mode env, for example AWS_
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
	Env string `json:"env,omitempty"`
}

// ProviderActionPolicy is the gate for provider actions: whether they may run at all, only
// as dry runs, with approval, against which providers, actions and CIDRs, how many per run
// and when.
type ProviderActionPolicy struct {
	TypeMeta `json:",inline"`
	// Metadata names the policy.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the policy.
	Spec ProviderActionPolicySpec `json:"spec" jsonschema:"required"`
}

// ProviderActionPolicySpec configures the provider action gate.
type ProviderActionPolicySpec struct {
	// Enabled allows provider actions at all (default false: plans are display-only).
	Enabled bool `json:"enabled,omitempty"`
	// DryRunOnly lets actions run only as dry runs (default true).
	DryRunOnly *bool `json:"dryRunOnly,omitempty"`
	// RequireApproval requires an operator approval before an action runs (default true).
	RequireApproval *bool `json:"requireApproval,omitempty"`
	// AutoApproveActions are low-risk actions approved without an operator, for example
	// assign-secondary-ip.
	AutoApproveActions []string `json:"autoApproveActions,omitempty"`
	// AllowedProviders are the providers actions may target (empty: none).
	AllowedProviders []string `json:"allowedProviders,omitempty" jsonschema:"enum=aws,enum=azure,enum=oci,enum=gcp"`
	// AllowedProviderRefs are the CloudProviderProfiles actions may use (empty: any of
	// AllowedProviders).
	AllowedProviderRefs []string `json:"allowedProviderRefs,omitempty"`
	// AllowedActions are the action names that may run (empty: none).
	AllowedActions []string `json:"allowedActions,omitempty"`
	// AllowedCIDRs are the prefixes whose addresses actions may touch (empty: none).
	AllowedCIDRs []string `json:"allowedCIDRs,omitempty"`
	// MaxActionsPerRun caps the actions executed in one run (default 1).
	MaxActionsPerRun int `json:"maxActionsPerRun,omitempty" jsonschema:"minimum=0"`
	// MaxExecutionsPerHour is the budget: executions and undos per provider in any hour
	// (default 60). A plan over the budget is refused with rule budget.
	MaxExecutionsPerHour int `json:"maxExecutionsPerHour,omitempty" jsonschema:"minimum=0"`
	// AllowUndo allows running an action's undo.
	AllowUndo bool `json:"allowUndo,omitempty"`
	// ExecutionWindow limits when actions may run (empty: any time).
	ExecutionWindow *ExecutionWindow `json:"executionWindow,omitempty"`
}

// ExecutionWindow is a recurring time window.
type ExecutionWindow struct {
	// Days are the weekdays of the window (mon, tue, wed, thu, fri, sat, sun; empty:
	// every day).
	Days []string `json:"days,omitempty" jsonschema:"enum=mon,enum=tue,enum=wed,enum=thu,enum=fri,enum=sat,enum=sun"`
	// Start is the window's start time of day, HH:MM.
	Start string `json:"start" jsonschema:"required"`
	// End is the window's end time of day, HH:MM; an End before Start crosses midnight.
	End string `json:"end" jsonschema:"required"`
	// TimeZone is an IANA time zone name (default UTC).
	TimeZone string `json:"timeZone,omitempty"`
}

// MSSClamp clamps the TCP MSS of overlay traffic to the path MTU, independent of firewall
// zones, in routerd's own nftables table.
type MSSClamp struct {
	TypeMeta `json:",inline"`
	// Metadata names the clamp.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the clamp's configuration.
	Spec MSSClampSpec `json:"spec" jsonschema:"required"`
}

// MSSClampSpec configures one MSS clamp. At least one of PeerRefs and Interfaces is
// required.
type MSSClampSpec struct {
	// PeerRefs name OverlayPeers whose underlay interfaces are clamped.
	PeerRefs []string `json:"peerRefs,omitempty"`
	// Interfaces are further interfaces whose forwarded TCP SYNs are clamped.
	Interfaces []string `json:"interfaces,omitempty"`
	// Mode is pmtu (clamp to the route's path MTU) or fixed (clamp to MSS) (default pmtu).
	Mode string `json:"mode,omitempty" jsonschema:"enum=pmtu,enum=fixed"`
	// MSS is the fixed MSS in bytes for mode fixed (536-65495).
	MSS int `json:"mss,omitempty" jsonschema:"minimum=0,maximum=65495"`
	// Families are the IP families clamped: ipv4, ipv6 (default both).
	Families []string `json:"families,omitempty" jsonschema:"enum=ipv4,enum=ipv6"`
}
