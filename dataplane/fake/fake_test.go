package fake_test

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/fake"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func route(dst, dev string) dataplane.Route {
	return dataplane.Route{Dst: netip.MustParsePrefix(dst), Dev: dev, From: "RemoteAddressClaim/" + dst}
}

// transitions are the states of the table-order test, applied one after another.
var transitions = []struct {
	name  string
	state dataplane.State
}{
	{name: "empty", state: dataplane.State{}},
	{name: "one claim", state: dataplane.State{
		Routes: []dataplane.Route{route("10.88.60.9/32", "wg-hybrid")},
	}},
	{name: "overlay address, two claims, mss clamp", state: dataplane.State{
		Addresses: []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.10.1/30"), Dev: "wg-hybrid"}},
		Routes: []dataplane.Route{
			route("10.88.60.9/32", "wg-hybrid"),
			route("10.88.60.10/32", "wg-hybrid"),
		},
		MSSRules: []dataplane.MSSRule{{Dev: "wg-hybrid", Direction: dataplane.Egress}, {Dev: "wg-hybrid", Direction: dataplane.Ingress}},
	}},
	{name: "claim moves to next hop, proxy arp, fixed mss", state: dataplane.State{
		Addresses:      []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.10.1/30"), Dev: "wg-hybrid"}},
		ProxyNeighbors: []dataplane.ProxyNeighbor{{Addr: netip.MustParseAddr("10.88.60.10"), Dev: "eth0"}},
		Routes: []dataplane.Route{
			{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "wg-hybrid", Via: netip.MustParseAddr("169.254.10.2")},
			route("10.88.60.10/32", "wg-hybrid"),
			{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "wg-hybrid", Table: 100, Metric: 50},
		},
		MSSRules: []dataplane.MSSRule{{Dev: "wg-hybrid", Direction: dataplane.Egress, MSS: 1360}, {Dev: "wg-hybrid", Direction: dataplane.Ingress, MSS: 1360}},
	}},
	{name: "expired claim withdrawn", state: dataplane.State{
		Addresses: []dataplane.Address{{Prefix: netip.MustParsePrefix("169.254.10.1/30"), Dev: "wg-hybrid"}},
		Routes: []dataplane.Route{
			{Dst: netip.MustParsePrefix("10.88.60.9/32"), Dev: "wg-hybrid", Via: netip.MustParseAddr("169.254.10.2")},
			{Dst: netip.MustParsePrefix("10.200.0.0/16"), Dev: "wg-hybrid", Table: 100, Metric: 50},
		},
		MSSRules: []dataplane.MSSRule{{Dev: "wg-hybrid", Direction: dataplane.Egress, MSS: 1360}, {Dev: "wg-hybrid", Direction: dataplane.Ingress, MSS: 1360}},
	}},
	{name: "ipv6 claim", state: dataplane.State{
		Routes: []dataplane.Route{{Dst: netip.MustParsePrefix("2001:db8::9/128"), Dev: "wg-hybrid"}},
	}},
	{name: "empty again", state: dataplane.State{}},
}

// checkConverged asserts the backend holds exactly desired and a second Apply is empty.
func checkConverged(t *testing.T, r *dataplane.Reconciler, b *fake.Backend, desired dataplane.State) {
	t.Helper()
	ctx := context.Background()
	want, err := desired.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("backend state:\n%s\nwant:\n%s", got, want)
	}
	d, err := r.Apply(ctx, desired)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Empty() {
		t.Fatalf("second apply changed something:\n%s", d)
	}
}

// TestTransitionsTableOrder applies the transitions in order and compares the recorded
// text with testdata/transitions.golden (-update rewrites it).
func TestTransitionsTableOrder(t *testing.T) {
	ctx := context.Background()
	b := fake.New("fake test")
	r := dataplane.NewReconciler(b, nil)
	defer r.Close()
	var rec strings.Builder
	for _, tr := range transitions {
		dry, err := r.DryRun(ctx, tr.state)
		if err != nil {
			t.Fatalf("%s: dry run: %v", tr.name, err)
		}
		b.ResetLog()
		d, err := r.Apply(ctx, tr.state)
		if err != nil {
			t.Fatalf("%s: apply: %v", tr.name, err)
		}
		if dry.String() != d.String() {
			t.Fatalf("%s: dry run\n%s\ndiffers from apply\n%s", tr.name, dry, d)
		}
		rec.WriteString("## " + tr.name + "\n" + b.Log())
		checkConverged(t, r, b, tr.state)
	}
	golden := filepath.Join("testdata", "transitions.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(rec.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if rec.String() != string(want) {
		t.Errorf("recorded text differs from %s:\n--- got\n%s--- want\n%s", golden, rec.String(), want)
	}
}

// TestTransitionsRandomOrder applies the transitions in many random orders, starting from
// every state, and checks convergence after each step.
func TestTransitionsRandomOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 50 {
		b := fake.New("fake random")
		r := dataplane.NewReconciler(b, nil)
		for range len(transitions) * 2 {
			tr := transitions[rng.IntN(len(transitions))]
			if _, err := r.Apply(context.Background(), tr.state); err != nil {
				t.Fatalf("round %d %s: %v", i, tr.name, err)
			}
			checkConverged(t, r, b, tr.state)
		}
		r.Close()
	}
}

func TestDriftRepair(t *testing.T) {
	ctx := context.Background()
	desired := transitions[3].state
	tests := []struct {
		name  string
		drift func(b *fake.Backend)
		want  string
	}{
		{
			name:  "route deleted",
			drift: func(b *fake.Backend) { b.Delete("route 10.88.60.10/32 table main metric 0") },
			want:  "+ route 10.88.60.10/32 dev wg-hybrid table main metric 0 proto routerd\n",
		},
		{
			name: "route changed",
			drift: func(b *fake.Backend) {
				b.Put(dataplane.Route{Dst: netip.MustParsePrefix("10.88.60.10/32"), Dev: "eth9", Table: 254})
			},
			want: "~ route 10.88.60.10/32 dev wg-hybrid table main metric 0 proto routerd (was: route 10.88.60.10/32 dev eth9 table main metric 0 proto routerd)\n",
		},
		{
			name: "stale object of ours",
			drift: func(b *fake.Backend) {
				b.Put(dataplane.Route{Dst: netip.MustParsePrefix("10.1.2.3/32"), Dev: "wg-hybrid"})
			},
			want: "- route 10.1.2.3/32 dev wg-hybrid table main metric 0 proto routerd\n",
		},
		{
			name:  "nothing",
			drift: func(*fake.Backend) {},
			want:  "no changes\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fake.New("fake drift")
			r := dataplane.NewReconciler(b, nil)
			defer r.Close()
			if _, err := r.Apply(ctx, desired); err != nil {
				t.Fatal(err)
			}
			tt.drift(b)
			d, err := r.Apply(ctx, desired)
			if err != nil {
				t.Fatal(err)
			}
			if d.String() != tt.want {
				t.Errorf("repair diff:\n%s\nwant:\n%s", d, tt.want)
			}
			checkConverged(t, r, b, desired)
		})
	}
}

func TestApplyFailureThenRepair(t *testing.T) {
	ctx := context.Background()
	b := fake.New("fake fail")
	r := dataplane.NewReconciler(b, nil)
	defer r.Close()
	desired := transitions[2].state
	b.FailOn("route 10.88.60.9/32 table main metric 0")
	if _, err := r.Apply(ctx, desired); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("apply error = %v, want injected failure", err)
	}
	b.FailOn("")
	d, err := r.Apply(ctx, desired)
	if err != nil {
		t.Fatal(err)
	}
	if d.Empty() {
		t.Fatal("repair after a failed apply changed nothing")
	}
	checkConverged(t, r, b, desired)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.Apply(ctx, desired); err != dataplane.ErrClosed {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
}
