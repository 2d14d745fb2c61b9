package transport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"routerd.net/routerd/federation/transport/transporttest"
)

// The 14 transport metrics of COMPAT.md.
var compatMetrics = []string{
	"routerd_eventd_outbox_delivery_total",
	"routerd_eventd_outbox_delivery_attempts_total",
	"routerd_eventd_outbox_repush_total",
	"routerd_eventd_outbox_stale_ttl_delivery_total",
	"routerd_eventd_outbox_delivery_lag_seconds",
	"routerd_eventd_receiver_reject_total",
	"routerd_eventd_receiver_accepted_total",
	"routerd_eventd_receiver_duplicate_total",
	"routerd_eventd_outbox_tick_total",
	"routerd_eventd_outbox_tick_errors_total",
	"routerd_eventd_outbox_tick_duration_seconds",
	"routerd_eventd_pruner_tick_total",
	"routerd_eventd_pruner_pruned_total",
	"routerd_eventd_pruner_tick_errors_total",
}

func TestMetricsExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	metricsSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metricsSrv.Close)

	addrs := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	cfgs := meshConfigs(t, []string{"a", "b"}, addrs)
	b := startNode(t, "b", openStore(t, "b"), cfgs["b"])
	ast := openStore(t, "a")
	d, err := NewDaemon(cfgs["a"], ast, DaemonOptions{MeterProvider: mp, PollInterval: 5 * time.Millisecond, PruneInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	a := &testNode{name: "a", st: ast, d: d}
	a.emit(t, 5)
	transporttest.WaitUntil(t, 10*time.Second, "delivery to b", func() bool { return countEvents(t, b.st) == 5 })
	// b pushes one event to a, and a rejects one bad request.
	(&testNode{name: "b", st: b.st, d: b.d}).emit(t, 1)
	resp, err := http.Post("http://"+d.Addr()+PathEvents, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var text string
	transporttest.WaitUntil(t, 10*time.Second, "all 14 metrics", func() bool {
		resp, err := http.Get(metricsSrv.URL)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(body)
		for _, m := range compatMetrics {
			if !strings.Contains(text, "\n"+m+"{") && !strings.Contains(text, "\n"+m+"_bucket{") {
				return false
			}
		}
		return true
	})
	for _, want := range []string{
		`routerd_eventd_receiver_reject_total{group="lab",reason="bad_timestamp"} 1`,
		`routerd_eventd_receiver_accepted_total{event_type="routerd.client.ipv4.observed",group="lab"} 1`,
		`routerd_eventd_outbox_delivery_total{group="lab",peer="peer-b",status="delivered"} 5`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Only the allowed attribute names appear.
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "routerd_eventd_") {
			continue
		}
		if i := strings.IndexByte(line, '{'); i >= 0 {
			for _, kv := range strings.Split(line[i+1:strings.IndexByte(line, '}')], ",") {
				switch k, _, _ := strings.Cut(kv, "="); k {
				case "group", "peer", "event_type", "status", "reason", "le":
				default:
					t.Errorf("metric line has attribute %q: %s", k, line)
				}
			}
		}
	}
}
