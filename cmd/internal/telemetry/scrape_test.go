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

// TestAddChildrenReexposes: two "children" (groups lab and corp) serve on Unix sockets,
// the "parent" re-exposes their families with the prefix, merged by name into one valid
// exposition, and drops the others; a dead socket leaves the rest served.
func TestAddChildrenReexposes(t *testing.T) {
	ctx := context.Background()
	var sockets []string
	for _, group := range []string{"lab", "corp"} {
		child, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer child.Shutdown(ctx)
		sock := filepath.Join(t.TempDir(), group+".metrics.sock")
		if err := child.ServeUnix(sock); err != nil {
			t.Fatal(err)
		}
		sockets = append(sockets, sock)
		m := child.Provider().Meter("child")
		g := metric.WithAttributes(attribute.String("group", group))
		kept, _ := m.Int64Counter("routerd_eventd_outbox_tick_total")
		kept.Add(ctx, 4, g)
		lag, _ := m.Float64Histogram("routerd_eventd_outbox_delivery_lag_seconds", metric.WithUnit("s"))
		lag.Record(ctx, 0.02, g)
		dropped, _ := m.Int64Counter("routerd_store_events_inserted_total")
		dropped.Add(ctx, 1)
	}
	sockets = append(sockets, filepath.Join(t.TempDir(), "gone.sock"))

	parent, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Shutdown(ctx)
	own, _ := parent.Provider().Meter("parent").Int64Counter("routerd_dynamic_parts_applied_total")
	own.Add(ctx, 2)
	parent.AddChildren(Children{Prefix: "routerd_eventd_", Sockets: func() []string { return sockets }})
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
	fams, err := ParseText(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parent's exposition does not parse: %v\n%s", err, text)
	}
	for _, want := range []string{`routerd_eventd_outbox_tick_total{group="lab"} 4`, `routerd_eventd_outbox_tick_total{group="corp"} 4`,
		`routerd_eventd_outbox_delivery_lag_seconds_count{group="corp"} 1`, "routerd_dynamic_parts_applied_total 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("parent /metrics lacks %q:\n%s", want, text)
		}
	}
	if n := len(fams["routerd_eventd_outbox_tick_total"].GetMetric()); n != 2 {
		t.Errorf("routerd_eventd_outbox_tick_total has %d series, want 2 (one per child)", n)
	}
	if n := strings.Count(text, "# TYPE routerd_eventd_outbox_tick_total "); n != 1 {
		t.Errorf("%d TYPE lines for routerd_eventd_outbox_tick_total, want 1", n)
	}
	if strings.Contains(text, "routerd_store_events_inserted_total") {
		t.Errorf("parent re-exposed a child family outside the prefix:\n%s", text)
	}
	// A child's socket answers on its own too.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sockets[0])
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
