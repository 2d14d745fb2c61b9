// Package transporttest holds helpers for tests that watch running transports: stores,
// counters and metrics of daemons in this process or another, which offer no change
// notification to wait on.
package transporttest

import (
	"testing"
	"time"
)

// PollEvery is how often WaitUntil re-checks its condition.
const PollEvery = 10 * time.Millisecond

// WaitUntil re-checks cond every PollEvery until it holds, and fails the test naming
// what it waited for when timeout passes first.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}
