package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/democonfig"
	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/cmd/internal/telemetry"
	"routerd.net/routerd/dataplane/netnslab"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

// demoRouters are the routers of the demo, one config directory each.
var demoRouters = []string{"router-a", "router-b", "router-c"}

// Options configure Run.
type Options struct {
	// PluginDir holds event-to-remote-claim.wasm.
	PluginDir string
	// ConfigDir has one config subdirectory per router (router-a, router-b, router-c).
	ConfigDir string
	// EventdBinary is the routerd-eventd executable each router supervises.
	EventdBinary string
	// Timeout bounds the whole demo.
	Timeout time.Duration
	// Keep keeps the temporary directory (state, logs) afterwards.
	Keep bool
	// Address is the observed address (inside the lab domain 10.88.0.0/16).
	Address string
	// Netns is auto (kernel dataplane in network namespaces when root), on, or off ("").
	Netns string
	// Out receives the demo's narration.
	Out io.Writer
	// Cloud adds the provider action steps (make demo-cloud): router-b's claim becomes an
	// AWS action plan, refused while dryRunOnly, approved and executed against a fake EC2.
	Cloud bool
	// OTLPEndpoint, when set, exports the traces of every router (its routerd in this
	// process, its routerd-eventd children) over OTLP/HTTP.
	OTLPEndpoint string
}

// demoRouter is one router of the demo.
type demoRouter struct {
	name    string
	dir     string // temp dir of this router
	port    int    // eventd listen port
	logFile *os.File
	d       *daemon.Daemon
}

// demoCluster is the three running routers.
type demoCluster struct {
	root    string
	routers []*demoRouter
	start   time.Time
	out     io.Writer
	mu      sync.Mutex // serialises printing from the per-router goroutines
	// lab holds the routers' network namespaces when the kernel dataplane is used.
	lab *netnslab.Lab
	// cloud is the fake EC2 of demo --cloud.
	cloud *cloudLab
	// tracing exports this process's spans (nil without Options.OTLPEndpoint).
	tracing *telemetry.Tracing
}

func (c *demoCluster) router(name string) *demoRouter {
	for _, r := range c.routers {
		if r.name == name {
			return r
		}
	}
	return nil
}

// printf prints one timestamped line (and optional indented detail lines).
func (c *demoCluster) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "[%7.3fs] ", time.Since(c.start).Seconds())
	fmt.Fprintf(c.out, format+"\n", args...)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

// startCluster prepares and starts the demo routers.
func startCluster(ctx context.Context, o Options, c *demoCluster) error {
	ports, err := democonfig.FreePorts(len(demoRouters))
	if err != nil {
		return err
	}
	portOf := map[string]int{}
	for i, name := range demoRouters {
		portOf[name] = ports[i]
	}
	sec := make([]byte, 32)
	if _, err := rand.Read(sec); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	secret := hex.EncodeToString(sec)
	pluginDir, err := filepath.Abs(o.PluginDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(pluginDir, "event-to-remote-claim.wasm")); err != nil {
		return fmt.Errorf("plugin dir %s has no event-to-remote-claim.wasm (run make plugins): %w", pluginDir, err)
	}
	// Compiled plugins are cached across runs (wazero keys the cache by module content
	// and wazero version), so only the first demo on a machine pays for compilation.
	cacheDir := filepath.Join(c.root, "wasm-cache")
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "routerd", "demo-wasm")
	}
	if o.Cloud {
		if _, err := os.Stat(filepath.Join(pluginDir, "provider-aws.wasm")); err != nil {
			return fmt.Errorf("plugin dir %s has no provider-aws.wasm (run make plugins): %w", pluginDir, err)
		}
		if c.cloud, err = startCloud(filepath.Join(c.root, cloudRouter, "cloud")); err != nil {
			return fmt.Errorf("fake EC2: %w", err)
		}
	}
	configs := map[string]*schemas.Config{}
	for _, name := range demoRouters {
		r := &demoRouter{name: name, dir: filepath.Join(c.root, name), port: portOf[name]}
		c.routers = append(c.routers, r)
		var edit func(schemas.Object)
		if c.cloud != nil && name == cloudRouter {
			edit = c.cloud.edit
		}
		cfg, err := democonfig.PrepareWith(filepath.Join(o.ConfigDir, name), filepath.Join(r.dir, "conf.d"), portOf, secret, edit)
		if err != nil {
			return err
		}
		if edit != nil {
			if err := c.cloud.writeConfig(filepath.Join(r.dir, "conf.d"), true); err != nil {
				return err
			}
		}
		configs[name] = cfg
	}
	if err := setupLab(ctx, o, c, configs); err != nil {
		return err
	}
	// One tracer provider for the routers of this process (each routerd-eventd child
	// exports its own spans); spans name their router in routerd.node.
	if c.tracing, err = telemetry.StartTracing(o.OTLPEndpoint, "routerd-demo", ""); err != nil {
		return err
	}
	for _, r := range c.routers {
		name := r.name
		confDir := filepath.Join(r.dir, "conf.d")
		dp, netnsName := daemon.DataplaneDryRun, ""
		if c.lab != nil {
			dp, netnsName = daemon.DataplaneNetlink, c.lab.Router(name).NetNS
		}
		r.logFile, err = os.Create(filepath.Join(r.dir, "routerd.log"))
		if err != nil {
			return err
		}
		s := settings.Settings{
			StateDir: filepath.Join(r.dir, "state"), PluginDir: pluginDir, ConfigDir: confDir,
			ControlSocket: filepath.Join(r.dir, "routerd.sock"), LogLevel: "info", LogFormat: "text",
		}
		log := slog.New(slog.NewTextHandler(r.logFile, &slog.HandlerOptions{Level: slog.LevelInfo})).With("router", name)
		t0 := time.Now()
		r.d, err = daemon.New(ctx, daemon.Options{
			Settings: s, Logger: log, Dataplane: dp, NetNS: netnsName, EventdBinary: o.EventdBinary,
			EventdArgs: func(group string) []string {
				a := []string{"--group", group, "--state-dir", s.StateDir, "--config-dir", s.ConfigDir,
					"--plugin-dir", s.PluginDir, "--log-level", "info"}
				if o.OTLPEndpoint != "" {
					a = append(a, "--otlp-endpoint", o.OTLPEndpoint)
				}
				return a
			},
			EventdStdout: r.logFile, EventdStderr: r.logFile, CacheDir: cacheDir, PollInterval: 5 * time.Millisecond,
			ShutdownTimeout: 15 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("start %s: %w (log: %s)", name, err, r.logFile.Name())
		}
		var plugins []string
		for _, p := range r.d.Plugins() {
			plugins = append(plugins, p.Name+" "+p.State)
		}
		sort.Strings(plugins)
		c.printf("started %s in %s: routerd-eventd on 127.0.0.1:%d, plugins [%s]", name, ms(time.Since(t0)), r.port, strings.Join(plugins, ", "))
	}
	return nil
}

// setupLab creates the network namespaces (one per router, one for the on-prem site the
// OverlayPeers point at) when the kernel dataplane is asked for, or available in auto
// mode. In auto mode a lab that cannot be built falls back to the dry run.
func setupLab(ctx context.Context, o Options, c *demoCluster, configs map[string]*schemas.Config) error {
	switch o.Netns {
	case "", "off":
		c.printf("dataplane: dry run (--netns off): planned changes are shown, not applied")
		return nil
	case "auto", "on":
	default:
		return fmt.Errorf("--netns %q: want auto, on or off", o.Netns)
	}
	if err := netnslab.Available(); err != nil {
		if o.Netns == "on" {
			return err
		}
		c.printf("dataplane: dry run (%v)", err)
		return nil
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	lab, err := netnslab.SetupFromConfigs(ctx, netnslab.Options{Prefix: "rdd" + hex.EncodeToString(b) + "-"}, configs)
	if err != nil {
		if o.Netns == "on" {
			return err
		}
		c.printf("dataplane: dry run (network namespaces unavailable: %v)", err)
		return nil
	}
	c.lab = lab
	var names []string
	for _, r := range lab.Routers {
		names = append(names, r.Name+"="+r.NetNS)
	}
	c.printf("dataplane: the kernel, in network namespaces %s", strings.Join(names, " "))
	return nil
}

// waitEventd waits until every router's routerd-eventd answers GET /v1/status.
func waitEventd(ctx context.Context, c *demoCluster) error {
	client := &http.Client{Timeout: time.Second}
	for _, r := range c.routers {
		url := "http://127.0.0.1:" + strconv.Itoa(r.port) + "/v1/status"
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: routerd-eventd did not answer %s: %w (last error: %v)", r.name, url, ctx.Err(), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// stopCluster shuts every router down, in parallel.
func stopCluster(c *demoCluster) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.routers))
	for i, r := range c.routers {
		if r.d == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := r.d.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: shutdown: %w", r.name, err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.tracing.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, r := range c.routers {
		if r.logFile != nil {
			r.logFile.Close()
		}
	}
	if c.lab != nil {
		if err := c.lab.Teardown(); err != nil {
			errs = append(errs, fmt.Errorf("delete network namespaces: %w", err))
		}
	}
	return errors.Join(errs...)
}

// waitFor polls cond every 2ms until it reports true, fails or ctx ends.
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// claimFor returns the dynamic part on r produced from event id ("" when none yet).
func claimFor(ctx context.Context, r *demoRouter, id string) (dynamic.Part, bool, error) {
	parts, err := r.d.Parts(ctx)
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

// Run runs the demo: three routers on 127.0.0.1 (see the routerd demo command), one
// event emitted on router-a followed to claims and dataplane changes on router-b and
// router-c. It returns an error when any step fails or times out (printing "DEMO
// FAILED", the routers' last log lines and where state and logs were kept).
func Run(ctx context.Context, o Options) (err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	root, err := os.MkdirTemp("", "routerd-demo-")
	if err != nil {
		return err
	}
	c := &demoCluster{root: root, start: time.Now(), out: o.Out}
	defer func() {
		started := 0
		for _, r := range c.routers {
			if r.d != nil {
				started++
			}
		}
		if started > 0 {
			c.printf("shutting down the routers (routerd-eventd children get SIGTERM)")
		}
		serr := stopCluster(c)
		if c.cloud != nil {
			c.cloud.stop()
		}
		if serr != nil {
			err = errors.Join(err, serr)
		} else if started > 0 {
			c.printf("all routers stopped cleanly")
		}
		if err != nil {
			fmt.Fprintf(o.Out, "\nDEMO FAILED (the error follows on stderr)\n")
			for _, r := range c.routers {
				tailLog(o.Out, r)
			}
			fmt.Fprintf(o.Out, "state and logs kept in %s\n", root)
			return
		}
		if o.Keep {
			fmt.Fprintf(o.Out, "state and logs kept in %s\n", root)
			return
		}
		os.RemoveAll(root)
	}()

	fmt.Fprintf(o.Out, "routerd demo: three routers on 127.0.0.1, one event group \"lab\"\n")
	fmt.Fprintf(o.Out, "  config %s, plugins %s, work dir %s\n\n", o.ConfigDir, o.PluginDir, root)
	if err := startCluster(ctx, o, c); err != nil {
		return err
	}
	if err := waitEventd(ctx, c); err != nil {
		return err
	}
	c.printf("every routerd-eventd answers GET /v1/status")
	addr, err := netip.ParseAddr(o.Address)
	if err != nil {
		return fmt.Errorf("--address %q: %w", o.Address, err)
	}
	if c.lab != nil {
		// The address lives at the on-prem site: routers that claim it must route to it.
		if err := c.lab.AddAddress("onprem", "lo", netip.PrefixFrom(addr, addr.BitLen())); err != nil {
			return err
		}
	}

	a, b, cc := c.router("router-a"), c.router("router-b"), c.router("router-c")
	payload := map[string]string{"address": o.Address, "domain": "lab", "ownerSide": "onprem", "peerRef": "onprem-main"}
	ev := event.New("lab", "routerd.client.ipv4.observed", "router-a", o.Address, payload, 30*time.Minute, time.Now())
	fmt.Fprintln(o.Out)
	emitted := time.Now()
	res, err := a.d.Emit(ctx, ev)
	if err != nil {
		return fmt.Errorf("step 1: %w", err)
	}
	c.printf("step 1  router-a observed %s: event %s (routerd.client.ipv4.observed) stored, seq %d", o.Address, ev.ID, res.Seq)
	c.printf("        waiting for router-b and router-c ...")

	// router-b and router-c are followed concurrently; each line is printed as it happens.
	var wg sync.WaitGroup
	hops := []*demoRouter{b, cc}
	errs := make([]error, len(hops))
	for i, r := range hops {
		wg.Go(func() { errs[i] = followClaim(ctx, c, r, ev, emitted, o.Address) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, ok, err := claimFor(ctx, a, ev.ID); err != nil || ok {
		return fmt.Errorf("router-a claimed its own address (subscription excludes its own events): %v", err)
	}
	c.printf("router-a made no claim: its subscription excludes events it observed itself")
	if c.cloud != nil {
		fmt.Fprintln(o.Out)
		if err := runCloud(ctx, c, c.cloud, o.Address); err != nil {
			return err
		}
	}
	fmt.Fprintln(o.Out)
	return nil
}

// followClaim waits for router r to receive ev, to claim the address and to plan the
// dataplane change, printing each step with the time since the event was emitted.
func followClaim(ctx context.Context, c *demoCluster, r *demoRouter, ev event.Event, emitted time.Time, address string) error {
	if err := waitFor(ctx, r.name+" to receive "+ev.ID, func() (bool, error) {
		_, err := r.d.Store().GetEvent(ctx, ev.ID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("step 2: %w", err)
	}
	c.printf("step 2  %s received the event from router-a (HMAC-signed push, %s after emit)", r.name, ms(time.Since(emitted)))

	var p dynamic.Part
	if err := waitFor(ctx, r.name+" to claim "+address, func() (bool, error) {
		var ok bool
		var err error
		p, ok, err = claimFor(ctx, r, ev.ID)
		return ok, err
	}); err != nil {
		return fmt.Errorf("step 3: %w", err)
	}
	claim, ok := p.Resource().(*schemas.RemoteAddressClaim)
	if !ok {
		return fmt.Errorf("step 3: %s: part %s holds no RemoteAddressClaim", r.name, p.Key())
	}
	ann := claim.Metadata.Annotations
	delivery := "-"
	if claim.Spec.Delivery != nil {
		delivery = claim.Spec.Delivery.PeerRef + " (" + claim.Spec.Delivery.TunnelInterface + ")"
	}
	c.printf("step 3  %s: plugin event-to-remote-claim proposed RemoteAddressClaim/%s (%s after emit)\n"+
		"           address %s, ownerSide %s, delivery via %s\n"+
		"           stored as DynamicConfigPart %s: source %s, generation %d, expires %s\n"+
		"           annotations %s=%s %s=%s %s=%s",
		r.name, p.Name, ms(time.Since(emitted)), claim.Spec.Address, claim.Spec.OwnerSide, delivery,
		p.Document.Metadata.Name, p.Source, p.Generation, p.ExpiresAt.Format(time.RFC3339),
		dynamic.AnnotationEventGroup, ann[dynamic.AnnotationEventGroup], dynamic.AnnotationEventID, ann[dynamic.AnnotationEventID],
		dynamic.AnnotationEventSubject, ann[dynamic.AnnotationEventSubject])

	rec, err := r.d.WaitReconcile(ctx, 0, func(rr daemon.ReconcileRecord) bool { return strings.Contains(rr.Diff.String(), address) })
	if err != nil {
		return fmt.Errorf("step 4: %s: no dataplane change for %s: %w", r.name, address, err)
	}
	var lines []string
	for _, ch := range rec.Changes {
		if strings.Contains(ch, address) {
			lines = append(lines, "           "+ch)
		}
	}
	if c.lab == nil {
		c.printf("step 4  %s: planned dataplane change (dry run, reconcile #%d, %s after emit):\n%s",
			r.name, rec.Seq, ms(time.Since(emitted)), strings.Join(lines, "\n"))
		return nil
	}
	if rec.Error != "" {
		return fmt.Errorf("step 4: %s: applying to the kernel: %s", r.name, rec.Error)
	}
	excerpt, err := c.lab.Excerpt(ctx, r.name)
	if err != nil {
		return fmt.Errorf("step 4: %w", err)
	}
	c.printf("step 4  %s: applied to the kernel (reconcile #%d, %s after emit):\n%s\n%s", r.name, rec.Seq,
		ms(time.Since(emitted)), strings.Join(lines, "\n"), indent(excerpt, "           | "))
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("ping"); err != nil {
		c.printf("step 5  %s: ping not installed; not probing %s", r.name, address)
		return nil
	}
	if err := c.lab.Ping(ctx, r.name, addr); err != nil {
		return fmt.Errorf("step 5: %w", err)
	}
	c.printf("step 5  %s: ping %s answered by the on-prem site through wg-hybrid", r.name, address)
	return nil
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// tailLog prints the last lines of a router's log.
func tailLog(w io.Writer, r *demoRouter) {
	if r.logFile == nil {
		return
	}
	f, err := os.Open(r.logFile.Name())
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	fmt.Fprintf(w, "--- %s: last lines of %s\n", r.name, r.logFile.Name())
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}
