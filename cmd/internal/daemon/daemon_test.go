package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/cmd/internal/democonfig"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/wasmbuild"
)

// testRouter starts router-b of the demo config as a daemon without a transport child.
func testRouter(t *testing.T, watch bool) (*Daemon, settings.Settings) {
	t.Helper()
	return testRouterWith(t, true, func(o *Options) { o.WatchConfig = watch })
}

// testRouterPlugin is testRouter, with or without the plugin module in the plugin dir.
func testRouterPlugin(t *testing.T, watch, withPlugin bool) (*Daemon, settings.Settings) {
	t.Helper()
	return testRouterWith(t, withPlugin, func(o *Options) { o.WatchConfig = watch })
}

// testRouterWith starts router-b with the plugin (or not) and options changed by mod.
func testRouterWith(t *testing.T, withPlugin bool, mod func(*Options)) (*Daemon, settings.Settings) {
	t.Helper()
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if withPlugin {
		b, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/event-to-remote-claim"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pluginDir, "event-to-remote-claim.wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ports, err := democonfig.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf.d")
	portOf := map[string]int{"router-a": ports[0], "router-b": ports[1], "router-c": ports[2]}
	if _, err := democonfig.Prepare(filepath.Join("..", "..", "..", "testdata", "demo", "router-b"), conf, portOf, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	s := settings.Settings{StateDir: filepath.Join(dir, "state"), PluginDir: pluginDir, ConfigDir: conf,
		ControlSocket: filepath.Join(dir, "run", "routerd.sock"), LogLevel: "info", LogFormat: "text"}
	var logs bytes.Buffer
	opts := Options{Settings: s, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil)),
		CacheDir: filepath.Join(os.TempDir(), "routerd-test-wasm-cache")}
	mod(&opts)
	d, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return d, s
}

// lockedWriter serialises writes of concurrent loggers into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// apiClient talks HTTP to the control socket.
func apiClient(socket string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

func call(t *testing.T, c *http.Client, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://routerd"+path, rd)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// claimOf returns the dynamic part on d produced from event id.
func claimOf(ctx context.Context, d *Daemon, id string) (dynamic.Part, bool, error) {
	parts, err := d.Parts(ctx)
	if err != nil {
		return dynamic.Part{}, false, err
	}
	for _, p := range parts {
		if p.Kind == "RemoteAddressClaim" && len(p.EventIDs) > 0 && p.EventIDs[0] == id {
			return p, true, nil
		}
	}
	return dynamic.Part{}, false, nil
}

// waitSubscriptions waits until cond holds of d's subscriptions, woken by the engine's
// status changes (no polling).
func waitSubscriptions(t *testing.T, d *Daemon, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		changed := d.engine.StatusChanged()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDaemonEventToClaim runs the whole pipeline inside one daemon: an event written to
// the store by another process (as routerd-eventd does) reaches the subscription, the
// plugin proposes a claim, the claim is stored and reconciled, and the control API shows
// it all; withdrawing it removes the route again.
func TestDaemonEventToClaim(t *testing.T) {
	d, s := testRouter(t, false)
	ctx := context.Background()

	// Another handle on the same file stands in for routerd-eventd.
	other, err := store.Open(s.StorePath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ev := event.New("lab", "routerd.client.ipv4.observed", "router-a", "10.88.60.9",
		map[string]string{"address": "10.88.60.9", "domain": "lab"}, 30*time.Minute, time.Now())
	own := event.New("lab", "routerd.client.ipv4.observed", "router-b", "10.88.60.10",
		map[string]string{"address": "10.88.60.10", "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := other.InsertEvents(ctx, []event.Event{own, ev}); err != nil {
		t.Fatal(err)
	}
	// The claim is stored before the reconcile it causes: wait for that reconcile.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	rec, err := d.WaitReconcile(rctx, 0, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "10.88.60.9/32") })
	if err != nil {
		t.Fatalf("no reconcile with the claim route: %v; reconciles %+v", err, d.Reconciles())
	}
	if !strings.Contains(rec.Diff.String(), "+ route 10.88.60.9/32 via 10.255.1.2 dev wg-hybrid") {
		t.Fatalf("diff:\n%s", rec.Diff)
	}
	part, ok, err := claimOf(ctx, d, ev.ID)
	if err != nil || !ok || part.Name != "onprem-10-88-60-9" || part.Source != "EventSubscription/remote-claims" {
		t.Fatalf("part %+v, found %v, %v", part, ok, err)
	}

	waitSubscriptions(t, d, "the subscription to record its batch", func() bool {
		st := d.engine.Status()
		return len(st) == 1 && st[0].State == subscribe.StateIdle && st[0].Cursor == 2
	})
	c := apiClient(s.ControlSocket)
	var st Status
	call(t, c, "GET", "/v1/status", nil, 200, &st)
	if st.Node != "router-b" || st.DynamicParts != 1 || len(st.Subscriptions) != 1 || st.LastReconcile == nil {
		t.Fatalf("status %+v", st)
	}
	var plugins []host.PluginStatus
	call(t, c, "GET", "/v1/plugins", nil, 200, &plugins)
	if len(plugins) != 1 || plugins[0].Name != "event-to-remote-claim" || plugins[0].State != host.StateReady {
		t.Fatalf("plugins %+v", plugins)
	}
	var subs []subscribe.Status
	call(t, c, "GET", "/v1/subscriptions", nil, 200, &subs)
	if len(subs) != 1 || subs[0].Name != "remote-claims" || subs[0].Cursor != 2 || subs[0].Batches != 1 || subs[0].LastError != "" {
		t.Fatalf("subscriptions %+v", subs)
	}
	var runs []subscribe.RunRow
	call(t, c, "GET", "/v1/subscriptions/remote-claims/runs", nil, 200, &runs)
	if len(runs) != 1 || runs[0].State != "succeeded" || runs[0].Events != 1 {
		t.Fatalf("runs %+v", runs)
	}
	var parts []dynamic.Part
	call(t, c, "GET", "/v1/dynamic", nil, 200, &parts)
	if len(parts) != 1 || parts[0].EventIDs[0] != ev.ID {
		t.Fatalf("dynamic %+v", parts)
	}
	call(t, c, "GET", "/v1/dynamic/RemoteAddressClaim/onprem-10-88-60-9", nil, 200, &parts)
	call(t, c, "GET", "/v1/dynamic/RemoteAddressClaim/nope", nil, 404, nil)
	call(t, c, "GET", "/v1/nope", nil, 404, nil)
	call(t, c, "POST", "/v1/dynamic/withdraw", map[string]string{"bogus": "x"}, 400, nil)
	seq := d.Reconciles()[len(d.Reconciles())-1].Seq
	call(t, c, "POST", "/v1/dynamic/withdraw", WithdrawRequest{Kind: "RemoteAddressClaim", Name: "onprem-10-88-60-9", Actor: "test"}, 200, &parts)
	if len(parts) != 1 {
		t.Fatalf("withdrew %+v", parts)
	}
	if _, err := d.WaitReconcile(rctx, seq, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "- route 10.88.60.9/32") }); err != nil {
		t.Fatalf("withdrawn claim's route not removed: %+v", d.Reconciles())
	}
	resp, err := c.Get("http://routerd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"routerd_subscription_batches_total", "routerd_dynamic_parts_applied_total", "routerd_dynamic_parts_withdrawn_total"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// TestDaemonReload: a valid change (file watch) applies; an invalid one is refused with
// its problems and the running configuration stays.
func TestDaemonReload(t *testing.T) {
	d, s := testRouter(t, true)
	c := apiClient(s.ControlSocket)
	var st0 Status
	call(t, c, "GET", "/v1/status", nil, 200, &st0)
	extra := `apiVersion: federation.routerd.net/v1alpha1
kind: EventSubscription
metadata:
  name: more-claims
spec:
  groupRef: lab
  match:
    types: [routerd.client.ipv4.observed]
  trigger:
    pluginRef: event-to-remote-claim
`
	if err := os.WriteFile(filepath.Join(s.ConfigDir, "extra.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if n, err := d.WaitReload(ctx, 0); err != nil || n != 1 || len(d.engine.Status()) != 2 {
		t.Fatalf("after the watched file changed: %d reloads, %v, %d subscriptions; want 1 reload, 2 subscriptions", n, err, len(d.engine.Status()))
	}
	var st1 Status
	call(t, c, "GET", "/v1/status", nil, 200, &st1)
	if len(st0.ConfigDigest) != 64 || st1.ConfigDigest == st0.ConfigDigest {
		t.Fatalf("config digest %q before and %q after an applied change: want a sha256 that changes", st0.ConfigDigest, st1.ConfigDigest)
	}

	bad := strings.Replace(extra, "more-claims", "broken", 1) + "  bogusField: 1\n"
	if err := os.WriteFile(filepath.Join(s.ConfigDir, "zz-bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	var apiErr apiError
	call(t, c, "POST", "/v1/reload", nil, 422, &apiErr)
	if len(apiErr.Problems) == 0 || !strings.Contains(strings.Join(apiErr.Problems, "\n"), "bogusField") {
		t.Fatalf("reload problems %+v", apiErr)
	}
	var st Status
	call(t, c, "GET", "/v1/status", nil, 200, &st)
	if len(st.Subscriptions) != 2 || st.LastReloadErr == "" || st.ConfigDigest != st1.ConfigDigest {
		t.Fatalf("after a refused reload (digest must stay %s): %+v", st1.ConfigDigest, st)
	}
	if err := os.Remove(filepath.Join(s.ConfigDir, "zz-bad.yaml")); err != nil {
		t.Fatal(err)
	}
	var fixed Status
	call(t, c, "POST", "/v1/reload", nil, 200, &fixed)
	if fixed.LastReloadErr != "" || len(fixed.Subscriptions) != 2 || fixed.ConfigDigest != st1.ConfigDigest {
		t.Fatalf("reload after the fix: %+v", fixed)
	}
}

func TestControlSocketInUse(t *testing.T) {
	d, s := testRouter(t, false)
	_, err := serveControl(d, s.ControlSocket)
	if err == nil || !strings.Contains(err.Error(), "another routerd is listening") {
		t.Fatalf("second listener on the socket: %v", err)
	}
}

// TestSubscriptionRecoversWhenPluginArrives is the "subscription" qualification
// scenario: the plugin is missing, so the batch fails and is retried with backoff (state
// and error visible); once the module is dropped into the watched plugin dir, the retry
// succeeds and the claim appears.
func TestSubscriptionRecoversWhenPluginArrives(t *testing.T) {
	d, s := testRouterPlugin(t, false, false)
	wasm := filepath.Join(s.PluginDir, "event-to-remote-claim.wasm")
	data, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/event-to-remote-claim"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ev := event.New("lab", "routerd.client.ipv4.observed", "router-c", "10.88.7.7",
		map[string]string{"address": "10.88.7.7", "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := d.Emit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	var st subscribe.Status
	waitSubscriptions(t, d, "the subscription to retry", func() bool {
		st = d.engine.Status()[0]
		return st.State == subscribe.StateRetrying && st.Failures >= 1
	})
	if st.LastError == "" || st.Pending != 1 || st.NextRetryAt == nil {
		t.Fatalf("failing subscription status %+v", st)
	}
	if err := os.WriteFile(wasm+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(wasm+".tmp", wasm); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := d.WaitReconcile(rctx, 0, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "10.88.7.7/32") }); err != nil {
		t.Fatalf("no reconcile with the claim after recovery: %v", err)
	}
	if _, ok, err := claimOf(ctx, d, ev.ID); !ok || err != nil {
		t.Fatalf("claim after recovery: found %v, %v", ok, err)
	}
	// The claim is stored before the runner records its success; wait for that too.
	waitSubscriptions(t, d, "the subscription to be idle again", func() bool {
		st = d.engine.Status()[0]
		return st.State == subscribe.StateIdle
	})
	if st.LastError != "" || st.Batches != 1 || st.Pending != 0 || st.Cursor != 1 {
		t.Fatalf("recovered subscription status %+v", st)
	}
	runs, err := subscribe.StoreAdapter{Store: d.store}.Runs(ctx, "remote-claims", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 2 || runs[0].State != "succeeded" || runs[len(runs)-1].State != "failed" || runs[0].BatchID != runs[len(runs)-1].BatchID {
		t.Fatalf("runs %+v", runs)
	}
}

// TestDaemonNetlinkInNamespace runs router-b with the kernel dataplane inside a network
// namespace the test creates: the claim produced from an event becomes a real route, and
// withdrawing the claim removes it.
func TestDaemonNetlinkInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create a network namespace (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test: needs iproute2's ip")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "rdh7" + hex.EncodeToString(b)
	ipCmd := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ipCmd("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", ns, err, out)
		}
	})
	ipCmd("-n", ns, "link", "set", "lo", "up")
	// The overlay tunnel is a veth pair here (no WireGuard or dummy module needed).
	ipCmd("-n", ns, "link", "add", "wg-hybrid", "type", "veth", "peer", "name", "wg-peer")
	ipCmd("-n", ns, "link", "set", "wg-hybrid", "up")
	ipCmd("-n", ns, "link", "set", "wg-peer", "up")

	d, _ := testRouterWith(t, true, func(o *Options) {
		o.Dataplane, o.NetNS, o.ReconcileInterval = DataplaneNetlink, ns, 100*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := event.New("lab", "routerd.client.ipv4.observed", "router-a", "10.88.60.9",
		map[string]string{"address": "10.88.60.9", "domain": "lab"}, 30*time.Minute, time.Now())
	if _, err := d.Emit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	rec, err := d.WaitReconcile(ctx, 0, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "10.88.60.9/32") })
	if err != nil {
		t.Fatalf("no reconcile with the claim: %v; %+v", err, d.Reconciles())
	}
	if rec.Error != "" || rec.DryRun {
		t.Fatalf("reconcile %+v", rec)
	}
	if out := ipCmd("-n", ns, "route", "show", "10.88.60.9/32"); !strings.Contains(out, "via 10.255.1.2 dev wg-hybrid") {
		t.Fatalf("route in the namespace: %q", out)
	}
	if out := ipCmd("-n", ns, "addr", "show", "dev", "wg-hybrid"); !strings.Contains(out, "10.255.1.1/30") {
		t.Fatalf("overlay address in the namespace: %q", out)
	}
	// Drift: someone deletes the route; the periodic reconcile puts it back.
	ipCmd("-n", ns, "route", "del", "10.88.60.9/32")
	rec, err = d.WaitReconcile(ctx, rec.Seq, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "+ route 10.88.60.9/32") })
	if err != nil {
		t.Fatalf("the deleted route was not repaired: %v; %+v", err, d.Reconciles())
	}
	if out := ipCmd("-n", ns, "route", "show", "10.88.60.9/32"); !strings.Contains(out, "dev wg-hybrid") {
		t.Fatalf("repaired route in the namespace: %q", out)
	}
	if _, err := d.dyn.Withdraw(ctx, "", "RemoteAddressClaim", "onprem-10-88-60-9", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitReconcile(ctx, rec.Seq, func(r ReconcileRecord) bool { return strings.Contains(r.Diff.String(), "- route 10.88.60.9/32") }); err != nil {
		t.Fatalf("withdrawal not reconciled: %v", err)
	}
	if out := ipCmd("-n", ns, "route", "show", "10.88.60.9/32"); strings.TrimSpace(out) != "" {
		t.Fatalf("route still present after withdrawal: %q", out)
	}
}

// TestNoTransportForGroupWithoutAuth: a group without a secret loads (with a warning) but
// gets no routerd-eventd child — the child would refuse it, and the supervisor would
// restart it forever.
func TestNoTransportForGroupWithoutAuth(t *testing.T) {
	d, _ := testRouterWith(t, false, func(o *Options) {
		o.EventdBinary = "/bin/sh"
		o.EventdArgs = func(group string) []string { return []string{"-c", "echo ready; exec sleep 60", "eventd-" + group} }
		extra := "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: noauth}\nspec: {nodeName: router-b}\n"
		if err := os.WriteFile(filepath.Join(o.Settings.ConfigDir, "noauth.yaml"), []byte(extra), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	var groups []string
	for _, c := range d.Status(context.Background()).Eventd {
		groups = append(groups, c.Group)
	}
	if strings.Join(groups, ",") != "lab" {
		t.Fatalf("eventd children for groups %v, want only lab (noauth has no secret)", groups)
	}
}
