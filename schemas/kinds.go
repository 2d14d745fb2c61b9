package schemas

// This file registers every Kind and gives each the name accessors of Object.

func init() {
	registerKind[DynamicConfigPart](ConfigAPIVersion, "DynamicConfigPart")
	registerKind[DynamicOverridePolicy](ConfigAPIVersion, "DynamicOverridePolicy")
	registerKind[OverlayPeer](HybridAPIVersion, "OverlayPeer")
	registerKind[HybridRoute](HybridAPIVersion, "HybridRoute")
	registerKind[AddressMobilityDomain](HybridAPIVersion, "AddressMobilityDomain")
	registerKind[RemoteAddressClaim](HybridAPIVersion, "RemoteAddressClaim")
	registerKind[CloudProviderProfile](HybridAPIVersion, "CloudProviderProfile")
	registerKind[ProviderActionPolicy](HybridAPIVersion, "ProviderActionPolicy")
	registerKind[MSSClamp](HybridAPIVersion, "MSSClamp")
	registerKind[EventGroup](FederationAPIVersion, "EventGroup")
	registerKind[EventPeer](FederationAPIVersion, "EventPeer")
	registerKind[EventSubscription](FederationAPIVersion, "EventSubscription")
	registerKind[FederationSLO](FederationAPIVersion, "FederationSLO")
	registerKind[Plugin](PluginAPIVersion, "Plugin")
}

// kindPtr is what registerKind needs of a Kind's pointer type.
type kindPtr[T any] interface {
	*T
	Object
	typeMeta() *TypeMeta
}

// typeMeta gives registerKind access to the embedded TypeMeta.
func (t *TypeMeta) typeMeta() *TypeMeta { return t }

// registerKind registers Kind T under apiVersion and kind.
func registerKind[T any, P kindPtr[T]](apiVersion, kind string) {
	Register(KindInfo{APIVersion: apiVersion, Kind: kind, New: func() Object {
		p := P(new(T))
		*p.typeMeta() = TypeMeta{APIVersion: apiVersion, Kind: kind}
		return p
	}})
}

// GetName returns metadata.name.
func (o *DynamicConfigPart) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *DynamicConfigPart) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *DynamicOverridePolicy) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *DynamicOverridePolicy) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *OverlayPeer) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *OverlayPeer) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *HybridRoute) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *HybridRoute) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *AddressMobilityDomain) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *AddressMobilityDomain) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *RemoteAddressClaim) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *RemoteAddressClaim) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *CloudProviderProfile) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *CloudProviderProfile) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *ProviderActionPolicy) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *ProviderActionPolicy) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *MSSClamp) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *MSSClamp) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *EventGroup) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *EventGroup) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *EventPeer) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *EventPeer) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *EventSubscription) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *EventSubscription) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *FederationSLO) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *FederationSLO) GetMeta() *ObjectMeta { return &o.Metadata }

// GetName returns metadata.name.
func (o *Plugin) GetName() string { return o.Metadata.Name }

// GetMeta returns the metadata.
func (o *Plugin) GetMeta() *ObjectMeta { return &o.Metadata }
