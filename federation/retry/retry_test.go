package retry

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// fixed returns a Rand that always answers v.
func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestDelay(t *testing.T) {
	sender := Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.25}
	tests := []struct {
		name     string
		p        Policy
		r        float64
		failures []int
		want     []time.Duration
	}{
		{name: "no jitter doubles up to max", p: Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second},
			failures: []int{0, 1, 2, 3, 4, 5, 6, 100, 1 << 30},
			want:     []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{name: "lowest jitter", p: sender, r: 0, failures: []int{0, 1, 5},
			want: []time.Duration{150 * time.Millisecond, 300 * time.Millisecond, 3750 * time.Millisecond}},
		{name: "middle jitter is the interval", p: sender, r: 0.5, failures: []int{0, 2},
			want: []time.Duration{200 * time.Millisecond, 800 * time.Millisecond}},
		{name: "highest jitter never above max", p: sender, r: 0.999999, failures: []int{0, 4, 5},
			want: []time.Duration{249999900, 3999998400, 5 * time.Second}},
		{name: "multiplier 3", p: Policy{Base: time.Second, Max: time.Minute, Multiplier: 3}, failures: []int{0, 1, 2, 3, 4},
			want: []time.Duration{time.Second, 3 * time.Second, 9 * time.Second, 27 * time.Second, time.Minute}},
		{name: "max not above base is constant", p: Policy{Base: time.Second, Max: time.Second, Jitter: 0.5}, r: 0.999, failures: []int{0, 10},
			want: []time.Duration{time.Second, time.Second}},
		{name: "jitter above 1 is clamped", p: Policy{Base: time.Second, Max: time.Minute, Jitter: 7}, r: 0, failures: []int{0},
			want: []time.Duration{0}},
		{name: "negative failures are the first", p: Policy{Base: time.Second, Max: time.Minute}, failures: []int{-3},
			want: []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Rand = fixed(tt.r)
			for i, n := range tt.failures {
				if got := p.Delay(n); got != tt.want[i] {
					t.Errorf("Delay(%d) = %v, want %v", n, got, tt.want[i])
				}
			}
		})
	}
}

func TestDelayBoundsWithSeededRandom(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	p := Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2, Rand: src.Float64}
	for n := range 20 {
		for range 50 {
			d, iv := p.Delay(n), p.Interval(n)
			lo, hi := time.Duration(float64(iv)*0.8), min(time.Duration(float64(iv)*1.2), p.Max)
			if d < lo || d > hi {
				t.Fatalf("Delay(%d) = %v outside [%v, %v]", n, d, lo, hi)
			}
		}
	}
	// The same seed gives the same sequence.
	a := Policy{Base: time.Second, Max: time.Minute, Jitter: 0.3, Rand: rand.New(rand.NewPCG(7, 7)).Float64}.NewBackOff()
	b := Policy{Base: time.Second, Max: time.Minute, Jitter: 0.3, Rand: rand.New(rand.NewPCG(7, 7)).Float64}.NewBackOff()
	for i := range 10 {
		if x, y := a.NextBackOff(), b.NextBackOff(); x != y {
			t.Fatalf("wait %d: %v != %v with the same seed", i, x, y)
		}
	}
}

func TestBackOff(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []time.Duration
	}{
		{name: "unlimited", p: Policy{Base: 100 * time.Millisecond, Max: 300 * time.Millisecond},
			want: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}},
		{name: "3 attempts are 2 waits", p: Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second, Attempts: 3},
			want: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, backoff.Stop, backoff.Stop}},
		{name: "1 attempt never waits", p: Policy{Base: time.Second, Max: time.Minute, Attempts: 1},
			want: []time.Duration{backoff.Stop}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.p.NewBackOff()
			for round := range 2 {
				for i, want := range tt.want {
					if got := b.NextBackOff(); got != want {
						t.Errorf("round %d wait %d = %v, want %v", round, i, got, want)
					}
				}
				b.Reset() // starts again from Base
				if b.Failures() != 0 {
					t.Errorf("Failures after Reset = %d", b.Failures())
				}
			}
		})
	}
}

func TestBackOffWithLibraryRetry(t *testing.T) {
	// backoff.Retry stops after the policy's attempts; the waits come from the policy.
	var waits []time.Duration
	p := Policy{Base: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 3}
	tries := 0
	b := p.NewBackOff()
	rec := recorder{b: b, waits: &waits}
	_, err := backoff.Retry(t.Context(), func() (int, error) {
		tries++
		return 0, errFail
	}, backoff.WithBackOff(rec))
	if err == nil || tries != 3 {
		t.Fatalf("tries = %d, err = %v; want 3 tries and the error", tries, err)
	}
	if len(waits) != 3 || waits[0] != time.Millisecond || waits[1] != 2*time.Millisecond || waits[2] != backoff.Stop {
		t.Errorf("waits = %v", waits)
	}
}

type recorder struct {
	b     *BackOff
	waits *[]time.Duration
}

func (r recorder) NextBackOff() time.Duration {
	d := r.b.NextBackOff()
	*r.waits = append(*r.waits, d)
	return d
}
func (r recorder) Reset() { r.b.Reset() }

type failErr struct{}

func (failErr) Error() string { return "fail" }

var errFail = failErr{}

func TestExponential(t *testing.T) {
	p := Policy{Base: 200 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}
	b := p.Exponential()
	if b.InitialInterval != p.Base || b.MaxInterval != p.Max || b.Multiplier != 2 || b.RandomizationFactor != 0.2 {
		t.Fatalf("library backoff = %+v", b)
	}
	// Without jitter the library's sequence is the policy's.
	q := Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 3}
	lib := q.Exponential()
	for n := range 8 {
		if got, want := lib.NextBackOff(), q.Delay(n); got != want {
			t.Errorf("wait %d: library %v, policy %v", n, got, want)
		}
	}
}
