package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/wasmbuild"
)

// observedRequest is the 10-event dry-run example as a PluginRequest (~3 KB).
func observedRequest(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", "observed.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var events []abi.Event
	if err := json.Unmarshal(data, &events); err != nil {
		tb.Fatal(err)
	}
	in, err := json.Marshal(request(events))
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// fastInstance instantiates the module on bare wazero with WASI and a stub Extism kernel
// that fails if the fast path ever touches it.
func fastInstance(tb testing.TB, path string) (api.Module, context.Context) {
	tb.Helper()
	ctx := context.Background()
	// ROUTERD_BENCH_CLOSE_ON_DONE=1 compiles with wazero's termination checks (what a host
	// enforcing deadlines uses): every loop header and Go function entry then pays a check,
	// which multiplies guest time several times over.
	rtc := wazero.NewRuntimeConfig()
	if os.Getenv("ROUTERD_BENCH_CLOSE_ON_DONE") != "" {
		rtc = rtc.WithCloseOnContextDone(true)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rtc)
	tb.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	bin, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		tb.Fatal(err)
	}
	stubs := map[string]wazero.HostModuleBuilder{}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		if stubs[mod] == nil {
			stubs[mod] = rt.NewHostModuleBuilder(mod)
		}
		stubs[mod].NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
			panic("fast path used the Extism kernel")
		}), f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	for _, b := range stubs {
		if _, err := b.Instantiate(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	m, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		tb.Fatal(err)
	}
	return m, ctx
}

// BenchmarkOnEventsFastPath measures a warm on_events call with the 10-event batch through
// routerd_buffer/routerd_call on bare wazero: the guest SDK's decode + claim logic +
// encode plus the two boundary crossings. It reports p50/p99 in µs over its own bounded
// loop, so a single iteration (make bench: -benchtime 1x) gives the whole measurement.
func BenchmarkOnEventsFastPath(b *testing.B) {
	benchFast(b, "plugins/event-to-remote-claim", observedRequest(b))
}

// BenchmarkEchoFastPath is the same measurement for the echo plugin with the same input:
// the fixed cost of a call, for comparison.
func BenchmarkEchoFastPath(b *testing.B) {
	benchFast(b, "plugins/echo", observedRequest(b))
}

func benchFast(b *testing.B, plugin string, in []byte) {
	m, ctx := fastInstance(b, wasmbuild.ForTest(b, plugin))
	buffer, call := m.ExportedFunction(abi.ExportBuffer), m.ExportedFunction(abi.ExportCall)
	one := func() {
		res, err := buffer.Call(ctx, uint64(len(in)))
		if err != nil {
			b.Fatal(err)
		}
		m.Memory().Write(uint32(res[0]), in)
		res, err = call.Call(ctx, uint64(abi.HookIDOnEvents), uint64(len(in)))
		if err != nil {
			b.Fatal(err)
		}
		ptr, n, failed := abi.DecodeCallResult(res[0])
		out, _ := m.Memory().Read(ptr, n)
		if failed || len(out) == 0 {
			b.Fatalf("call failed: %s", out)
		}
	}
	for i := 0; i < 200; i++ { // warm up
		one()
	}
	b.ResetTimer()
	for range b.N {
		const runs = 2000
		lat := make([]time.Duration, 0, runs)
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < runs && time.Now().Before(deadline); i++ {
			start := time.Now()
			one()
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}
