package host

import (
	"sync"
	"time"
)

// Circuit breaker defaults.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
)

// BreakerState is the state of a plugin's circuit breaker.
type BreakerState int

// Breaker states.
const (
	// BreakerClosed: calls flow.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen: the cool-down ended; one trial call is let through.
	BreakerHalfOpen
	// BreakerOpen: calls are refused with ErrCircuitOpen until the cool-down ends.
	BreakerOpen
)

// String returns closed, half-open or open.
func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "closed"
}

// breaker opens after threshold consecutive failures, stays open for cooldown, then lets
// one trial call through (half-open): success closes it, failure opens it again.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu       sync.Mutex
	state    BreakerState
	fails    int
	openedAt time.Time
	trial    bool // a half-open trial call is running
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	if threshold <= 0 {
		threshold = DefaultBreakerThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	return &breaker{threshold: threshold, cooldown: cooldown}
}

// allow reports whether a call may run now, and the time left until the breaker may
// half-open when it may not.
func (b *breaker) allow(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if wait := b.openedAt.Add(b.cooldown).Sub(now); wait > 0 {
			return false, wait
		}
		b.state, b.trial = BreakerHalfOpen, true
		return true, 0
	case BreakerHalfOpen:
		if b.trial {
			return false, 0
		}
		b.trial = true
		return true, 0
	}
	return true, 0
}

// record notes the outcome of an allowed call and reports whether the breaker just
// opened.
func (b *breaker) record(ok bool, now time.Time) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerHalfOpen:
		b.trial = false
		if ok {
			b.state, b.fails = BreakerClosed, 0
			return false
		}
		b.state, b.openedAt = BreakerOpen, now
		return true
	case BreakerOpen:
		// A call admitted before the breaker opened finished late; it changes nothing.
		return false
	}
	if ok {
		b.fails = 0
		return false
	}
	b.fails++
	if b.fails >= b.threshold {
		b.state, b.openedAt = BreakerOpen, now
		return true
	}
	return false
}

// abort notes that an allowed call ended without a verdict (canceled by the caller).
func (b *breaker) abort() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen {
		b.trial = false
	}
}

// reset closes the breaker (a new version was loaded).
func (b *breaker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.fails, b.trial = BreakerClosed, 0, false
}

// current returns the state as seen at now (an open breaker past its cool-down reports
// half-open).
func (b *breaker) current(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !now.Before(b.openedAt.Add(b.cooldown)) {
		return BreakerHalfOpen
	}
	return b.state
}
