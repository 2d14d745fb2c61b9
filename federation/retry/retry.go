// Package retry is the one retry and backoff policy of the federation code: the transport
// sender's delivery retries and its store-error backoff, the supervisor's child restarts
// and the subscription engine's batch retries all take their delays from a Policy.
//
// A Policy is exponential: the wait after n failures is Base·Multiplier^n, capped at
// Max, spread by ±Jitter and never above Max. It is built on cenkalti/backoff/v5: BackOff
// implements backoff.BackOff, and Exponential configures the library's own
// ExponentialBackOff for code that holds one.
package retry

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// DefaultMultiplier is the growth factor of a Policy that sets none.
const DefaultMultiplier = 2

// Policy is an exponential backoff schedule. The zero Multiplier means
// DefaultMultiplier; the zero Attempts means no limit.
type Policy struct {
	// Base is the first wait (after one failure).
	Base time.Duration
	// Max caps every wait, jitter included.
	Max time.Duration
	// Multiplier is how much each wait grows over the previous one (default 2).
	Multiplier float64
	// Jitter spreads each wait uniformly over [d·(1−Jitter), d·(1+Jitter)] so that many
	// clients do not retry in step; 0 means none, values are clamped to [0, 1].
	Jitter float64
	// Attempts bounds the tries of one BackOff sequence (Attempts−1 waits, then
	// backoff.Stop); 0 means unlimited.
	Attempts int
	// Rand returns uniform values in [0, 1) for the jitter (default math/rand/v2's
	// Float64). Tests inject a deterministic source.
	Rand func() float64
}

func (p Policy) multiplier() float64 {
	if p.Multiplier <= 0 {
		return DefaultMultiplier
	}
	return p.Multiplier
}

func (p Policy) jitter() float64 {
	return min(max(p.Jitter, 0), 1)
}

// Interval is the wait after failures failures before jitter: Base·Multiplier^failures,
// at most Max (and Base when Max is not above it).
func (p Policy) Interval(failures int) time.Duration {
	if p.Max <= p.Base {
		return max(p.Base, 0)
	}
	d := float64(p.Base) * math.Pow(p.multiplier(), float64(max(failures, 0)))
	if math.IsNaN(d) || d >= float64(p.Max) {
		return p.Max
	}
	return time.Duration(d)
}

// Delay is the wait after failures failures (0: the first retry): Interval spread by the
// jitter, never above Max.
func (p Policy) Delay(failures int) time.Duration {
	d := p.Interval(failures)
	j := p.jitter()
	if j == 0 || d <= 0 {
		return d
	}
	r := rand.Float64
	if p.Rand != nil {
		r = p.Rand
	}
	jittered := time.Duration(float64(d) * (1 - j + 2*j*r()))
	if p.Max > 0 {
		jittered = min(jittered, max(p.Max, p.Base))
	}
	return jittered
}

// NewBackOff returns a fresh sequence of the policy's waits.
func (p Policy) NewBackOff() *BackOff { return &BackOff{p: p} }

// Exponential returns the library's ExponentialBackOff set to the policy, reset and ready,
// for code that holds that type. It draws its own random numbers (Rand is not used) and,
// unlike Delay, may exceed Max by the jitter; Attempts does not apply.
func (p Policy) Exponential() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Base,
		RandomizationFactor: p.jitter(),
		Multiplier:          p.multiplier(),
		MaxInterval:         max(p.Max, p.Base),
	}
	b.Reset()
	return b
}

// BackOff is one sequence of a Policy's waits; it implements backoff.BackOff and is not
// safe for concurrent use.
type BackOff struct {
	p        Policy
	failures int
}

// NextBackOff returns the wait before the next try, or backoff.Stop when the policy's
// Attempts are used up.
func (b *BackOff) NextBackOff() time.Duration {
	if b.p.Attempts > 0 && b.failures >= b.p.Attempts-1 {
		return backoff.Stop
	}
	d := b.p.Delay(b.failures)
	if b.failures < math.MaxInt32 {
		b.failures++
	}
	return d
}

// Reset starts the sequence again from Base (after a success).
func (b *BackOff) Reset() { b.failures = 0 }

// Failures is how many waits the sequence has handed out since the last Reset.
func (b *BackOff) Failures() int { return b.failures }

var _ backoff.BackOff = (*BackOff)(nil)
