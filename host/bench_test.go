package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/kv"
	"routerd.net/routerd/host/wasmbuild"
)

// The benchmarks print one line per figure, "BENCH <name> <value> <unit>", and do their
// whole measurement in one run (make bench uses -benchtime 1x). Every loop is bounded in
// count and in time.

const (
	benchCalls   = 20000            // measured calls per latency figure
	benchWarmup  = 2000             // calls before measuring
	benchMaxTime = 30 * time.Second // a latency loop stops early after this
)

func bench(name string, value float64, unit string) {
	fmt.Printf("BENCH %s %.2f %s\n", name, value, unit)
}

// observedRequest is the 10-event example batch (testdata/events/observed.json) as a
// PluginRequest, about 3 KB of JSON.
func observedRequest(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile("../testdata/events/observed.json")
	if err != nil {
		tb.Fatal(err)
	}
	var events []abi.Event
	if err := json.Unmarshal(data, &events); err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(abi.Request{
		APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion, BatchID: "bench",
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerEventSubscription, Topic: "bench"},
			Now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Events: events},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// latencies calls f benchWarmup times, then up to benchCalls times (at most
// benchMaxTime), and returns the sorted per-call durations.
func latencies(tb testing.TB, f func() error) []time.Duration {
	tb.Helper()
	for range benchWarmup {
		if err := f(); err != nil {
			tb.Fatal(err)
		}
	}
	d := make([]time.Duration, 0, benchCalls)
	deadline := time.Now().Add(benchMaxTime)
	for i := 0; i < benchCalls && time.Now().Before(deadline); i++ {
		start := time.Now()
		err := f()
		d = append(d, time.Since(start))
		if err != nil {
			tb.Fatal(err)
		}
	}
	slices.Sort(d)
	return d
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// benchHost loads the given plugin sources (name → source dir) into a host with a warm
// compilation cache.
func benchHost(tb testing.TB, plugins map[string]string) *Host {
	tb.Helper()
	dir := tb.TempDir()
	for name, src := range plugins {
		writeFile(tb, dir, name+".wasm", pluginBytes(tb, src))
	}
	h := newHost(tb, Options{})
	if err := h.LoadDir(context.Background(), dir); err != nil {
		tb.Fatal(err)
	}
	return h
}

// BenchmarkPluginABIRoundtrip measures the host's own per-call overhead: a warm call of
// the echo plugin with 3 KB in and 3 KB out (output JSON-checked), p50.
func BenchmarkPluginABIRoundtrip(b *testing.B) {
	h := benchHost(b, map[string]string{"echo": echoDir})
	in := []byte(`{"pad":"` + strings.Repeat("x", 3000) + `"}`)
	ctx := context.Background()
	for range b.N {
		d := latencies(b, func() error {
			out, err := h.Call(ctx, "echo", abi.HookOnEvents, in)
			if err == nil && len(out) != len(in) {
				err = fmt.Errorf("echo returned %d bytes, want %d", len(out), len(in))
			}
			return err
		})
		bench("plugin_abi_roundtrip_us", us(percentile(d, 0.50)), "us")
		bench("plugin_abi_roundtrip_p99_us", us(percentile(d, 0.99)), "us")
	}
}

// BenchmarkPluginCall measures a warm on_events call of event-to-remote-claim with the
// 10-event batch (~3 KB), and the same work done by the native subprocess plugin over
// stdin/stdout in the same run.
func BenchmarkPluginCall(b *testing.B) {
	h := benchHost(b, map[string]string{"event-to-remote-claim": "../plugins/event-to-remote-claim"})
	in := observedRequest(b)
	ctx := context.Background()
	var want []byte
	for range b.N {
		d := latencies(b, func() error {
			out, err := h.Call(ctx, "event-to-remote-claim", abi.HookOnEvents, in)
			if err == nil && want == nil {
				want = out
			}
			return err
		})
		p50 := percentile(d, 0.50)
		bench("plugin_call_p50_us", us(p50), "us")
		bench("plugin_call_p99_us", us(percentile(d, 0.99)), "us")

		// The subscription engine's path also decodes and checks the PluginResult.
		di := latencies(b, func() error {
			_, err := h.Invoke(ctx, "event-to-remote-claim", string(abi.HookOnEvents), in)
			return err
		})
		bench("plugin_invoke_p50_us", us(percentile(di, 0.50)), "us")

		// What the subscription path does with the result: decode it after Invoke
		// checked it (two passes), or let InvokeDecode run the decoder as the check.
		decode := func(out []byte) error {
			_, err := abi.DecodeResult(out)
			return err
		}
		dt := latencies(b, func() error {
			out, err := h.Invoke(ctx, "event-to-remote-claim", string(abi.HookOnEvents), in)
			if err == nil {
				err = decode(out)
			}
			return err
		})
		bench("plugin_invoke_then_decode_p50_us", us(percentile(dt, 0.50)), "us")
		dd := latencies(b, func() error {
			return h.InvokeDecode(ctx, "event-to-remote-claim", string(abi.HookOnEvents), in, decode)
		})
		bench("plugin_invoke_decode_once_p50_us", us(percentile(dd, 0.50)), "us")

		sub := subprocessLatencies(b, in)
		bench("plugin_subprocess_call_p50_us", us(percentile(sub, 0.50)), "us")
		bench("plugin_call_speedup_vs_subprocess", float64(percentile(sub, 0.50))/float64(p50), "x")
	}
	if !bytes.Contains(want, []byte("RemoteAddressClaim")) {
		b.Fatalf("plugin output has no claims: %.200s", want)
	}
}

// subprocessLatencies runs the native subprocess-claim plugin (fork/exec, JSON on
// stdin/stdout) 20 times warm-up and up to 300 times measured.
func subprocessLatencies(b *testing.B, in []byte) []time.Duration {
	bin := wasmbuild.NativeForTest(b, "testdata/plugins/subprocess-claim")
	run := func() error {
		cmd := exec.Command(bin)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err == nil && !bytes.Contains(out, []byte("RemoteAddressClaim")) {
			err = fmt.Errorf("subprocess output has no claims: %.200s", out)
		}
		return err
	}
	for range 20 {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
	d := make([]time.Duration, 0, 300)
	deadline := time.Now().Add(benchMaxTime)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		start := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return d
}

// BenchmarkPluginStart measures loading event-to-remote-claim until it is ready to serve
// (compile, instantiate limits.warmInstances instances, manifest): once with an empty
// compilation cache (cold) and then with the cache it left behind, in a new Host (warm,
// like a daemon restart). Each figure is the median of 3 runs.
func BenchmarkPluginStart(b *testing.B) {
	module := pluginBytes(b, "../plugins/event-to-remote-claim")
	dir := b.TempDir()
	path := writeFile(b, dir, "event-to-remote-claim.wasm", module)
	load := func(cache string) time.Duration {
		h, err := New(Options{CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		start := time.Now()
		if err := h.LoadFile(context.Background(), path, Spec{Name: "event-to-remote-claim"}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range b.N {
		var cold, warm []time.Duration
		for range 3 {
			cache := b.TempDir()
			cold = append(cold, load(cache))
			warm = append(warm, load(cache))
		}
		slices.Sort(cold)
		slices.Sort(warm)
		bench("plugin_cold_start_ms", float64(cold[1].Microseconds())/1e3, "ms")
		bench("plugin_warm_start_ms", float64(warm[1].Microseconds())/1e3, "ms")
	}
}

// rssChildEnv makes the test binary act as the RSS measurement child (see TestMain).
const rssChildEnv = "ROUTERD_HOST_RSS_CHILD"

// rssDebugEnv set to any value makes the RSS child print where its memory is to
// stderr (and the benchmark pass it on).
const rssDebugEnv = "ROUTERD_HOST_RSS_DEBUG"

// rssProfileEnv set to a path prefix makes the RSS child record every allocation and
// write its heap profile to <prefix>.<mode> (go tool pprof -sample_index=inuse_space).
const rssProfileEnv = "ROUTERD_HOST_RSS_PROFILE"

// rssPlugins are the 10 distinct modules the RSS child loads.
var rssPlugins = map[string]string{
	"echo":                  echoDir,
	"event-to-remote-claim": "../plugins/event-to-remote-claim",
	"capcheck":              capcheckDir,
	"pdkstyle":              pdkstyleDir,
	"claim-v2":              "testdata/plugins/claim-v2",
	"ungranted":             hostileDir + "/ungranted",
	"badjson":               hostileDir + "/badjson",
	"huge":                  hostileDir + "/huge",
	"loop":                  hostileDir + "/loop",
	"trap":                  hostileDir + "/trap",
}

// BenchmarkPluginRSS measures the resident memory of a separate process (this test
// binary re-executed) that loads 10 plugins with 2 warm instances each and calls each
// once, so the benchmark's own heap does not count.
func BenchmarkPluginRSS(b *testing.B) {
	dir := b.TempDir()
	for name, src := range rssPlugins {
		writeFile(b, dir, name+".wasm", pluginBytes(b, src))
	}
	if err := os.Mkdir(filepath.Join(dir, "one"), 0o755); err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(dir, "one"), "event-to-remote-claim.wasm", pluginBytes(b, "../plugins/event-to-remote-claim"))
	// Warm the compilation cache so the child measures a restart, not compiler garbage.
	h := newHost(b, Options{})
	if err := h.LoadDir(context.Background(), dir); err != nil {
		b.Fatal(err)
	}
	h.Close()
	for range b.N {
		// 10 distinct modules (the pessimistic case: no compiled code is shared), then 10
		// Plugin resources bound to one module (e.g. one plugin per subscription).
		for _, m := range []struct{ mode, name string }{
			{"distinct", "plugin_rss_mb_10_plugins"},
			{"one-module", "plugin_rss_mb_10_plugins_one_module"},
		} {
			cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
			cmd.Env = append(os.Environ(), rssChildEnv+"="+m.mode+":"+dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("rss child: %v\n%s", err, stderr.String())
			}
			var rssKB, loaded int
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "RSS" {
					loaded, _ = strconv.Atoi(f[1])
					rssKB, _ = strconv.Atoi(f[2])
				}
			}
			if loaded != 10 || rssKB == 0 {
				b.Fatalf("rss child (%s) loaded %d plugins, rss %d kB; output:\n%s\n%s", m.mode, loaded, rssKB, out, stderr.String())
			}
			if os.Getenv(rssDebugEnv) != "" {
				fmt.Fprintf(os.Stderr, "%s:\n%s", m.name, stderr.String())
			}
			bench(m.name, float64(rssKB)/1024, "MB")
		}
	}
}

// rssChild loads 10 plugins with 2 warm instances each — every module of dir
// ("distinct") or 10 resources bound to event-to-remote-claim.wasm ("one-module") —
// calls each once, and prints "RSS <plugins ready> <VmRSS kB>".
func rssChild(mode, dir string) error {
	if os.Getenv(rssProfileEnv) != "" {
		runtime.MemProfileRate = 1
	}
	h, err := New(Options{CacheDir: testCache})
	if err != nil {
		return err
	}
	defer h.Close()
	var specs []Spec
	names := make([]string, 0, 10)
	if mode == "one-module" {
		for i := range 10 {
			name := fmt.Sprintf("claims-%d", i)
			names = append(names, name)
			specs = append(specs, Spec{Name: name, Module: "event-to-remote-claim.wasm", Limits: Limits{WarmInstances: 2}})
		}
		dir = filepath.Join(dir, "one")
	} else {
		for name := range rssPlugins {
			names = append(names, name)
			specs = append(specs, Spec{Name: name, Limits: Limits{WarmInstances: 2}})
		}
	}
	ctx := context.Background()
	if err := h.Configure(ctx, specs); err != nil {
		return err
	}
	if err := h.LoadDir(ctx, dir); err != nil {
		return err
	}
	req := []byte(`{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","spec":{"trigger":{"type":"DryRun"},"context":{}}}`)
	for _, name := range names {
		switch name {
		case "loop", "trap", "huge": // loaded but not called: they misbehave on every call
			continue
		}
		_, _ = h.Call(ctx, name, abi.HookOnEvents, req) // some fail on purpose; they stay loaded
	}
	// Wait (bounded) until every plugin has its 2 warm instances.
	loaded := 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		loaded = 0
		for _, st := range h.Status() {
			if st.State != StateFailed && st.IdleInstances >= 2 {
				loaded++
			}
		}
		if loaded == len(names) {
			break
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss, err := vmRSS()
	if err != nil {
		return err
	}
	fmt.Printf("RSS %d %d\n", loaded, rss)
	if os.Getenv(rssDebugEnv) != "" {
		rssBreakdown(os.Stderr, h)
	}
	if p := os.Getenv(rssProfileEnv); p != "" {
		if err := writeHeapProfile(p + "." + mode); err != nil {
			return err
		}
	}
	return nil
}

// vmRSS reads this process's resident set size in kB from /proc.
func vmRSS() (int, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// TestMain runs the load or RSS measurement child when asked to, and the tests otherwise.
func TestMain(m *testing.M) {
	if v := os.Getenv(loadPeakEnv); v != "" {
		module, cache, _ := strings.Cut(v, ":")
		if err := loadPeakChild(module, cache); err != nil {
			fmt.Fprintln(os.Stderr, "load child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if v := os.Getenv(rssChildEnv); v != "" {
		mode, dir, _ := strings.Cut(v, ":")
		if err := rssChild(mode, filepath.Clean(dir)); err != nil {
			fmt.Fprintln(os.Stderr, "rss child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hostcallDir is the plugin that calls one host function n times per call.
const hostcallDir = "testdata/plugins/hostcall"

// hostcallRounds is how many host calls one measured plugin call makes.
const hostcallRounds = 2000

// BenchmarkPluginHostCall measures a host-function round trip (request written by the
// guest SDK, handler run, response read back) from a warm Go guest: the hostcall plugin
// calls now (and kv_get) hostcallRounds times in one plugin call; the figure is the
// median call time minus that of a call making no host calls, divided by the rounds.
func BenchmarkPluginHostCall(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, dir, "hostcall.wasm", pluginBytes(b, hostcallDir))
	store := &kv.Memory{}
	if err := store.KVSet(context.Background(), "hostcall", "k", []byte("value")); err != nil {
		b.Fatal(err)
	}
	h := newHost(b, Options{KV: store})
	spec := Spec{Name: "hostcall", Grants: capability.Grants{Now: true, KV: true, Log: true}}
	if err := h.LoadFile(context.Background(), filepath.Join(dir, "hostcall.wasm"), spec); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	median := func(fn string, n int) time.Duration {
		in := []byte(fmt.Sprintf(`{"fn":%q,"n":%d,"key":"k"}`, fn, n))
		want := []byte(fmt.Sprintf(`"calls":%d`, n))
		d := make([]time.Duration, 0, 60)
		deadline := time.Now().Add(benchMaxTime)
		for i := 0; i < 65 && time.Now().Before(deadline); i++ {
			start := time.Now()
			out, err := h.Call(ctx, "hostcall", abi.HookOnEvents, in)
			took := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if !bytes.Contains(out, want) {
				b.Fatalf("hostcall output %q lacks %s", out, want)
			}
			if i >= 5 { // warm-up
				d = append(d, took)
			}
		}
		slices.Sort(d)
		return percentile(d, 0.50)
	}
	for range b.N {
		base := median("now", 0)
		perCall := func(fn string) float64 {
			return us(median(fn, hostcallRounds)-base) / hostcallRounds
		}
		bench("plugin_hostcall_us", perCall("now"), "us")
		bench("plugin_hostcall_kv_get_us", perCall("kv_get"), "us")
		bench("plugin_hostcall_raw_us", perCall("now_raw"), "us")
	}
}
