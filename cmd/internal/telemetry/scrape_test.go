package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// TestAddGathererReexposesChild: a "child" serves on a Unix socket, the "parent" re-exposes
// the child's families with the prefix and drops the others; a dead socket leaves the
// parent's own series served.
func TestAddGathererReexposesChild(t *testing.T) {
	ctx := context.Background()
	child, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer child.Shutdown(ctx)
	sock := filepath.Join(t.TempDir(), "child.metrics.sock")
	if err := child.ServeUnix(sock); err != nil {
		t.Fatal(err)
	}
	m := child.Provider().Meter("child")
	kept, _ := m.Int64Counter("routerd_eventd_outbox_tick_total")
	kept.Add(ctx, 4, metric.WithAttributes(attribute.String("group", "lab")))
	dropped, _ := m.Int64Counter("routerd_store_events_inserted_total")
	dropped.Add(ctx, 1)

	parent, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Shutdown(ctx)
	own, _ := parent.Provider().Meter("parent").Int64Counter("routerd_dynamic_parts_applied_total")
	own.Add(ctx, 2)
	sockets := []string{sock, filepath.Join(t.TempDir(), "gone.sock")}
	parent.AddGatherer(SocketGatherer{Prefix: "routerd_eventd_", Sockets: func() []string { return sockets }})
	addr, err := parent.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{`routerd_eventd_outbox_tick_total{group="lab"} 4`, "routerd_dynamic_parts_applied_total 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("parent /metrics lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "routerd_store_events_inserted_total") {
		t.Errorf("parent re-exposed a child family outside the prefix:\n%s", text)
	}
	// The child's socket answers on its own too.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err = c.Get("http://child/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("child socket: %s", resp.Status)
	}
}
