package host

import (
	"slices"
	"sync"
	"time"
)

// latencyWindow is how many recent call durations the percentiles are computed over.
const latencyWindow = 1024

// stats are the per-plugin counters behind Status.
type stats struct {
	mu          sync.Mutex
	calls       uint64
	errors      uint64
	byKind      map[string]uint64
	denied      uint64
	lastError   string
	lastErrorAt time.Time
	// cause is the latest failure the breaker counted (not a refusal by the open breaker,
	// not a cancellation): while the breaker is open, the failure that opened it.
	cause     string
	causeKind string
	causeAt   time.Time
	ring      [latencyWindow]time.Duration
	n         int // durations recorded (ring is full when n >= latencyWindow)
}

// observe records one finished call.
func (s *stats) observe(d time.Duration, err error) {
	s.mu.Lock()
	s.calls++
	s.ring[s.n%latencyWindow] = d
	s.n++
	if err != nil {
		s.errors++
		if s.byKind == nil {
			s.byKind = make(map[string]uint64)
		}
		s.byKind[ErrorKind(err)]++
		s.lastError, s.lastErrorAt = err.Error(), time.Now()
	}
	s.mu.Unlock()
}

// countedFailure records err as the latest failure the breaker counted.
func (s *stats) countedFailure(err error, now time.Time) {
	s.mu.Lock()
	s.cause, s.causeKind, s.causeAt = err.Error(), ErrorKind(err), now
	s.mu.Unlock()
}

// breakerCause copies the latest failure the breaker counted into st.
func (s *stats) breakerCause(st *PluginStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause == "" {
		return
	}
	t := s.causeAt
	st.BreakerCause, st.BreakerCauseKind, st.BreakerCauseAt = s.cause, s.causeKind, &t
}

// setError records a failure outside a call (a load error).
func (s *stats) setError(err error) {
	s.mu.Lock()
	s.lastError, s.lastErrorAt = err.Error(), time.Now()
	s.mu.Unlock()
}

// countDenied counts a denied host-function call.
func (s *stats) countDenied() {
	s.mu.Lock()
	s.denied++
	s.mu.Unlock()
}

// snapshot copies the counters into st and computes the percentiles.
func (s *stats) snapshot(st *PluginStatus) {
	s.mu.Lock()
	n := min(s.n, latencyWindow)
	d := make([]time.Duration, n)
	copy(d, s.ring[:n])
	st.Calls, st.Errors, st.DeniedHostCalls = s.calls, s.errors, s.denied
	if len(s.byKind) > 0 {
		st.ErrorsByKind = make(map[string]uint64, len(s.byKind))
		for k, v := range s.byKind {
			st.ErrorsByKind[k] = v
		}
	}
	st.LastError = s.lastError
	if !s.lastErrorAt.IsZero() {
		t := s.lastErrorAt
		st.LastErrorAt = &t
	}
	s.mu.Unlock()
	if n == 0 {
		return
	}
	slices.Sort(d)
	st.P50Micros = micros(percentile(d, 0.50))
	st.P99Micros = micros(percentile(d, 0.99))
}

// percentile returns the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
