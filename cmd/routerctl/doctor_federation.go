package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/remediation"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/schemas"
)

func init() { addDoctorArea(federationDoctorArea) }

// Checks of the federation area beyond federation/health's.
const (
	checkPeerReachable = "peer-reachable"
	checkPeerKeyID     = "peer-key-id"
	checkClockSkew     = "clock-skew"
	checkGroupConfig   = "group-config"
)

// Clock skew thresholds: a skew of the replay window makes the peer reject every push
// (stale_timestamp); warn well before.
const (
	defaultPeerTimeout = 3 * time.Second
	clockSkewWarn      = 30 * time.Second
)

var federationDoctorArea = doctorArea{
	name:  "federation",
	short: "Check federation: peers, key ids, clock skew, deliveries, TTLs, subscription runs",
	long: `doctor federation reads the config dir and the node's store (--state-dir; never
created) and asks every peer with an endpoint for its GET /v1/status (--peer-timeout
each). Checks, per EventGroup:

  group-config                   the group's transport config loads (secrets readable)
  peer-reachable                 the peer answers /v1/status with a status document of
                                 the same group (remediation: check-peer-connectivity)
  peer-key-id                    the key id this node signs with is one the peer accepts
  clock-skew                     the peer's clock (its status time) is within 30s of ours
                                 (warn) and within the group's replay window (fail: the
                                 peer rejects our pushes as stale_timestamp)
  store                          the store file could be read
  failed-deliveries              ... the federation/health checks (docs/federation-health.md),
  pending-deliveries             each warn or fail with its remediation action
  stale-ttl
  delivery-lag
  expected-delivery-no-endpoint
  expected-delivery
  subscription-runs`,
	flags: func(cmd *cobra.Command) {
		cmd.Flags().Duration("peer-timeout", defaultPeerTimeout, "how long to wait for each peer's /v1/status")
	},
	run: runFederationDoctor,
}

func runFederationDoctor(ctx context.Context, cmd *cobra.Command) ([]doctorCheck, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, usagef("%v", err)
	}
	timeout, _ := cmd.Flags().GetDuration("peer-timeout")
	if timeout <= 0 {
		return nil, usagef("--peer-timeout %s: want a positive duration such as 3s", timeout)
	}
	cfg, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		return []doctorCheck{{Area: "federation", Name: checkGroupConfig, Status: checkFail,
			Summary: "the resource documents in " + s.ConfigDir + " do not load; no federation check ran",
			Details: []string{err.Error(), "See routerctl doctor config."}}}, nil
	}
	var checks []doctorCheck
	for _, g := range cfg.EventGroups() {
		checks = append(checks, peerChecks(ctx, cfg, g, s.ConfigDir, timeout)...)
	}
	in := health.Input{Config: cfg, Now: time.Now()}
	in.Store, in.StoreErr = health.OpenStore(s.StorePath())
	if in.Store != nil {
		defer in.Store.Close()
	}
	for _, f := range health.Run(ctx, in) {
		checks = append(checks, findingCheck(f))
	}
	return checks, nil
}

// findingCheck turns a federation/health finding into a doctor check, with the
// remediation action of a warn or fail.
func findingCheck(f health.Finding) doctorCheck {
	c := doctorCheck{Area: "federation", Name: f.Check, Status: f.Severity, Summary: f.Summary,
		Group: f.Group, Peer: f.Peer, Resource: f.Resource}
	if f.Detail != "" {
		c.Details = []string{f.Detail}
	}
	if f.Severity != health.SeverityOK {
		c.Remediation = remediation.ActionFor(f.Check)
	}
	return c
}

// peerChecks probes every peer of group g that has an endpoint: reachable, key id,
// clock skew. A group whose transport config does not load is one group-config failure.
func peerChecks(ctx context.Context, cfg *schemas.Config, g *schemas.EventGroup, configDir string, timeout time.Duration) []doctorCheck {
	name := g.Metadata.Name
	// Reading a secret that is not a regular file (a FIFO) could block: doctor config
	// names it; the transport config is not loaded.
	for _, f := range configSecretFiles(cfg, configDir, name) {
		if fi, err := os.Stat(f.path); err == nil && !fi.Mode().IsRegular() {
			return []doctorCheck{{Area: "federation", Name: checkGroupConfig, Status: checkFail, Group: name, Resource: "EventGroup/" + name,
				Summary: "the transport config of group " + name + " does not load: routerd-eventd cannot run it",
				Details: []string{f.where + ": " + f.path + " is not a regular file.", "See routerctl doctor config (secrets)."}}}
		}
	}
	gc, err := transport.FromSchemas(cfg, name, configDir)
	if err != nil {
		return []doctorCheck{{Area: "federation", Name: checkGroupConfig, Status: checkFail, Group: name, Resource: "EventGroup/" + name,
			Summary: "the transport config of group " + name + " does not load: routerd-eventd cannot run it",
			Details: []string{err.Error(), "See routerctl doctor config (secrets)."}}}
	}
	client, err := transport.NewHTTPClient(gc.TLS, timeout)
	if err != nil {
		return []doctorCheck{{Area: "federation", Name: checkGroupConfig, Status: checkFail, Group: name, Resource: "EventGroup/" + name,
			Summary: "the TLS config of group " + name + " does not load", Details: []string{err.Error()}}}
	}
	out := []doctorCheck{{Area: "federation", Name: checkGroupConfig, Status: checkOK, Group: name, Resource: "EventGroup/" + name,
		Summary: fmt.Sprintf("group %s: transport config loads (%s to push to)", name, configPlural(len(gc.Peers), "peer"))}}
	window := gc.ReplayWindow
	if window <= 0 {
		window = 5 * time.Minute
	}
	// Probe the peers concurrently: each under its own timeout.
	results := make([][]doctorCheck, len(gc.Peers))
	done := make(chan struct{})
	for i := range gc.Peers {
		go func(i int) {
			defer func() { done <- struct{}{} }()
			results[i] = probePeer(ctx, client, name, gc.Peers[i], window, timeout)
		}(i)
	}
	for range gc.Peers {
		<-done
	}
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// probePeer asks one peer for its status and checks it.
func probePeer(ctx context.Context, client *http.Client, group string, p transport.Peer, window, timeout time.Duration) []doctorCheck {
	base := doctorCheck{Area: "federation", Group: group, Peer: p.Name, Resource: "EventPeer/" + p.Name}
	with := func(name, status, summary string, details ...string) doctorCheck {
		c := base
		c.Name, c.Status, c.Summary, c.Details = name, status, summary, details
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &transport.Client{Endpoint: p.Endpoint, HTTP: client}
	sent := time.Now()
	st, err := c.Status(ctx)
	got := time.Now()
	if err != nil {
		cause := err.Error()
		var pe *transport.PushError
		switch {
		case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
			cause = fmt.Sprintf("no answer within %s (--peer-timeout): %v", timeout, err)
		case errors.As(err, &pe) && pe.Status == 0 && pe.Err != nil:
			cause = pe.Err.Error()
		case errors.As(err, &pe) && pe.Status != 0 && pe.Err != nil:
			cause = fmt.Sprintf("it answered %d, but not with a status document: %v", pe.Status, pe.Err)
		case errors.As(err, &pe) && pe.Status != 0:
			cause = fmt.Sprintf("it answered %d instead of a status document", pe.Status)
		}
		f := with(checkPeerReachable, checkFail, fmt.Sprintf("peer %s does not answer GET %s%s", p.Name, p.Endpoint, transport.PathStatus),
			"Cause: "+cause+".",
			"Is the peer's routerd-eventd running for group "+group+" and "+p.Endpoint+" reachable from this node (address, port, firewall, TLS)?")
		f.Remediation = remediation.CheckPeerConnectivity
		return []doctorCheck{f}
	}
	if st.Protocol != transport.ProtocolV1 || (st.Group != "" && st.Group != group) {
		f := with(checkPeerReachable, checkFail, fmt.Sprintf("peer %s answers, but not as a receiver of group %s", p.Name, group),
			fmt.Sprintf("Its status says protocol %q, group %q, node %q: spec.endpoint of EventPeer %s points at another service or group.", st.Protocol, st.Group, st.Node, p.Name))
		f.Remediation = remediation.CheckPeerConnectivity
		return []doctorCheck{f}
	}
	reach := with(checkPeerReachable, checkOK, fmt.Sprintf("peer %s answers (%s)", p.Name, got.Sub(sent).Round(time.Millisecond)))
	if st.Node != "" && p.NodeName != "" && st.Node != p.NodeName {
		reach.Status = checkWarn
		reach.Summary = fmt.Sprintf("peer %s answers as node %s, not %s", p.Name, st.Node, p.NodeName)
		reach.Details = []string{"Events it pushes carry sourceNode " + st.Node + ", which this node refuses as spoofed: fix spec.nodeName of EventPeer " + p.Name + " or of the peer's EventGroup."}
	}
	out := []doctorCheck{reach}

	// Key ids: a receiver that lists its ids refuses any other id (unknown_key).
	switch {
	case st.Time == "":
		out = append(out, with(checkPeerKeyID, checkOK, "peer "+p.Name+" does not list its key ids (a v1 receiver); not checked"))
	case p.Key.ID == "":
		out = append(out, with(checkPeerKeyID, checkOK, "this node signs for "+p.Name+" without a key id (v1 form); the peer tries every key"))
	case slices.Contains(st.KeyIDs, p.Key.ID):
		out = append(out, with(checkPeerKeyID, checkOK, fmt.Sprintf("peer %s accepts key id %s", p.Name, p.Key.ID)))
	default:
		have := "none"
		if len(st.KeyIDs) > 0 {
			have = strings.Join(st.KeyIDs, ", ")
		}
		out = append(out, with(checkPeerKeyID, checkFail, fmt.Sprintf("peer %s does not accept key id %s: every push is refused (unknown_key)", p.Name, p.Key.ID),
			"The peer accepts key ids: "+have+". Give both nodes the same spec.auth.keys (id and secret), newest last."))
	}

	// Clock skew: the peer's time against the midpoint of the request.
	if st.Time == "" {
		return append(out, with(checkClockSkew, checkOK, "peer "+p.Name+" does not report its time (a v1 receiver); not checked"))
	}
	pt, err := time.Parse(time.RFC3339Nano, st.Time)
	if err != nil {
		return append(out, with(checkClockSkew, checkWarn, "peer "+p.Name+" reports a time that does not parse", fmt.Sprintf("status time %q: %v", st.Time, err)))
	}
	mid := sent.Add(got.Sub(sent) / 2)
	skew := pt.Sub(mid)
	rtt := got.Sub(sent).Round(time.Millisecond)
	detail := fmt.Sprintf("Peer clock %s, ours %s (±%s round trip).", pt.UTC().Format(time.RFC3339), mid.UTC().Format(time.RFC3339), rtt)
	switch a := skew.Abs(); {
	case a >= window:
		out = append(out, with(checkClockSkew, checkFail, fmt.Sprintf("peer %s's clock is off by more than the replay window (%s): it rejects our pushes as stale_timestamp", p.Name, window),
			detail, "Synchronise both clocks (NTP/chrony)."))
	case a >= clockSkewWarn:
		out = append(out, with(checkClockSkew, checkWarn, fmt.Sprintf("peer %s's clock is off by more than %s", p.Name, clockSkewWarn),
			detail, fmt.Sprintf("At the replay window (%s) the peer rejects every push; synchronise both clocks (NTP/chrony).", window)))
	default:
		out = append(out, with(checkClockSkew, checkOK, fmt.Sprintf("peer %s's clock is within %s of ours", p.Name, clockSkewWarn), detail))
	}
	return out
}
