package schemas

import (
	"os"
	"strings"
	"testing"
)

// TestEventTransport checks spec.transport: defaults per type and one error per bad
// field, naming the field and the fix.
func TestEventTransport(t *testing.T) {
	tests := []struct {
		name      string
		transport string // YAML lines under spec.transport (indented four spaces)
		wantPath  string // "" : valid
		wantMsg   string
	}{
		{name: "default is hmac-push", transport: ""},
		{name: "nats with servers", transport: "    type: nats-jetstream\n    servers: [nats://127.0.0.1:4222, tls://nats.example:4443, 10.0.0.1:4222]\n"},
		{name: "nats embedded only", transport: "    type: nats-jetstream\n    embedded: {}\n"},
		{name: "unknown type", transport: "    type: kafka\n", wantPath: "spec.transport.type", wantMsg: `want one of hmac-push, nats-jetstream, got "kafka"`},
		{name: "nats without servers", transport: "    type: nats-jetstream\n", wantPath: "spec.transport.servers", wantMsg: "needs servers"},
		{name: "bad server url", transport: "    type: nats-jetstream\n    servers: [http://x:1]\n", wantPath: "spec.transport.servers[0]", wantMsg: "is not a NATS server URL"},
		{name: "bad stream", transport: "    type: nats-jetstream\n    servers: [nats://a:1]\n    stream: a.b\n", wantPath: "spec.transport.stream", wantMsg: "want a JetStream stream name"},
		{name: "wildcard prefix", transport: "    type: nats-jetstream\n    servers: [nats://a:1]\n    subjectPrefix: 'routerd.*'\n", wantPath: "spec.transport.subjectPrefix", wantMsg: "dot-separated tokens"},
		{name: "bad embedded listen", transport: "    type: nats-jetstream\n    embedded: {listen: 'localhost:x'}\n", wantPath: "spec.transport.embedded.listen", wantMsg: "is not host:port"},
		{name: "nats fields on push", transport: "    servers: [nats://a:1]\n", wantPath: "spec.transport.servers", wantMsg: "only used with type nats-jetstream: set type: nats-jetstream or remove servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := groupDoc
			if tt.transport != "" {
				doc += "  transport:\n" + tt.transport
			}
			ps := problemsOf(t, LoadOptions{}, doc)
			if tt.wantPath == "" {
				if len(ps) != 0 {
					t.Fatalf("problems: %v", ps)
				}
				return
			}
			if len(ps) != 1 || ps[0].Path != tt.wantPath || !strings.Contains(ps[0].Message, tt.wantMsg) {
				t.Fatalf("problems = %v, want one at %s containing %q", ps, tt.wantPath, tt.wantMsg)
			}
		})
	}
}

func TestEventTransportDefaults(t *testing.T) {
	g := &EventGroup{Metadata: ObjectMeta{Name: "lab.site-1"}}
	g.SetDefaults()
	if g.Spec.Transport.Type != TransportHMACPush || g.Spec.Transport.Stream != "" {
		t.Fatalf("push defaults: %+v", g.Spec.Transport)
	}
	g = &EventGroup{Metadata: ObjectMeta{Name: "lab.site-1"}, Spec: EventGroupSpec{Transport: EventTransport{Type: TransportNATSJetStream, Embedded: &EmbeddedNATS{}}}}
	g.SetDefaults()
	tr := g.Spec.Transport
	if tr.Stream != "ROUTERD_LAB_SITE-1" || tr.SubjectPrefix != "routerd" || tr.Embedded.Listen != "127.0.0.1:4222" {
		t.Fatalf("nats defaults: %+v %+v", tr, tr.Embedded)
	}
}

// TestTransportDocExample decodes the nats-jetstream EventGroup of docs/transport.md.
func TestTransportDocExample(t *testing.T) {
	md, err := os.ReadFile("../docs/transport.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "## NATS JetStream transport")
	if !ok {
		t.Fatal(`docs/transport.md has no "## NATS JetStream transport" section`)
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no yaml block in the NATS JetStream section")
	}
	cfg, err := Decode("transport.md", []byte(block))
	if err != nil {
		t.Fatalf("docs/transport.md example: %v", err)
	}
	g := cfg.EventGroups()[0]
	if g.Spec.Transport.Type != TransportNATSJetStream || len(g.Spec.Transport.Servers) != 2 {
		t.Errorf("transport = %+v", g.Spec.Transport)
	}
}
