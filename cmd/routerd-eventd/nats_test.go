package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeNATSConfig writes a conf.d for n in a nats-jetstream group: with embedded set, n
// runs the nats-server on natsAddr (files in the default <state-dir>/nats/lab);
// otherwise it connects to it.
func writeNATSConfig(t *testing.T, n *node, natsAddr string, embedded bool) {
	t.Helper()
	conf := filepath.Join(n.dir, "conf.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "lab.secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	transport := fmt.Sprintf("    servers: [nats://%s]\n", natsAddr)
	if embedded {
		transport = fmt.Sprintf("    embedded: {listen: %q}\n", natsAddr)
	}
	doc := fmt.Sprintf(`apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata:
  name: lab
spec:
  nodeName: %s
  auth:
    secretFile: lab.secret
  delivery:
    retryBase: 20ms
    retryMax: 200ms
  transport:
    type: nats-jetstream
%s`, n.name, transport)
	if err := os.WriteFile(filepath.Join(conf, "federation.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNATSEmbedded runs two routerd-eventd processes in a nats-jetstream group: a runs
// the embedded nats-server, b connects to it; events flow both ways.
func TestNATSEmbedded(t *testing.T) {
	natsAddr := freePort(t)
	a := &node{name: "a", dir: t.TempDir()}
	b := &node{name: "b", dir: t.TempDir()}
	writeNATSConfig(t, a, natsAddr, true)
	writeNATSConfig(t, b, natsAddr, false)
	a.start(t)
	b.start(t)
	if !strings.Contains(a.log.String(), "transport=nats-jetstream") || !strings.Contains(a.log.String(), "jetstream:ROUTERD_LAB") {
		t.Errorf("ready line does not name the transport and its pseudo-peer:\n%s", a.log.String())
	}
	if _, err := os.Stat(filepath.Join(a.dir, "state", "nats", "lab", "jetstream")); err != nil {
		t.Errorf("embedded server files not in <state-dir>/nats/lab: %v", err)
	}
	sa, sb := openStore(t, a.storePath()), openStore(t, b.storePath())
	emit(t, sa, "a", 0, 20)
	emit(t, sb, "b", 0, 7)
	waitFor(t, 30*time.Second, "a's events at b", func() bool { return count(t, sb, "a") == 20 })
	waitFor(t, 30*time.Second, "b's events at a", func() bool { return count(t, sa, "b") == 7 })
}
