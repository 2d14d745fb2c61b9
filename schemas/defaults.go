package schemas

import (
	"strings"
	"time"
)

// Defaults. SetDefaults of each Kind, below, is the only place they are applied.
const (
	DefaultAuthMode            = "hmac"
	DefaultListenAddress       = "127.0.0.1"
	DefaultListenPort          = 9470
	DefaultReplayWindow        = 5 * time.Minute
	DefaultRetentionMaxEvents  = 100000
	DefaultRetentionMaxAge     = 168 * time.Hour
	DefaultBatchSize           = 256
	DefaultRetryBase           = 200 * time.Millisecond
	DefaultRetryMax            = 5 * time.Second
	DefaultFailAfter           = 24 * time.Hour
	DefaultTTLRefreshBefore    = 2 * time.Minute
	DefaultEventTTL            = 30 * time.Minute
	DefaultPeerDirection       = "push"
	DefaultSubjectPrefix       = "routerd"
	DefaultEmbeddedListen      = "127.0.0.1:4222"
	DefaultLagWarnSeconds      = 60
	DefaultLagFailSeconds      = 180
	DefaultExpiresSoonSeconds  = 120
	DefaultPeerFreshnessSecs   = 300
	DefaultPluginMemoryMiB     = 64
	DefaultPluginTimeout       = 2 * time.Second
	DefaultPluginMaxOutput     = 1 << 20
	DefaultPluginConcurrency   = 4
	DefaultPluginWarmInstances = 2
	DefaultPathMTU             = 1420
	DefaultPathMTUDiscovery    = "static"
	DefaultRouteTable          = 254
	DefaultRouteMetric         = 100
	DefaultMobilityMode        = "selective-address"
	DefaultOwnerSide           = "onprem"
	DefaultDeliveryMode        = "route"
	DefaultProviderAuthMode    = "instance"
	// ProviderAuthExternalCommand is routerd v1alpha1's only provider auth mode.
	ProviderAuthExternalCommand = "external-command"
	DefaultMaxActionsPerRun     = 1
	DefaultMSSClampMode         = "pmtu"
	DefaultConflictResolution   = "static-wins"
	DefaultExecutionTimeZone    = "UTC"
)

// DefaultAllowedKinds are the Kinds a subscription's plugin output may become when
// output.allowedKinds is empty.
var DefaultAllowedKinds = []string{"RemoteAddressClaim"}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDuration(p *Duration, v time.Duration) {
	if p.Duration == 0 {
		p.Duration = v
	}
}

func setBool(p **bool, v bool) {
	if *p == nil {
		*p = &v
	}
}

// SetDefaults fills the unset fields of the group.
func (o *EventGroup) SetDefaults() {
	s := &o.Spec
	setString(&s.Auth.Mode, DefaultAuthMode)
	setString(&s.Listen.Address, DefaultListenAddress)
	setInt(&s.Listen.Port, DefaultListenPort)
	setDuration(&s.ReplayWindow, DefaultReplayWindow)
	setInt(&s.Retention.MaxEvents, DefaultRetentionMaxEvents)
	setDuration(&s.Retention.MaxAge, DefaultRetentionMaxAge)
	setInt(&s.Delivery.BatchSize, DefaultBatchSize)
	setDuration(&s.Delivery.RetryBase, DefaultRetryBase)
	setDuration(&s.Delivery.RetryMax, DefaultRetryMax)
	setDuration(&s.Delivery.FailAfter, DefaultFailAfter)
	setDuration(&s.Delivery.TTLRefreshBefore, DefaultTTLRefreshBefore)
	setDuration(&s.Delivery.DefaultTTL, DefaultEventTTL)
	t := &s.Transport
	setString(&t.Type, TransportHMACPush)
	if t.Type == TransportNATSJetStream {
		setString(&t.SubjectPrefix, DefaultSubjectPrefix)
		setString(&t.Stream, DefaultStreamName(o.Metadata.Name))
		if t.Embedded != nil {
			setString(&t.Embedded.Listen, DefaultEmbeddedListen)
		}
	}
}

// DefaultStreamName is the JetStream stream of group when spec.transport.stream is unset:
// ROUTERD_<GROUP>, upper case, any character other than a letter, digit, '-' or '_'
// replaced by '_'.
func DefaultStreamName(group string) string {
	b := []byte("ROUTERD_" + strings.ToUpper(group))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// SetDefaults fills the unset fields of the peer.
func (o *EventPeer) SetDefaults() {
	setString(&o.Spec.Direction, DefaultPeerDirection)
}

// SetDefaults fills the unset fields of the subscription.
func (o *EventSubscription) SetDefaults() {
	if len(o.Spec.Output.AllowedKinds) == 0 {
		o.Spec.Output.AllowedKinds = append([]string(nil), DefaultAllowedKinds...)
	}
}

// SetDefaults fills the unset fields of the SLO.
func (o *FederationSLO) SetDefaults() {
	d := &o.Spec.Delivery
	setInt(&d.LagWarnSeconds, DefaultLagWarnSeconds)
	setInt(&d.LagFailSeconds, DefaultLagFailSeconds)
	setInt(&d.ExpiresSoonSeconds, DefaultExpiresSoonSeconds)
	setInt(&d.PeerFreshnessSeconds, DefaultPeerFreshnessSecs)
}

// SetDefaults fills the unset fields of the plugin. limits.timeout defaults to the
// original spec.timeout when that is set.
func (o *Plugin) SetDefaults() {
	s := &o.Spec
	setInt(&s.Limits.MemoryMiB, DefaultPluginMemoryMiB)
	if s.Timeout.Duration != 0 {
		setDuration(&s.Limits.Timeout, s.Timeout.Duration)
	}
	setDuration(&s.Limits.Timeout, DefaultPluginTimeout)
	setInt(&s.Limits.MaxOutputBytes, DefaultPluginMaxOutput)
	setInt(&s.Limits.MaxConcurrency, DefaultPluginConcurrency)
	setInt(&s.Limits.WarmInstances, DefaultPluginWarmInstances)
	if s.Grants.WASI != nil {
		for i := range s.Grants.WASI.Files {
			setBool(&s.Grants.WASI.Files[i].ReadOnly, true)
		}
	}
}

// SetDefaults fills the unset fields of the overlay peer.
func (o *OverlayPeer) SetDefaults() {
	setInt(&o.Spec.PathMTU.MTU, DefaultPathMTU)
	setString(&o.Spec.PathMTU.Discovery, DefaultPathMTUDiscovery)
}

// SetDefaults fills the unset fields of the route.
func (o *HybridRoute) SetDefaults() {
	setInt(&o.Spec.Install.Table, DefaultRouteTable)
	setInt(&o.Spec.Install.Metric, DefaultRouteMetric)
}

// SetDefaults fills the unset fields of the domain.
func (o *AddressMobilityDomain) SetDefaults() {
	setString(&o.Spec.Mode, DefaultMobilityMode)
}

// SetDefaults fills the unset fields of the claim.
func (o *RemoteAddressClaim) SetDefaults() {
	setString(&o.Spec.OwnerSide, DefaultOwnerSide)
	if o.Spec.Delivery != nil {
		setString(&o.Spec.Delivery.Mode, DefaultDeliveryMode)
	}
}

// SetDefaults fills the unset fields of the profile: auth.mode is external-command when
// a command is set, else instance.
func (o *CloudProviderProfile) SetDefaults() {
	if o.Spec.Auth.Command != nil {
		setString(&o.Spec.Auth.Mode, ProviderAuthExternalCommand)
	}
	setString(&o.Spec.Auth.Mode, DefaultProviderAuthMode)
}

// SetDefaults fills the unset fields of the policy. Without explicit settings, actions
// are dry-run only and need approval.
func (o *ProviderActionPolicy) SetDefaults() {
	s := &o.Spec
	setBool(&s.DryRunOnly, true)
	setBool(&s.RequireApproval, true)
	setInt(&s.MaxActionsPerRun, DefaultMaxActionsPerRun)
	if s.ExecutionWindow != nil {
		setString(&s.ExecutionWindow.TimeZone, DefaultExecutionTimeZone)
	}
}

// SetDefaults fills the unset fields of the clamp.
func (o *MSSClamp) SetDefaults() {
	setString(&o.Spec.Mode, DefaultMSSClampMode)
	if len(o.Spec.Families) == 0 {
		o.Spec.Families = []string{"ipv4", "ipv6"}
	}
}

// SetDefaults fills the unset fields of the part and of its embedded resources.
func (o *DynamicConfigPart) SetDefaults() {
	for _, r := range o.Spec.Resources {
		if r.Object != nil {
			r.Object.SetDefaults()
		}
	}
}

// SetDefaults fills the unset fields of the policy.
func (o *DynamicOverridePolicy) SetDefaults() {
	setString(&o.Spec.ConflictResolution, DefaultConflictResolution)
	for i := range o.Spec.Allow {
		if len(o.Spec.Allow[i].Operations) == 0 {
			o.Spec.Allow[i].Operations = []string{"create", "update"}
		}
	}
}
