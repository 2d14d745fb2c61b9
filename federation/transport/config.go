package transport

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"routerd.net/routerd/schemas"
)

// DefaultListenPort is the receiver port when an EventGroup sets none.
const DefaultListenPort = schemas.DefaultListenPort

// FromSchemas builds the runtime configuration of group from loaded resources: the
// EventGroup (with defaults applied), its EventPeers, and the secrets read from their
// files (relative paths are resolved against baseDir, normally the config directory).
//
// Keys: the group's secretFile/secretRef and keys[] are accepted from every peer that
// has no auth of its own; a peer's own secretFile and keys[] only from that peer. Pushes
// to a peer are signed with the newest (last listed) key it knows: its own, else the
// group's.
//
// Peers: the group's EventPeers and its spec.peersFrom entries (GroupPeers). A declared
// peer with an EventPeer (spec.peersFrom EventPeer/x brings in x even from another group)
// is pushed to and accepted from like any EventPeer; one without (an OverlayPeer whose
// spec.remote.nodeID no EventPeer of the group names) is accepted from under the group's
// key but not pushed to, as it has no endpoint (doctor reports it).
//
// # Errors
//
// A non-optional spec.peersFrom resource missing from the config, an unknown group, a missing node name, an unreadable or short secret (named by file,
// never by content), a key id used twice, or a peer endpoint that is not an http(s) URL.
func FromSchemas(cfg *schemas.Config, group, baseDir string) (GroupConfig, error) {
	obj, _ := cfg.Get("EventGroup", group).(*schemas.EventGroup)
	if obj == nil {
		var names []string
		for _, g := range cfg.EventGroups() {
			names = append(names, g.Metadata.Name)
		}
		return GroupConfig{}, fmt.Errorf("transport: no EventGroup %q in the config (have: %s)", group, strings.Join(names, ", "))
	}
	g := *obj
	g.SetDefaults()
	s := g.Spec
	if s.NodeName == "" {
		return GroupConfig{}, fmt.Errorf("transport: EventGroup %s: spec.nodeName is empty", group)
	}
	port := s.Listen.Port
	if port == 0 {
		port = DefaultListenPort
	}
	out := GroupConfig{
		Group:            group,
		LocalNode:        s.NodeName,
		ListenAddress:    net.JoinHostPort(s.Listen.Address, strconv.Itoa(port)),
		ReplayWindow:     s.ReplayWindow.Duration,
		BatchSize:        s.Delivery.BatchSize,
		RetryBase:        s.Delivery.RetryBase.Duration,
		RetryMax:         s.Delivery.RetryMax.Duration,
		FailAfter:        s.Delivery.FailAfter.Duration,
		TTLRefreshBefore: s.Delivery.TTLRefreshBefore.Duration,
		PruneMaxAge:      s.Retention.MaxAge.Duration,

		RetentionMaxEvents: int64(s.Retention.MaxEvents),
		RetentionMaxAge:    s.Retention.MaxAge.Duration,
	}
	if s.TLS != nil {
		out.TLS = &TLSFiles{
			CertFile: resolve(baseDir, s.TLS.CertFile),
			KeyFile:  resolve(baseDir, s.TLS.KeyFile),
			CAFile:   resolve(baseDir, s.TLS.CAFile),
		}
		if (out.TLS.CertFile == "") != (out.TLS.KeyFile == "") {
			return GroupConfig{}, fmt.Errorf("transport: EventGroup %s: spec.tls needs both certFile and keyFile", group)
		}
	}

	where := "EventGroup " + group + " spec.auth"
	groupKeys, err := readKeys(baseDir, where, s.Auth.SecretFile, s.Auth.SecretRef, s.Auth.Keys)
	if err != nil {
		return GroupConfig{}, err
	}
	var (
		groupNodes []string
		peers      []*schemas.EventPeer
	)
	for _, gp := range GroupPeers(cfg, &g) {
		switch {
		case gp.ResourceMissing && !gp.Optional:
			return GroupConfig{}, &MissingPeersFromError{Group: group, Index: gp.Index, Resource: gp.PeersFrom}
		case gp.EventPeer != nil:
			peers = append(peers, gp.EventPeer)
		case gp.NodeName != "":
			// Declared without an EventPeer (an OverlayPeer's remote node): nothing is
			// pushed to it, but its events signed with the group's key are accepted.
			groupNodes = append(groupNodes, gp.NodeName)
		}
	}
	if len(groupKeys) == 0 && !slices.ContainsFunc(peers, peerHasAuth) {
		return GroupConfig{}, &NoAuthError{Group: group}
	}
	for _, p := range peers {
		if !peerHasAuth(p) {
			groupNodes = append(groupNodes, p.Spec.NodeName)
		}
	}
	for _, k := range groupKeys {
		k.Nodes = groupNodes
		out.ReceiveKeys = append(out.ReceiveKeys, k)
	}
	for _, p := range peers {
		if p.Spec.NodeName == s.NodeName {
			return GroupConfig{}, fmt.Errorf("transport: EventPeer %s: nodeName %q is this node's own name", p.Metadata.Name, s.NodeName)
		}
		sign := Key{}
		if len(groupKeys) > 0 {
			sign = groupKeys[len(groupKeys)-1]
		}
		if a := p.Spec.Auth; peerHasAuth(p) {
			own, err := readKeys(baseDir, "EventPeer "+p.Metadata.Name+" spec.auth", a.SecretFile, "", a.Keys)
			if err != nil {
				return GroupConfig{}, err
			}
			for _, k := range own {
				k.Nodes = []string{p.Spec.NodeName}
				out.ReceiveKeys = append(out.ReceiveKeys, k)
			}
			sign = own[len(own)-1]
		}
		if len(sign.Secret) == 0 {
			return GroupConfig{}, fmt.Errorf("transport: EventPeer %s: no secret (set auth on the peer or on EventGroup %s)", p.Metadata.Name, group)
		}
		if p.Spec.Endpoint == "" {
			continue // receive-only peer: it pushes to us, we do not push to it
		}
		u, err := url.Parse(p.Spec.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return GroupConfig{}, fmt.Errorf("transport: EventPeer %s: endpoint %q is not an http(s) URL", p.Metadata.Name, p.Spec.Endpoint)
		}
		out.Peers = append(out.Peers, Peer{
			Name: p.Metadata.Name, NodeName: p.Spec.NodeName, Endpoint: p.Spec.Endpoint,
			Types: p.Spec.Types, SubjectPrefixes: p.Spec.SubjectPrefixes,
			Key: Key{ID: sign.ID, Secret: sign.Secret},
		})
	}
	seen := map[string]bool{}
	for _, k := range out.ReceiveKeys {
		if k.ID != "" && seen[k.ID] {
			return GroupConfig{}, fmt.Errorf("transport: EventGroup %s: key id %q is used twice", group, k.ID)
		}
		seen[k.ID] = true
	}
	if len(out.ReceiveKeys) == 0 {
		return GroupConfig{}, fmt.Errorf("transport: EventGroup %s: no secret configured", group)
	}
	if t := s.Transport; t.Type == schemas.TransportNATSJetStream {
		if len(groupKeys) == 0 {
			return GroupConfig{}, fmt.Errorf("transport: EventGroup %s: spec.transport.type %s signs every message with the group key: set spec.auth.secretFile (or secretRef or keys)", group, t.Type)
		}
		newest := groupKeys[len(groupKeys)-1]
		js := &JetStreamConfig{
			Servers: t.Servers, CredentialsFile: resolve(baseDir, t.CredentialsFile),
			Stream: t.Stream, SubjectPrefix: t.SubjectPrefix, MaxAge: s.Retention.MaxAge.Duration,
			SignKey: Key{ID: newest.ID, Secret: newest.Secret},
		}
		for _, k := range groupKeys {
			js.GroupKeys = append(js.GroupKeys, Key{ID: k.ID, Secret: k.Secret, AnyNode: true})
		}
		if e := t.Embedded; e != nil {
			js.Embedded = &EmbeddedNATS{Listen: e.Listen, StoreDir: resolve(baseDir, e.StoreDir)}
		}
		out.JetStream = js
		if len(peers) == 0 {
			// Nobody pushes to this router: no HTTP receiver.
			out.ListenAddress = ""
		}
	}
	return out, nil
}

// JetStreamPeerName is the event_deliveries peer of the publishes into a nats-jetstream
// group's stream: "jetstream:<stream>".
func JetStreamPeerName(stream string) string { return "jetstream:" + stream }

// NoAuthError refuses to run the transport of a group for which no secret is configured
// (neither the EventGroup's spec.auth nor any EventPeer's auth names one): without a
// secret no request could be signed or verified.
type NoAuthError struct{ Group string }

// Error implements error.
func (e *NoAuthError) Error() string {
	return "group " + e.Group + " has no auth: add spec.auth.secretFile"
}

// HasAuth reports whether any secret is configured for group g — its spec.auth or an
// EventPeer's own auth — without reading the secrets. Groups without one get no
// transport: routerd does not start their routerd-eventd and routerd-eventd refuses them
// (NoAuthError).
func HasAuth(cfg *schemas.Config, g *schemas.EventGroup) bool {
	a := g.Spec.Auth
	return a.SecretFile != "" || a.SecretRef != "" || len(a.Keys) > 0 || slices.ContainsFunc(cfg.EventPeersOf(g.Metadata.Name), peerHasAuth)
}

// peerHasAuth reports whether the peer has secrets of its own.
func peerHasAuth(p *schemas.EventPeer) bool {
	a := p.Spec.Auth
	return a != nil && (a.SecretFile != "" || len(a.Keys) > 0)
}

func resolve(baseDir, p string) string {
	if p == "" || filepath.IsAbs(p) || baseDir == "" {
		return p
	}
	return filepath.Join(baseDir, p)
}

// readKeys reads a secretFile, a secretRef and a key list, in that order (the last one
// is the newest).
func readKeys(baseDir, where, secretFile, secretRef string, keys []schemas.AuthKey) ([]Key, error) {
	var out []Key
	if secretFile != "" {
		b, err := ReadSecretFile(resolve(baseDir, secretFile))
		if err != nil {
			return nil, fmt.Errorf("transport: %s.secretFile: %w", where, err)
		}
		out = append(out, Key{Secret: b})
	}
	if secretRef != "" {
		scheme, rest, _ := strings.Cut(secretRef, ":")
		var (
			b   []byte
			err error
		)
		switch scheme {
		case "file":
			b, err = ReadSecretFile(resolve(baseDir, rest))
		case "env":
			v := strings.TrimSpace(os.Getenv(rest))
			switch {
			case v == "":
				err = fmt.Errorf("environment variable %s is empty or unset", rest)
			case len(v) < MinSecretBytes:
				err = fmt.Errorf("environment variable %s: secret shorter than %d bytes", rest, MinSecretBytes)
			}
			b = []byte(v)
		default:
			err = errors.New("want env:NAME or file:PATH")
		}
		if err != nil {
			return nil, fmt.Errorf("transport: %s.secretRef: %w", where, err)
		}
		out = append(out, Key{Secret: b})
	}
	for i, k := range keys {
		if k.ID == "" {
			return nil, fmt.Errorf("transport: %s.keys[%d]: id is empty", where, i)
		}
		b, err := ReadSecretFile(resolve(baseDir, k.SecretFile))
		if err != nil {
			return nil, fmt.Errorf("transport: %s.keys[%d] (%s): %w", where, i, k.ID, err)
		}
		out = append(out, Key{ID: k.ID, Secret: b})
	}
	return out, nil
}
