package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/cmd/internal/democonfig"
	"routerd.net/routerd/cmd/internal/telemetry"
	"routerd.net/routerd/dataplane/fake"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/federation/transport/jetstream"
	"routerd.net/routerd/federation/transport/transporttest"
	"routerd.net/routerd/host/wasmbuild"
	"routerd.net/routerd/schemas"
)

// maxLabelValues is the most distinct values one label of one metric may take in the
// scrape test (the demo has 1 group, 2 peers, 1 plugin; reasons and kinds are enums).
const maxLabelValues = 20

// buildEventd builds cmd/routerd-eventd into a temporary directory.
func buildEventd(t *testing.T) string {
	t.Helper()
	root, err := wasmbuild.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "routerd-eventd")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/routerd-eventd")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build routerd-eventd: %v\n%s", err, msg)
	}
	return out
}

// scrape GETs url and parses the exposition.
func scrape(t *testing.T, c *http.Client, u string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", u, resp.Status, b)
	}
	fams, err := telemetry.ParseText(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	return fams
}

// seriesValue sums the counter/gauge series of name whose labels include want.
func seriesValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

// TestMetricsScrapeEveryEndpoint runs router-b as a daemon supervising real
// routerd-eventd children (group lab on hmac-push; group fleet on nats-jetstream with the
// embedded server), and router-a's transport in-process, sends real traffic both ways
// (router-c is down: retries) and through the stream, causes a plugin error and dataplane
// drift, then scrapes every endpoint over HTTP on 127.0.0.1: routerd's /metrics (with its
// children's families re-exposed), the lab child's own /metrics on its receiver listener
// and router-a's. It fails when a label carries an unbounded value, when one of COMPAT's
// 14 transport metrics, a routerd_eventd_jetstream_* metric of the fleet group (or its
// connected = 1), or a plugin, subscription, dynamic-config or dataplane metric is
// missing, and when the Grafana dashboard references a metric no endpoint exports.
func TestMetricsScrapeEveryEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds routerd-eventd")
	}
	bin := buildEventd(t)
	ctx := context.Background()
	metrics, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Shutdown(context.Background()) })
	routerdAddr, err := metrics.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsPorts, err := democonfig.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	natsStore := t.TempDir()
	d, s := testRouterWith(t, true, func(o *Options) {
		o.EventdBinary, o.Metrics = bin, metrics
		o.EventdStdout, o.EventdStderr = io.Discard, io.Discard
		// A second group on router-b uses NATS JetStream with the embedded server, so
		// routerd also supervises a nats-jetstream child and re-exposes its
		// routerd_eventd_jetstream_* families.
		writeNATSGroup(t, o.Settings.ConfigDir, natsGroup, natsPorts[0], natsStore)
	})

	// router-b's config names router-a's and router-c's ports; router-a gets the same.
	cfgB, err := schemas.LoadDir(s.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	gcB, err := transport.FromSchemas(cfgB, "lab", s.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	portOf := map[string]int{}
	for _, p := range gcB.Peers {
		u, _ := url.Parse(p.Endpoint)
		portOf[p.NodeName], _ = strconv.Atoi(u.Port())
	}
	_, portB, _ := strings.Cut(gcB.ListenAddress, ":")
	portOf["router-b"], _ = strconv.Atoi(portB)
	dirA := t.TempDir()
	confA := filepath.Join(dirA, "conf.d")
	cfgA, err := democonfig.Prepare(filepath.Join("..", "..", "..", "testdata", "demo", "router-a"), confA, portOf, strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	gcA, err := transport.FromSchemas(cfgA, "lab", confA)
	if err != nil {
		t.Fatal(err)
	}
	stA, err := store.Open(filepath.Join(dirA, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stA.Close() })
	metricsA, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metricsA.Shutdown(context.Background()) })
	addrA, err := metricsA.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ta, err := transport.NewDaemon(gcA, stA, transport.DaemonOptions{
		Logger: slog.New(slog.DiscardHandler), MeterProvider: metricsA.Provider(), PollInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ta.Close() })

	// router-b observes an address in the NATS group: its child publishes it into the
	// stream and reads it back as its own message.
	natsEv := event.New(natsGroup, "routerd.client.ipv4.observed", "router-b", "10.88.70.1",
		map[string]string{"address": "10.88.70.1", "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := d.store.InsertEvents(ctx, []event.Event{natsEv}); err != nil {
		t.Fatal(err)
	}

	// router-a observes an address: it travels to router-b's child, the subscription and
	// plugin turn it into a claim, the dataplane routes it.
	ev := event.New("lab", "routerd.client.ipv4.observed", "router-a", "10.88.60.9",
		map[string]string{"address": "10.88.60.9", "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := stA.InsertEvents(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rec, err := d.WaitReconcile(rctx, 0, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "10.88.60.9/32") })
	if err != nil {
		t.Fatalf("router-a's event never became a route on router-b: %v", err)
	}
	// router-b observes one itself: its child pushes it to router-a (and retries router-c).
	own := event.New("lab", "routerd.client.ipv4.observed", "router-b", "10.88.60.10",
		map[string]string{"address": "10.88.60.10", "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := d.store.InsertEvents(ctx, []event.Event{own}); err != nil {
		t.Fatal(err)
	}
	// A plugin call that fails (a hook the plugin does not export).
	if _, err := d.host.Call(ctx, "event-to-remote-claim", abi.Hook("no_such_hook"), []byte("{}")); err == nil {
		t.Fatal("call of an unknown hook succeeded")
	}
	// Someone deletes the claim's route: the next reconciliation repairs the drift.
	be := d.backend.(*fake.Backend)
	for _, o := range d.reconciler.LastApplied().Objects() {
		if strings.Contains(o.Key(), "10.88.60.9/32") {
			be.Delete(o.Key())
		}
	}
	d.kickReconcile()
	if _, err := d.WaitReconcile(rctx, rec.Seq, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "+ route 10.88.60.9/32") }); err != nil {
		t.Fatalf("drift not repaired: %v", err)
	}

	httpc := &http.Client{Timeout: 10 * time.Second}
	natsPeer := jetstream.PeerName(schemas.DefaultStreamName(natsGroup))
	transporttest.WaitUntil(t, 20*time.Second, "routerd's /metrics to show the NATS child connected, its publish delivered and read back", func() bool {
		fams := scrape(t, httpc, "http://"+routerdAddr+"/metrics")
		conn, _ := seriesValue(fams, jetstream.MetricPrefix+"connected", map[string]string{"group": natsGroup})
		del, _ := seriesValue(fams, "routerd_eventd_outbox_delivery_total", map[string]string{"group": natsGroup, "peer": natsPeer, "status": "delivered"})
		own, _ := seriesValue(fams, jetstream.MetricPrefix+"own_ignored_total", map[string]string{"group": natsGroup})
		_, pending := seriesValue(fams, jetstream.MetricPrefix+"consumer_pending", map[string]string{"group": natsGroup})
		return conn == 1 && del >= 1 && own >= 1 && pending
	})
	var routerd map[string]*dto.MetricFamily
	transporttest.WaitUntil(t, 20*time.Second, "routerd's /metrics to show the child's delivery to router-a and router-b's accepted event", func() bool {
		routerd = scrape(t, httpc, "http://"+routerdAddr+"/metrics")
		del, _ := seriesValue(routerd, "routerd_eventd_outbox_delivery_total", map[string]string{"group": "lab", "peer": "router-a", "status": "delivered"})
		acc, _ := seriesValue(routerd, "routerd_eventd_receiver_accepted_total", map[string]string{"group": "lab"})
		drift, _ := seriesValue(routerd, "routerd_dataplane_drift_repaired_total", nil)
		return del >= 1 && acc >= 1 && drift >= 1
	})
	child := scrape(t, httpc, "http://"+gcB.ListenAddress+"/metrics")
	routerA := scrape(t, httpc, "http://"+addrA+"/metrics")

	endpoints := []struct {
		name string
		fams map[string]*dto.MetricFamily
	}{
		{name: "routerd (router-b, child re-exposed)", fams: routerd},
		{name: "routerd-eventd child (router-b receiver listener)", fams: child},
		{name: "routerd-eventd (router-a)", fams: routerA},
	}
	exported := map[string]bool{}
	for _, ep := range endpoints {
		for _, p := range telemetry.UnboundedLabels(ep.fams, maxLabelValues) {
			t.Errorf("%s: unbounded label: %s", ep.name, p)
		}
		for name, f := range ep.fams {
			exported[name] = true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					exported[name+suffix] = true
				}
			}
		}
	}

	want := []string{
		// COMPAT's 14, from the supervised child through routerd.
		"routerd_eventd_outbox_delivery_total", "routerd_eventd_outbox_delivery_attempts_total",
		"routerd_eventd_outbox_repush_total", "routerd_eventd_outbox_stale_ttl_delivery_total",
		"routerd_eventd_outbox_delivery_lag_seconds", "routerd_eventd_receiver_reject_total",
		"routerd_eventd_receiver_accepted_total", "routerd_eventd_receiver_duplicate_total",
		"routerd_eventd_outbox_tick_total", "routerd_eventd_outbox_tick_errors_total",
		"routerd_eventd_outbox_tick_duration_seconds", "routerd_eventd_pruner_tick_total",
		"routerd_eventd_pruner_pruned_total", "routerd_eventd_pruner_tick_errors_total",
		// Plugins.
		"routerd_plugin_calls_total", "routerd_plugin_errors_total", "routerd_plugin_call_duration_seconds",
		"routerd_plugin_warm_instances", "routerd_plugin_hostcall_denied_total", "routerd_plugin_breaker_state",
		// Subscriptions.
		"routerd_subscription_batches_total", "routerd_subscription_lag_seconds", "routerd_subscription_pending_events",
		// Dynamic config.
		"routerd_dynamic_parts_applied_total", "routerd_dynamic_parts_rejected_total", "routerd_dynamic_parts_withdrawn_total",
		// Dataplane.
		"routerd_dataplane_reconcile_total", "routerd_dataplane_drift_repaired_total", "routerd_dataplane_changes_total",
		"routerd_dataplane_reconcile_duration_seconds",
	}
	for _, name := range want {
		if routerd[name] == nil {
			t.Errorf("routerd's /metrics lacks %s", name)
		}
	}
	for _, name := range want[:14] {
		if child[name] == nil {
			t.Errorf("the child's own /metrics lacks %s", name)
		}
	}
	if v, _ := seriesValue(routerd, "routerd_plugin_errors_total", map[string]string{"plugin": "event-to-remote-claim", "kind": "no_hook"}); v != 1 {
		t.Errorf("routerd_plugin_errors_total{kind=no_hook} = %v, want 1", v)
	}
	// The nats-jetstream child's broker metrics, re-exposed by routerd.
	for _, name := range []string{
		"connected", "consumer_pending", "reconnects_total", "disconnects_total", "redeliveries_total",
		"terminated_total", "own_ignored_total", "publish_errors_total",
	} {
		if _, ok := seriesValue(routerd, jetstream.MetricPrefix+name, map[string]string{"group": natsGroup}); !ok {
			t.Errorf("routerd's /metrics lacks %s%s{group=%q}", jetstream.MetricPrefix, name, natsGroup)
		}
	}
	if v, _ := seriesValue(routerd, jetstream.MetricPrefix+"connected", map[string]string{"group": natsGroup}); v != 1 {
		t.Errorf("%sconnected{group=%q} = %v, want 1", jetstream.MetricPrefix, natsGroup, v)
	}
	// Per reason, each series exported from the start.
	for _, r := range []string{jetstream.RedeliveryStoreError, jetstream.RedeliveryRedelivered} {
		if _, ok := seriesValue(routerd, jetstream.MetricPrefix+"redeliveries_total", map[string]string{"group": natsGroup, "reason": r}); !ok {
			t.Errorf("routerd's /metrics lacks %sredeliveries_total{reason=%q}", jetstream.MetricPrefix, r)
		}
	}
	for _, r := range []string{jetstream.PublishTimeout, jetstream.PublishNoResponders, jetstream.PublishMaxPayload, jetstream.PublishDisconnected, jetstream.PublishOther} {
		if _, ok := seriesValue(routerd, jetstream.MetricPrefix+"publish_errors_total", map[string]string{"group": natsGroup, "reason": r}); !ok {
			t.Errorf("routerd's /metrics lacks %spublish_errors_total{reason=%q}", jetstream.MetricPrefix, r)
		}
	}

	// The dashboard references only exported metric names.
	root, err := wasmbuild.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	refs, err := dashboardMetrics(filepath.Join(root, "docs", "grafana", "routerd.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) < 20 {
		t.Fatalf("dashboard references only %d metrics: %v", len(refs), refs)
	}
	for _, name := range refs {
		if !exported[name] {
			t.Errorf("docs/grafana/routerd.json references %s, which no endpoint exports", name)
		}
	}
}

// natsGroup is the nats-jetstream EventGroup the scrape test adds to router-b.
const natsGroup = "fleet"

// writeNATSGroup writes into confDir an EventGroup group for router-b on NATS JetStream,
// run by the embedded server on 127.0.0.1:port with its files in storeDir, and the
// group's secret (required: every message is signed).
func writeNATSGroup(t *testing.T, confDir, group string, port int, storeDir string) {
	t.Helper()
	secret := filepath.Join("secrets", group+".key")
	if err := os.WriteFile(filepath.Join(confDir, secret), []byte(strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata:
  name: ` + group + `
spec:
  nodeName: router-b
  auth:
    secretFile: ` + secret + `
  delivery:
    retryBase: 50ms
    retryMax: 2s
  transport:
    type: nats-jetstream
    embedded:
      listen: 127.0.0.1:` + strconv.Itoa(port) + `
      storeDir: ` + storeDir + `
`
	if err := os.WriteFile(filepath.Join(confDir, group+".yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// metricName matches a routerd metric name inside a PromQL expression.
var metricName = regexp.MustCompile(`\brouterd_[a-z0-9_]+`)

// dashboardMetrics returns the metric names the expressions (targets[].expr, templating
// queries) of a Grafana dashboard JSON reference, sorted.
func dashboardMetrics(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			if key == "expr" || key == "query" || key == "definition" {
				for _, m := range metricName.FindAllString(x, -1) {
					seen[m] = true
				}
			}
		}
	}
	walk(doc, "")
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}
