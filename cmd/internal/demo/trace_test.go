package demo

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/host/wasmbuild"
)

// otlpSpan is one span the receiver got.
type otlpSpan struct {
	service, name           string
	trace, id, parent       string
	links                   []string // linked span ids
	node, eventType, plugin string
}

// otlpReceiver is an OTLP/HTTP trace receiver on 127.0.0.1: it decodes every export
// (protobuf) and signals each arrival.
type otlpReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	spans   []otlpSpan
	arrived chan struct{}
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
			http.NotFound(w, req)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
		var msg coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &msg)
		}
		if err != nil {
			t.Errorf("otlp receiver: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := otlpSpan{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId),
						id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId)}
					for _, l := range s.Links {
						sp.links = append(sp.links, hex.EncodeToString(l.SpanId))
					}
					for _, a := range s.Attributes {
						switch a.Key {
						case "routerd.node":
							sp.node = a.Value.GetStringValue()
						case "routerd.event_type":
							sp.eventType = a.Value.GetStringValue()
						case "routerd.plugin":
							sp.plugin = a.Value.GetStringValue()
						}
					}
					r.spans = append(r.spans, sp)
				}
			}
		}
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// chain follows the parents of the span with id from back to the root, newest first.
func (r *otlpReceiver) chain(id string) []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	byID := map[string]otlpSpan{}
	for _, s := range r.spans {
		byID[s.id] = s
	}
	var out []otlpSpan
	for id != "" && len(out) < 32 {
		s, ok := byID[id]
		if !ok {
			break
		}
		out = append(out, s)
		if strings.Trim(s.parent, "0") == "" {
			break
		}
		id = s.parent
	}
	return out
}

// find returns the spans matching ok.
func (r *otlpReceiver) find(ok func(otlpSpan) bool) []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []otlpSpan
	for _, s := range r.spans {
		if ok(s) {
			out = append(out, s)
		}
	}
	return out
}

// TestTraceAcrossRouters runs the demo's routers (routerd in this process, each
// routerd-eventd a child process) exporting to an OTLP receiver on 127.0.0.1, emits one
// observation on router-a and checks that router-b's dataplane.apply span descends,
// parent by parent, from router-a's event.emit span: emit (router-a routerd) → deliver
// (router-a eventd, traceparent header) → receive (router-b eventd) → subscription.run
// and dynamic.propose (router-b routerd, from the trace context stored with the event)
// → dataplane.apply; the plugin call is a child of the subscription run.
func TestTraceAcrossRouters(t *testing.T) {
	if testing.Short() {
		t.Skip("builds routerd-eventd and the plugin")
	}
	recv := newOTLPReceiver(t)
	// The children's batch span processors export every 100ms instead of 5s.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	wasm := wasmbuild.ForTest(t, "plugins/event-to-remote-claim")
	pluginDir := t.TempDir()
	data, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, "event-to-remote-claim.wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{PluginDir: pluginDir, ConfigDir: filepath.Join("..", "..", "..", "testdata", "demo"),
		EventdBinary: eventdBinary(t), Out: io.Discard, OTLPEndpoint: recv.srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &demoCluster{root: t.TempDir(), start: time.Now(), out: io.Discard}
	if err := startCluster(ctx, o, c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stopCluster(c); err != nil {
			t.Error(err)
		}
	})
	if err := waitEventd(ctx, c); err != nil {
		t.Fatal(err)
	}
	a, b := c.router("router-a"), c.router("router-b")
	after := int64(0)
	if recs := b.d.Reconciles(); len(recs) > 0 {
		after = recs[len(recs)-1].Seq
	}
	const addr = "10.88.60.77"
	ev := event.New("lab", "routerd.client.ipv4.observed", "router-a", addr,
		map[string]string{"address": addr, "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := a.d.Emit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	// router-b applies the claim.
	if _, err := b.d.WaitReconcile(ctx, after, func(r daemon.ReconcileRecord) bool {
		return strings.Contains(strings.Join(r.Changes, "\n"), addr)
	}); err != nil {
		t.Fatalf("router-b did not apply the claim for %s: %v", addr, err)
	}
	if err := c.tracing.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	want := []string{"dataplane.apply", "dynamic.propose", "subscription.run", "eventd.receive", "eventd.deliver", "event.emit"}
	var got []otlpSpan
	for {
		for _, s := range recv.find(func(s otlpSpan) bool { return s.name == "dataplane.apply" && s.node == "router-b" }) {
			if ch := recv.chain(s.id); len(ch) == len(want) {
				got = ch
			}
		}
		if got != nil {
			break
		}
		select {
		case <-recv.arrived:
			if err := c.tracing.ForceFlush(ctx); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			var names []string
			for _, s := range recv.find(func(otlpSpan) bool { return true }) {
				names = append(names, s.service+"/"+s.name+"("+s.node+") "+s.id+"<-"+s.parent)
			}
			t.Fatalf("no chain %v from router-b's dataplane.apply; spans:\n%s", want, strings.Join(names, "\n"))
		}
	}
	for i, s := range got {
		if s.name != want[i] || s.trace != got[0].trace {
			t.Fatalf("chain[%d] = %s (trace %s), want %s in trace %s", i, s.name, s.trace, want[i], got[0].trace)
		}
	}
	root := got[len(got)-1]
	if root.node != "router-a" || root.eventType != "routerd.client.ipv4.observed" {
		t.Errorf("root span %+v: want router-a's event.emit of the observation", root)
	}
	if got[3].service != "routerd-eventd" || got[4].service != "routerd-eventd" {
		t.Errorf("receive/deliver spans come from %q/%q, want the routerd-eventd processes", got[3].service, got[4].service)
	}
	// The batched spans link the event's context as well.
	if !contains(got[2].links, got[3].id) {
		t.Errorf("subscription.run links %v, want the receive span %s", got[2].links, got[3].id)
	}
	calls := recv.find(func(s otlpSpan) bool { return s.name == "plugin.call" && s.parent == got[2].id })
	if len(calls) != 1 || calls[0].plugin != "event-to-remote-claim" {
		t.Errorf("plugin.call children of the subscription run: %+v", calls)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
