package host

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Loading a plugin leaves garbage behind: the module file, the instrumented copy, the
// decoder's and the compiler's (or the compilation cache's) buffers — about 3 MB per
// Go module. The Go runtime returns freed memory to the OS only gradually, so a daemon
// that just loaded 10 plugins stayed ~30 MB above its live memory. After a burst of
// loading (loads and warm-instance creation, quiet for trimDelay) the host runs a
// collection and returns the free memory at once.

// defaultTrimDelay is how long loading must be quiet before the host trims.
const defaultTrimDelay = time.Second

// trimmer runs debug.FreeOSMemory once after each burst of loading.
type trimmer struct {
	delay time.Duration
	mu    sync.Mutex
	timer *time.Timer
	done  bool
	runs  atomic.Int64 // trims run (for tests)
}

// schedule (re)starts the quiet period; the trim runs when it ends.
func (t *trimmer) schedule() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	if t.timer == nil {
		t.timer = time.AfterFunc(t.delay, t.run)
		return
	}
	t.timer.Reset(t.delay)
}

// run trims unless stopped. It holds mu, so stop returns only after a running trim.
func (t *trimmer) run() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	debug.FreeOSMemory()
	t.runs.Add(1)
}

// stop cancels a pending trim and waits for a running one; later schedules do
// nothing. It is idempotent.
func (t *trimmer) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	if t.timer != nil {
		t.timer.Stop()
	}
}
