package schemas

// EventGroup is a named federation group as this node sees it: the local node name, where
// the group's transport listens, how events are authenticated, retained and delivered.
type EventGroup struct {
	TypeMeta `json:",inline"`
	// Metadata names the group; the name is the group id carried by every event.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the group's configuration.
	Spec EventGroupSpec `json:"spec" jsonschema:"required"`
}

// EventGroupSpec configures one event group.
type EventGroupSpec struct {
	// NodeName is this router's node name in the group; events it originates carry it as
	// sourceNode.
	NodeName string `json:"nodeName" jsonschema:"required"`
	// PeersFrom lists where peers of the group come from besides EventPeer resources.
	PeersFrom []PeersFrom `json:"peersFrom,omitempty"`
	// Retention bounds the local event store for this group.
	Retention EventRetention `json:"retention,omitzero"`
	// Auth configures the HMAC shared secrets of the group. A group without a secret is
	// accepted with a warning (as routerd v1alpha1 accepts it), but routerd-eventd does
	// not start its transport and doctor fails.
	Auth EventGroupAuth `json:"auth,omitzero"`
	// TLS makes the receiver serve HTTPS and the sender verify peers with CAFile.
	TLS *TLSConfig `json:"tls,omitempty"`
	// Listen is where the group's receiver (routerd-eventd) accepts pushed events.
	Listen ListenConfig `json:"listen,omitzero"`
	// ReplayWindow is how far a signed timestamp may differ from the receiver's clock
	// (default 5m).
	ReplayWindow Duration `json:"replayWindow,omitzero"`
	// Delivery tunes the push sender (batches, retries, TTL refresh).
	Delivery EventDelivery `json:"delivery,omitzero"`
	// Transport selects how events travel between the group's routers: hmac-push (the
	// default: every router pushes to every EventPeer) or nats-jetstream (a NATS JetStream
	// stream per group). See docs/transport.md "When to choose which".
	Transport EventTransport `json:"transport,omitzero"`
}

// Transport types of an EventGroup (spec.transport.type).
const (
	// TransportHMACPush is the HMAC-signed HTTP push mesh (wire protocol v1).
	TransportHMACPush = "hmac-push"
	// TransportNATSJetStream carries the same signed events through NATS JetStream.
	TransportNATSJetStream = "nats-jetstream"
)

// EventTransport selects and configures a group's transport. With nats-jetstream every
// event is still signed with the group's HMAC key and verified by the receiving router,
// so the broker cannot forge events; EventPeers with an endpoint are still pushed to
// (this router then bridges the group to them).
type EventTransport struct {
	// Type is hmac-push (default) or nats-jetstream.
	Type string `json:"type,omitempty" jsonschema:"enum=hmac-push,enum=nats-jetstream"`
	// Servers are the NATS server URLs (nats://host:port or tls://host:port); required
	// for nats-jetstream unless Embedded is set.
	Servers []string `json:"servers,omitempty"`
	// CredentialsFile is a NATS credentials file (.creds: user JWT and NKey seed).
	CredentialsFile string `json:"credentialsFile,omitempty"`
	// Stream is the JetStream stream of the group (default ROUTERD_<GROUP>, upper case,
	// characters other than letters, digits, '-' and '_' replaced by '_').
	Stream string `json:"stream,omitempty"`
	// SubjectPrefix starts every subject: <prefix>.<group>.<type>.<source-node>
	// (default routerd).
	SubjectPrefix string `json:"subjectPrefix,omitempty"`
	// Embedded runs a nats-server with JetStream inside routerd-eventd, for a single site
	// or tests; production points Servers at an existing cluster instead.
	Embedded *EmbeddedNATS `json:"embedded,omitempty"`
}

// EmbeddedNATS is a nats-server run inside routerd-eventd.
type EmbeddedNATS struct {
	// Listen is host:port of the client listener (default 127.0.0.1:4222).
	Listen string `json:"listen,omitempty"`
	// StoreDir holds the JetStream files (default <state-dir>/nats/<group>).
	StoreDir string `json:"storeDir,omitempty"`
}

// PeersFrom names a source of peers for an event group.
type PeersFrom struct {
	// Resource names the source, for example EventPeer/router-b or OverlayPeer/dc1.
	Resource string `json:"resource" jsonschema:"required"`
	// Optional tolerates a missing resource instead of reporting an error.
	Optional bool `json:"optional,omitempty"`
}

// EventRetention bounds how many and how old events the store keeps for a group.
type EventRetention struct {
	// MaxEvents is the most events kept for the group; the oldest are pruned first
	// (default 100000).
	MaxEvents int `json:"maxEvents,omitempty" jsonschema:"minimum=0"`
	// MaxAge is how long an event is kept after it expired or was observed (default 168h).
	MaxAge Duration `json:"maxAge,omitzero"`
}

// EventGroupAuth configures the shared HMAC secrets of a group. Secrets are never written
// inline: they are read from files (or resolved through secretRef) by the transport.
type EventGroupAuth struct {
	// Mode is the authentication mode; only hmac is supported (default hmac).
	Mode string `json:"mode,omitempty" jsonschema:"enum=hmac"`
	// SecretRef refers to the group secret: env:NAME reads the environment variable NAME,
	// file:PATH reads the file PATH.
	SecretRef string `json:"secretRef,omitempty"`
	// SecretFile is a file holding the group secret (at least 16 bytes; surrounding
	// whitespace is ignored).
	SecretFile string `json:"secretFile,omitempty"`
	// Keys lists several secrets with key ids for rotation: all are accepted, the last one
	// listed is the newest and signs outgoing pushes.
	Keys []AuthKey `json:"keys,omitempty"`
}

// AuthKey is one HMAC secret with a key id, used for key rotation.
type AuthKey struct {
	// ID is the key id sent in the X-Routerd-Key-Id header.
	ID string `json:"id" jsonschema:"required"`
	// SecretFile is the file holding the secret.
	SecretFile string `json:"secretFile" jsonschema:"required"`
}

// TLSConfig holds the certificate files of a TLS endpoint.
type TLSConfig struct {
	// CertFile is the PEM certificate (chain) the receiver presents.
	CertFile string `json:"certFile,omitempty"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `json:"keyFile,omitempty"`
	// CAFile is the PEM CA bundle used to verify peers.
	CAFile string `json:"caFile,omitempty"`
}

// ListenConfig is a listen address and port.
type ListenConfig struct {
	// Address is the IP address to listen on (default 127.0.0.1).
	Address string `json:"address,omitempty"`
	// Port is the TCP port to listen on (default 9470).
	Port int `json:"port,omitempty" jsonschema:"minimum=0,maximum=65535"`
}

// EventDelivery tunes the push sender of a group.
type EventDelivery struct {
	// BatchSize is the most events sent in one push to a peer that supports batches
	// (default 256).
	BatchSize int `json:"batchSize,omitempty" jsonschema:"minimum=0"`
	// RetryBase is the first retry delay of a failed delivery (default 200ms).
	RetryBase Duration `json:"retryBase,omitzero"`
	// RetryMax caps the exponential retry delay (default 5s).
	RetryMax Duration `json:"retryMax,omitzero"`
	// FailAfter is how long a delivery is retried before it is marked failed
	// (default 24h).
	FailAfter Duration `json:"failAfter,omitzero"`
	// TTLRefreshBefore re-pushes a live event this long before its expiresAt
	// (default 2m).
	TTLRefreshBefore Duration `json:"ttlRefreshBefore,omitzero"`
	// DefaultTTL is the TTL of locally emitted events that do not set one (default 30m).
	DefaultTTL Duration `json:"defaultTTL,omitzero"`
}

// EventPeer is a peer router of an event group: where to push events and which node name
// to expect from it.
type EventPeer struct {
	TypeMeta `json:",inline"`
	// Metadata names the peer resource.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the peer's configuration.
	Spec EventPeerSpec `json:"spec" jsonschema:"required"`
}

// EventPeerSpec configures one peer.
type EventPeerSpec struct {
	// GroupRef names the EventGroup the peer belongs to.
	GroupRef string `json:"groupRef" jsonschema:"required"`
	// NodeName is the peer's node name; events it pushes must carry it as sourceNode.
	NodeName string `json:"nodeName" jsonschema:"required"`
	// Endpoint is the peer receiver's base URL (http or https), for example
	// http://127.0.0.1:9471; events are posted to {endpoint}/v1/events.
	Endpoint string `json:"endpoint,omitempty"`
	// Direction is the delivery direction; only push is supported (default push).
	Direction string `json:"direction,omitempty" jsonschema:"enum=push"`
	// Types limits the pushed events to these event types (empty: all).
	Types []string `json:"types,omitempty"`
	// SubjectPrefixes limits the pushed events to subjects with one of these prefixes
	// (empty: all).
	SubjectPrefixes []string `json:"subjectPrefixes,omitempty"`
	// Auth gives the peer its own secrets instead of the group's.
	Auth *EventPeerAuth `json:"auth,omitempty"`
}

// EventPeerAuth holds per-peer HMAC secrets.
type EventPeerAuth struct {
	// SecretFile is a file holding the peer's secret.
	SecretFile string `json:"secretFile,omitempty"`
	// Keys lists several secrets with key ids for rotation; the last one listed is the
	// newest and signs outgoing pushes.
	Keys []AuthKey `json:"keys,omitempty"`
}

// EventSubscription feeds matching events of a group to a plugin hook, in batches, and
// says which Kinds the plugin's output may become.
type EventSubscription struct {
	TypeMeta `json:",inline"`
	// Metadata names the subscription; its output parts have the source
	// EventSubscription/<name>.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the subscription's configuration.
	Spec EventSubscriptionSpec `json:"spec" jsonschema:"required"`
}

// EventSubscriptionSpec configures one subscription.
type EventSubscriptionSpec struct {
	// GroupRef names the EventGroup whose events are matched.
	GroupRef string `json:"groupRef" jsonschema:"required"`
	// Match selects the events.
	Match EventMatch `json:"match" jsonschema:"required"`
	// Trigger names the plugin and how events are batched for it.
	Trigger SubscriptionTrigger `json:"trigger" jsonschema:"required"`
	// Output limits what the plugin's output may become.
	Output SubscriptionOutput `json:"output,omitzero"`
}

// EventMatch selects events; all given conditions must hold.
type EventMatch struct {
	// Types are the event types to match (at least one).
	Types []string `json:"types" jsonschema:"required,minItems=1"`
	// SubjectPrefixes match subjects starting with one of the prefixes (empty: any).
	SubjectPrefixes []string `json:"subjectPrefixes,omitempty"`
	// Payload matches events whose payload has every listed key with exactly that value.
	Payload map[string]string `json:"payload,omitempty"`
	// SourceNodes match events from these nodes only (empty: any).
	SourceNodes []string `json:"sourceNodes,omitempty"`
	// ExcludeSourceNodes skip events from these nodes.
	ExcludeSourceNodes []string `json:"excludeSourceNodes,omitempty"`
}

// SubscriptionTrigger names the plugin a subscription runs and how events are batched.
type SubscriptionTrigger struct {
	// PluginRef names the Plugin resource whose on_events hook is called.
	PluginRef string `json:"pluginRef" jsonschema:"required"`
	// BatchWindow collects events for this long after the first one before calling the
	// plugin (0: call at once).
	BatchWindow Duration `json:"batchWindow,omitzero"`
	// Debounce waits until no new matching event arrived for this long before calling the
	// plugin (0: no debounce).
	Debounce Duration `json:"debounce,omitzero"`
}

// SubscriptionOutput limits what a subscription plugin's output may become.
type SubscriptionOutput struct {
	// AllowedKinds are the Kinds the plugin's output resources may have
	// (default [RemoteAddressClaim]).
	AllowedKinds []string `json:"allowedKinds,omitempty"`
}

// FederationSLO sets per-group objectives for delivery lag, failed deliveries, TTL
// staleness and subscription runs; routerctl slo and doctor evaluate them.
type FederationSLO struct {
	TypeMeta `json:",inline"`
	// Metadata names the SLO resource.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec holds the objectives.
	Spec FederationSLOSpec `json:"spec" jsonschema:"required"`
}

// FederationSLOSpec holds the objectives of one group.
type FederationSLOSpec struct {
	// GroupRef names the EventGroup the objectives apply to.
	GroupRef string `json:"groupRef" jsonschema:"required"`
	// Delivery holds delivery objectives.
	Delivery SLODelivery `json:"delivery,omitzero"`
	// Subscription holds subscription-run objectives.
	Subscription SLOSubscription `json:"subscription,omitzero"`
}

// SLODelivery holds delivery objectives.
type SLODelivery struct {
	// LagWarnSeconds warns when an undelivered event is older than this (default 60).
	LagWarnSeconds int `json:"lagWarnSeconds,omitempty" jsonschema:"minimum=0"`
	// LagFailSeconds fails when an undelivered event is older than this (default 180).
	LagFailSeconds int `json:"lagFailSeconds,omitempty" jsonschema:"minimum=0"`
	// ExpiresSoonSeconds flags delivered events whose expiresAt is closer than this
	// without a refresh (default 120).
	ExpiresSoonSeconds int `json:"expiresSoonSeconds,omitempty" jsonschema:"minimum=0"`
	// MaxFailedDeliveries is the most deliveries in state failed before the objective is
	// violated (default 0: any failed delivery violates it).
	MaxFailedDeliveries int `json:"maxFailedDeliveries,omitempty" jsonschema:"minimum=0"`
	// PeerFreshnessSeconds is how long a peer may go without a successful delivery while
	// events wait for it (default 300).
	PeerFreshnessSeconds int `json:"peerFreshnessSeconds,omitempty" jsonschema:"minimum=0"`
}

// SLOSubscription holds subscription-run objectives.
type SLOSubscription struct {
	// MaxPendingRuns is the most subscription runs waiting at once (default 0: no limit).
	MaxPendingRuns int `json:"maxPendingRuns,omitempty" jsonschema:"minimum=0"`
	// MaxFailedRuns is the most failed subscription runs tolerated (default 0: none).
	MaxFailedRuns int `json:"maxFailedRuns,omitempty" jsonschema:"minimum=0"`
}
