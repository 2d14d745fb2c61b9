package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/schemas"
)

// DefaultQueryTimeout bounds each store query of Gather.
const DefaultQueryTimeout = 5 * time.Second

// Input is what Gather reads.
type Input struct {
	// Config is the node's loaded config (nil: no groups).
	Config *schemas.Config
	// Store is the node's event store, opened by the caller; nil when it could not be
	// opened, and StoreErr then says why.
	Store    *store.Store
	StoreErr error
	// Now is the time the checks are made at.
	Now time.Time
	// QueryTimeout bounds each store query (default DefaultQueryTimeout).
	QueryTimeout time.Duration
}

// State is what the checks and the SLO evaluation look at: per configured group, its
// peers and subscriptions with their figures from the store.
type State struct {
	// Now is the time the state was read at.
	Now time.Time `json:"now"`
	// StoreErr is why the store could not be read at all ("" when it could).
	StoreErr string `json:"storeError,omitempty"`
	// Groups are the configured EventGroups, sorted by name.
	Groups []GroupState `json:"groups"`
}

// GroupState is one EventGroup's part of the State.
type GroupState struct {
	// Name and NodeName (the local node) are the EventGroup's.
	Name     string `json:"name"`
	NodeName string `json:"nodeName"`
	// SLO names the group's FederationSLO ("" when it has none); Thresholds are its
	// objectives, or the defaults.
	SLO        string     `json:"slo,omitempty"`
	Thresholds Thresholds `json:"thresholds"`
	// Peers are the group's EventPeers, the peers its spec.peersFrom declares, and peers
	// that only the store knows (rows left from a removed EventPeer), sorted by name.
	Peers []PeerState `json:"peers"`
	// Subscriptions are the group's EventSubscriptions, sorted by name.
	Subscriptions []SubscriptionState `json:"subscriptions"`
	// Errors maps a check name to why its figures could not be read.
	Errors map[string]string `json:"errors,omitempty"`
}

// PeerState is one peer of a group.
type PeerState struct {
	// Name is the EventPeer name (the peer of the delivery rows), or the name part of a
	// peersFrom resource that no EventPeer of the group stands for.
	Name string `json:"name"`
	// Resource is the config resource behind the peer (Kind/name).
	Resource string `json:"resource"`
	// NodeName and Endpoint are the EventPeer's (Endpoint "": nothing is pushed to it).
	NodeName string `json:"nodeName,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Types and SubjectPrefixes are the EventPeer's filters.
	Types           []string `json:"types,omitempty"`
	SubjectPrefixes []string `json:"subjectPrefixes,omitempty"`
	// Configured is set when an EventPeer stands for the peer (one of the group, or one
	// brought in by spec.peersFrom; see transport.GroupPeers).
	Configured bool `json:"configured"`
	// PeersFrom is the spec.peersFrom resource that declares the peer ("" when none),
	// Optional its optional flag, and ResourceMissing is set when that resource is not in
	// the config.
	PeersFrom       string `json:"peersFrom,omitempty"`
	Optional        bool   `json:"optional,omitempty"`
	ResourceMissing bool   `json:"resourceMissing,omitempty"`
	// Failed, Backlog and Stale are the store's figures for the peer (zero: no rows).
	Failed  store.FailedHealth   `json:"failed"`
	Backlog store.BacklogHealth  `json:"backlog"`
	Stale   store.StaleTTLHealth `json:"stale"`
	// Missing counts local events the peer should have a delivery row for and has not
	// (nil when not looked at: no endpoint and no filter to apply, or no store).
	Missing *store.MissingDeliveries `json:"missing,omitempty"`
}

// SubscriptionState is one EventSubscription of a group with its run figures.
type SubscriptionState struct {
	Name string                      `json:"name"`
	Runs store.SubscriptionRunHealth `json:"runs"`
}

// Gather reads the State: the groups, peers and subscriptions of in.Config, and for each
// the store's figures. It never fails as a whole: a query that fails or times out is
// recorded in the group's Errors under the checks it feeds, and a missing store in
// State.StoreErr.
func Gather(ctx context.Context, in Input) State {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	if in.QueryTimeout <= 0 {
		in.QueryTimeout = DefaultQueryTimeout
	}
	st := State{Now: in.Now, Groups: []GroupState{}}
	if in.Store == nil {
		err := in.StoreErr
		if err == nil {
			err = errors.New("no store was opened")
		}
		st.StoreErr = err.Error()
	}
	if in.Config == nil {
		return st
	}
	var runs []store.SubscriptionRunHealth
	var runsErr error
	if in.Store != nil && len(in.Config.EventSubscriptions()) > 0 {
		runsErr = query(ctx, in.QueryTimeout, func(ctx context.Context) (err error) {
			runs, err = in.Store.SubscriptionRunHealth(ctx)
			return err
		})
	}
	for _, g := range in.Config.EventGroups() {
		gs := configGroup(in.Config, g)
		if in.Store != nil {
			gatherGroup(ctx, in, &gs)
			for i := range gs.Subscriptions {
				s := &gs.Subscriptions[i]
				if runsErr != nil {
					gs.fail(runsErr, CheckSubscriptionRuns)
					continue
				}
				if k := slices.IndexFunc(runs, func(r store.SubscriptionRunHealth) bool { return r.Subscription == s.Name }); k >= 0 {
					s.Runs = runs[k]
				}
			}
		}
		st.Groups = append(st.Groups, gs)
	}
	return st
}

// query runs fn under its own timeout.
func query(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return fn(ctx)
}

// fail records err for the checks it feeds.
func (g *GroupState) fail(err error, checks ...string) {
	if g.Errors == nil {
		g.Errors = map[string]string{}
	}
	for _, c := range checks {
		if _, ok := g.Errors[c]; !ok {
			g.Errors[c] = err.Error()
		}
	}
}

// peer returns the peer named name, or nil.
func (g *GroupState) peer(name string) *PeerState {
	for i := range g.Peers {
		if g.Peers[i].Name == name {
			return &g.Peers[i]
		}
	}
	return nil
}

// configGroup builds a group's State from the config alone: its peers (EventPeers and
// spec.peersFrom) and subscriptions.
func configGroup(cfg *schemas.Config, g *schemas.EventGroup) GroupState {
	slo := SLOOf(cfg, g.Metadata.Name)
	gs := GroupState{Name: g.Metadata.Name, NodeName: g.Spec.NodeName, Thresholds: ThresholdsOf(slo),
		Peers: []PeerState{}, Subscriptions: []SubscriptionState{}}
	if slo != nil {
		gs.SLO = slo.Metadata.Name
	}
	// The peers as the transport reads them (EventPeers and spec.peersFrom).
	for _, p := range transport.GroupPeers(cfg, g) {
		ps := PeerState{Name: p.Name, Resource: p.Resource, NodeName: p.NodeName,
			PeersFrom: p.PeersFrom, Optional: p.Optional, ResourceMissing: p.ResourceMissing}
		if e := p.EventPeer; e != nil {
			ps.Endpoint, ps.Types, ps.SubjectPrefixes, ps.Configured = e.Spec.Endpoint, e.Spec.Types, e.Spec.SubjectPrefixes, true
		}
		gs.Peers = append(gs.Peers, ps)
	}
	if t := g.Spec.Transport; t.Type == schemas.TransportNATSJetStream {
		// The stream is the pseudo-peer the outbox publishes to (docs/transport.md).
		stream, target := t.Stream, strings.Join(t.Servers, ",")
		if stream == "" {
			stream = schemas.DefaultStreamName(gs.Name)
		}
		if target == "" {
			target = "the embedded nats-server"
		}
		gs.Peers = append(gs.Peers, PeerState{Name: transport.JetStreamPeerName(stream), Resource: "EventGroup/" + gs.Name,
			Endpoint: target, Configured: true})
	}
	for _, s := range cfg.EventSubscriptions() {
		if s.Spec.GroupRef == gs.Name {
			gs.Subscriptions = append(gs.Subscriptions, SubscriptionState{Name: s.Metadata.Name})
		}
	}
	sortPeers(gs.Peers)
	return gs
}

func sortPeers(ps []PeerState) {
	slices.SortFunc(ps, func(a, b PeerState) int { return strings.Compare(a.Name, b.Name) })
}

// gatherGroup reads the store's figures of one group.
func gatherGroup(ctx context.Context, in Input, gs *GroupState) {
	now, t := in.Now, gs.Thresholds
	var (
		failed  []store.FailedHealth
		backlog []store.BacklogHealth
		stale   []store.StaleTTLHealth
	)
	if err := query(ctx, in.QueryTimeout, func(ctx context.Context) (err error) {
		failed, err = in.Store.FailedHealth(ctx, gs.Name)
		return err
	}); err != nil {
		gs.fail(fmt.Errorf("read failed deliveries: %w", err), CheckFailedDeliveries)
	}
	if err := query(ctx, in.QueryTimeout, func(ctx context.Context) (err error) {
		backlog, err = in.Store.BacklogHealth(ctx, gs.Name, now.Add(-seconds(t.LagWarnSeconds)))
		return err
	}); err != nil {
		gs.fail(fmt.Errorf("read the outbox backlog: %w", err), CheckPendingDeliveries, CheckDeliveryLag)
	}
	if err := query(ctx, in.QueryTimeout, func(ctx context.Context) (err error) {
		stale, err = in.Store.StaleTTLHealth(ctx, gs.Name, now, seconds(t.ExpiresSoonSeconds))
		return err
	}); err != nil {
		gs.fail(fmt.Errorf("read stale TTL copies: %w", err), CheckStaleTTL)
	}
	// Peers known only from the store (their EventPeer was removed) are reported too.
	known := func(name string) *PeerState {
		if p := gs.peer(name); p != nil {
			return p
		}
		gs.Peers = append(gs.Peers, PeerState{Name: name, Resource: "EventPeer/" + name})
		return &gs.Peers[len(gs.Peers)-1]
	}
	for _, f := range failed {
		known(f.Peer).Failed = f
	}
	for _, b := range backlog {
		known(b.Peer).Backlog = b
	}
	for _, s := range stale {
		known(s.Peer).Stale = s
	}
	sortPeers(gs.Peers)
	maxAge := schemas.DefaultRetentionMaxAge
	if g, ok := in.Config.Get("EventGroup", gs.Name).(*schemas.EventGroup); ok && g.Spec.Retention.MaxAge.Duration > 0 {
		maxAge = g.Spec.Retention.MaxAge.Duration
	}
	// Events without a delivery row, for every configured peer in one scan. A pushing
	// peer is given the sender's grace (lagWarnSeconds) to queue a row; for a peer
	// without an endpoint every matching event counts.
	q := store.MissingDeliveryQuery{Group: gs.Name, SourceNode: gs.NodeName, StoredSince: now.Add(-maxAge), LiveAt: now}
	for _, p := range gs.Peers {
		if !p.Configured {
			continue
		}
		before := now
		if p.Endpoint != "" {
			before = now.Add(-seconds(t.LagWarnSeconds))
		}
		tp := &transport.Peer{Name: p.Name, NodeName: p.NodeName, Types: p.Types, SubjectPrefixes: p.SubjectPrefixes}
		q.Peers = append(q.Peers, store.MissingPeer{Name: p.Name, Match: tp.Matches, StoredBefore: before})
	}
	if len(q.Peers) == 0 {
		return
	}
	var missing map[string]store.MissingDeliveries
	if err := query(ctx, in.QueryTimeout, func(ctx context.Context) (err error) {
		missing, err = in.Store.MissingDeliveries(ctx, q)
		return err
	}); err != nil {
		gs.fail(fmt.Errorf("look for events without a delivery row: %w", err), CheckExpectedDelivery, CheckExpectedDeliveryNoEndpoint)
		return
	}
	for i := range gs.Peers {
		if m, ok := missing[gs.Peers[i].Name]; ok && gs.Peers[i].Configured {
			gs.Peers[i].Missing = &m
		}
	}
}
