package providerplan

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/wasmbuild"
)

var planNow = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// planRequest is a plan hook request over n claims spread over 8 NICs of one profile of
// provider, half of them already assigned (observed), every third owned in the cloud.
func planRequest(provider string, n int) ([]byte, [][]byte) {
	ds := []string{profileDoc("main", provider), domainDoc}
	observed := map[string][]string{}
	for i := range n {
		owner := "onprem"
		if i%3 == 0 {
			owner = "cloud"
		}
		addr := fmt.Sprintf("10.88.%d.%d", 60+i/250, 2+i%250)
		nic := fmt.Sprintf("nic-%d", i%8)
		ds = append(ds, claimDoc(fmt.Sprintf("c%d", i), addr, owner, "main", nic, fmt.Sprintf("ev%d", i)))
		if i%2 == 0 {
			observed[nic] = append(observed[nic], addr)
		}
	}
	nics := make([]string, 0, len(observed))
	for nic := range observed {
		nics = append(nics, nic)
	}
	sort.Strings(nics)
	for _, nic := range nics {
		ds = append(ds, observationDoc("main", nic, observed[nic]...))
	}
	req := abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion,
		Spec: abi.RequestSpec{Trigger: abi.Trigger{Type: abi.TriggerPlan, Topic: "provider"}, Now: planNow}}
	for _, d := range ds {
		req.Spec.Context.Resources = append(req.Spec.Context.Resources, json.RawMessage(d))
	}
	in, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return in, docs(ds...)
}

// loadPlanner builds plugins/<name> to Wasm and loads it into a real host.
func loadPlanner(tb testing.TB, name string) *host.Host {
	tb.Helper()
	h, err := host.New(host.Options{CacheDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	if err := h.LoadFile(context.Background(), wasmbuild.ForTest(tb, "plugins/"+name), host.Spec{Name: name}); err != nil {
		tb.Fatal(err)
	}
	return h
}

// TestPlannerPlugins runs each bundled planner as Wasm through the host and requires the
// same plans as the native logic with that provider's action names and parameters.
func TestPlannerPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three Wasm modules")
	}
	tests := []struct {
		name     string
		provider Provider
		param    string // a provider-specific parameter every plan has
	}{
		{"provider-aws", AWS, "region"},
		{"provider-azure", Azure, "ipConfigurationName"},
		{"provider-oci", OCI, "displayName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := loadPlanner(t, tt.name)
			info, err := h.Inspect(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if !info.Manifest.HasHook(abi.HookPlan) {
				t.Fatalf("manifest has no plan hook: %+v", info.Manifest)
			}
			in, ds := planRequest(tt.provider.Name, 30)
			out, err := h.Call(context.Background(), tt.name, abi.HookPlan, in)
			if err != nil {
				t.Fatal(err)
			}
			var res abi.Result
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("result: %v\n%s", err, out)
			}
			want, _ := tt.provider.Plan(Parse(ds))
			if len(res.Status.ActionPlans) != len(want) || len(want) == 0 {
				t.Fatalf("plans = %d, want %d (> 0)", len(res.Status.ActionPlans), len(want))
			}
			actions := map[string]int{}
			for i, p := range res.Status.ActionPlans {
				actions[p.Action]++
				if p.Name != want[i].Name || p.IdempotencyKey != want[i].IdempotencyKey || p.Provider != tt.provider.Name {
					t.Errorf("plan %d = %s/%s, want %s/%s", i, p.Name, p.IdempotencyKey, want[i].Name, want[i].IdempotencyKey)
				}
				if _, ok := p.Parameters[tt.param]; !ok {
					t.Errorf("plan %s lacks provider parameter %s: %v", p.Name, tt.param, p.Parameters)
				}
			}
			if actions[tt.provider.Assign] == 0 || actions[tt.provider.Unassign] == 0 || len(actions) != 2 {
				t.Errorf("actions = %v, want both %s and %s only", actions, tt.provider.Assign, tt.provider.Unassign)
			}
			if !reflect.DeepEqual(res.Status.ObservedAt.UTC(), planNow) {
				t.Errorf("observedAt = %v, want the request's now", res.Status.ObservedAt)
			}
		})
	}
}

// BenchmarkPlan1kClaims measures the provider-aws plan hook over 1,000 claims through the
// host (encode request, call, output check), and prints provider_plan_1k_claims_ms as the
// median of its own bounded loop.
func BenchmarkPlan1kClaims(b *testing.B) {
	h := loadPlanner(b, "provider-aws")
	in, _ := planRequest(abi.ProviderAWS, 1000)
	ctx := context.Background()
	one := func() time.Duration {
		start := time.Now()
		if _, err := h.Call(ctx, "provider-aws", abi.HookPlan, in); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 3 { // warm up
		one()
	}
	b.ResetTimer()
	for range b.N {
		var lat []time.Duration
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < 40 && time.Now().Before(deadline); i++ {
			lat = append(lat, one())
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := float64(lat[len(lat)/2].Microseconds()) / 1000
		b.ReportMetric(ms, "p50-ms")
		fmt.Printf("BENCH %s %.2f %s\n", "provider_plan_1k_claims_ms", ms, "ms")
	}
}
