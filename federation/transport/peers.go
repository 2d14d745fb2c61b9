package transport

import (
	"fmt"
	"slices"
	"strings"

	"routerd.net/routerd/schemas"
)

// GroupPeer is one peer of an event group as the configuration declares it: an EventPeer
// of the group (spec.groupRef), or an entry of the EventGroup's spec.peersFrom. It is the
// one reading of spec.peersFrom: the transport pushes and accepts by it (FromSchemas) and
// doctor checks deliveries against it (federation/health).
type GroupPeer struct {
	// Name is the EventPeer's name, else the name part of the peersFrom resource.
	Name string
	// Resource is the config resource behind the peer (Kind/name).
	Resource string
	// EventPeer is the EventPeer that stands for the peer (nil: none, so nothing can be
	// pushed to it). A peersFrom entry EventPeer/x brings in x even when its groupRef is
	// another group; an entry OverlayPeer/x is stood for by the group's EventPeer named
	// x or whose nodeName is the OverlayPeer's spec.remote.nodeID.
	EventPeer *schemas.EventPeer
	// NodeName is the peer's node name: the EventPeer's, else the OverlayPeer's
	// spec.remote.nodeID ("" when unknown).
	NodeName string
	// PeersFrom is the spec.peersFrom resource that declares the peer ("" when none),
	// Index its position in spec.peersFrom and Optional its optional flag.
	PeersFrom string
	Index     int
	Optional  bool
	// ResourceMissing is set when the peersFrom resource is not in the config.
	ResourceMissing bool
}

// GroupPeers resolves the peers of group g: its EventPeers, then each spec.peersFrom
// entry in order (an entry matching a peer already listed marks it; one naming the same
// peer twice is dropped), in that order. Missing resources are returned with
// ResourceMissing set; FromSchemas refuses the non-optional ones.
func GroupPeers(cfg *schemas.Config, g *schemas.EventGroup) []GroupPeer {
	var out []GroupPeer
	for _, p := range cfg.EventPeersOf(g.Metadata.Name) {
		out = append(out, GroupPeer{Name: p.Metadata.Name, Resource: "EventPeer/" + p.Metadata.Name, EventPeer: p, NodeName: p.Spec.NodeName})
	}
	for i, pf := range g.Spec.PeersFrom {
		kind, name, _ := strings.Cut(pf.Resource, "/")
		obj := cfg.Get(kind, name)
		var nodeID string
		switch o := obj.(type) {
		case *schemas.OverlayPeer:
			nodeID = o.Spec.Remote.NodeID
		case *schemas.EventPeer:
			nodeID = o.Spec.NodeName
		}
		// The peer already listed that stands for the declared one: the same name, or
		// the same node.
		k := slices.IndexFunc(out, func(p GroupPeer) bool {
			return p.EventPeer != nil && (p.Name == name || (nodeID != "" && p.NodeName == nodeID))
		})
		if k >= 0 {
			if out[k].PeersFrom == "" {
				out[k].PeersFrom, out[k].Index, out[k].Optional = pf.Resource, i, pf.Optional
			}
			continue
		}
		if slices.ContainsFunc(out, func(p GroupPeer) bool { return p.Name == name }) {
			continue // declared twice
		}
		gp := GroupPeer{Name: name, Resource: pf.Resource, NodeName: nodeID,
			PeersFrom: pf.Resource, Index: i, Optional: pf.Optional, ResourceMissing: obj == nil}
		if ep, ok := obj.(*schemas.EventPeer); ok {
			gp.EventPeer = ep // an EventPeer of another group joins this one
		}
		out = append(out, gp)
	}
	return out
}

// MissingPeersFromError is a non-optional spec.peersFrom entry whose resource is not in
// the config: the group's transport does not start until it is added or marked optional.
type MissingPeersFromError struct {
	Group    string
	Index    int
	Resource string
}

// Error implements error.
func (e *MissingPeersFromError) Error() string {
	return fmt.Sprintf("transport: EventGroup %s spec.peersFrom[%d]: %s is not in the config: add the resource, or set optional: true on the entry", e.Group, e.Index, e.Resource)
}
