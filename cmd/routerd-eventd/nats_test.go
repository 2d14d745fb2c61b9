package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/transport/transporttest"
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
// the embedded nats-server, b connects to it; events flow both ways. a's /metrics (on its
// --metrics-socket) carries the broker's routerd_eventd_jetstream_* metrics.
func TestNATSEmbedded(t *testing.T) {
	natsAddr := freePort(t)
	a := &node{name: "a", dir: t.TempDir()}
	b := &node{name: "b", dir: t.TempDir()}
	writeNATSConfig(t, a, natsAddr, true)
	writeNATSConfig(t, b, natsAddr, false)
	sock := filepath.Join(a.dir, "m.sock")
	if err := os.WriteFile(filepath.Join(a.dir, "none.yaml"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.startArgs(t, "--group", "lab", "--config-dir", filepath.Join(a.dir, "conf.d"), "--state-dir", filepath.Join(a.dir, "state"),
		"--log-level", "debug", "--settings", filepath.Join(a.dir, "none.yaml"), "--metrics-socket", sock)
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
	transporttest.WaitUntil(t, 30*time.Second, "a's events at b", func() bool { return count(t, sb, "a") == 20 })
	transporttest.WaitUntil(t, 30*time.Second, "b's events at a", func() bool { return count(t, sa, "b") == 7 })

	// a's own 20 events come back from the stream and are ignored.
	scrape := unixGetter(sock)
	var text string
	transporttest.WaitUntil(t, 20*time.Second, "a's broker metrics", func() bool {
		text = scrape()
		return strings.Contains(text, "\n"+`routerd_eventd_jetstream_connected{group="lab"} 1`) &&
			strings.Contains(text, "\n"+`routerd_eventd_jetstream_own_ignored_total{group="lab"} 20`)
	})
	for _, want := range []string{
		`routerd_eventd_jetstream_consumer_pending{group="lab"} `,
		`routerd_eventd_jetstream_reconnects_total{group="lab"} 0`,
		`routerd_eventd_jetstream_disconnects_total{group="lab"} 0`,
		`routerd_eventd_jetstream_terminated_total{group="lab"} 0`,
		`routerd_eventd_jetstream_redeliveries_total{group="lab",reason="store_error"} 0`,
		`routerd_eventd_jetstream_publish_errors_total{group="lab",reason="timeout"} `,
		`routerd_eventd_outbox_delivery_total{group="lab",peer="jetstream:ROUTERD_LAB",status="delivered"} 20`,
	} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("a's /metrics lacks %q", want)
		}
	}
}

// unixGetter returns a function reading /metrics over the Unix socket path ("" on error).
func unixGetter(path string) func() string {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	return func() string {
		resp, err := c.Get("http://eventd/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
}
