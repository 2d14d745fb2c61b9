package health

import (
	"context"
	"testing"

	"routerd.net/routerd/federation/health/healthtest"
)

// TestJetStreamPseudoPeer: in a nats-jetstream group the stream is a configured peer
// (jetstream:<stream>, resource EventGroup/<group>): local events without a publish row
// are reported against it, naming the servers.
func TestJetStreamPseudoPeer(t *testing.T) {
	const doc = `apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: lab}
spec:
  nodeName: a
  auth: {secretFile: /etc/routerd/lab.secret}
  transport: {type: nats-jetstream, servers: ["nats://127.0.0.1:4222"]}
`
	fs := Run(context.Background(), Input{Config: healthtest.LoadConfig(t, doc), Store: healthtest.FaultyStore(t), Now: healthtest.T})
	var found bool
	for _, f := range fs {
		if f.Check == CheckExpectedDelivery && f.Peer == "jetstream:ROUTERD_LAB" {
			found = true
			if f.Resource != "EventGroup/lab" || f.Severity != SeverityFail || f.Counts["missing"] != 4 {
				t.Errorf("finding = %+v", f)
			}
		}
	}
	if !found {
		t.Fatalf("no expected-delivery finding for the stream:\n%s", lines(fs))
	}
}
