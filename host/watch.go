package host

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher follows the plugin directory and reloads files after they have been quiet for
// the debounce interval (so a file being written is not loaded half-way).
type watcher struct {
	h        *Host
	dir      string
	fsw      *fsnotify.Watcher
	debounce time.Duration

	mu     sync.Mutex
	timers map[string]*time.Timer
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// Watch loads dir (see LoadDir) and then follows it until Close: a new *.wasm file
// loads, a replaced one swaps in after the calls running on the old version finish, a
// removed one unloads. A file that fails to load leaves the previous version serving
// (Status: stale). The returned error is LoadDir's; the watch runs regardless, unless
// the directory cannot be watched at all.
func (h *Host) Watch(ctx context.Context, dir string) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("host: watch %s: %w", dir, err)
	}
	if err := fsw.Add(dir); err != nil {
		fsw.Close()
		return fmt.Errorf("host: watch %s: %w", dir, err)
	}
	w := &watcher{h: h, dir: dir, fsw: fsw, debounce: h.opts.WatchDebounce, timers: map[string]*time.Timer{}, done: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		fsw.Close()
		return fmt.Errorf("host: watch %s: %w", dir, ErrClosed)
	}
	if h.watch != nil {
		h.mu.Unlock()
		fsw.Close()
		return fmt.Errorf("host: watch %s: already watching %s", dir, h.watch.dir)
	}
	h.watch = w
	h.mu.Unlock()
	w.wg.Add(1)
	go w.run()
	return h.LoadDir(ctx, dir)
}

// run dispatches fsnotify events to per-file debounce timers.
func (w *watcher) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			base := filepath.Base(ev.Name)
			if !strings.HasSuffix(base, ".wasm") || strings.HasPrefix(base, ".") {
				continue
			}
			w.touch(base)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.h.log.Error("plugin directory watch error", "dir", w.dir, "err", err)
		}
	}
}

// touch (re)starts the debounce timer of one file.
func (w *watcher) touch(base string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.done:
		return
	default:
	}
	if t, ok := w.timers[base]; ok && t.Stop() {
		t.Reset(w.debounce) // still pending: push it back
		w.signal()
		return
	}
	// No timer, or it already fired (its reload may be running): start a new one.
	w.wg.Add(1)
	holder := make(chan *time.Timer, 1)
	t := time.AfterFunc(w.debounce, func() { w.fire(base, <-holder) })
	holder <- t
	w.timers[base] = t
	w.signal()
}

// signal runs the test hook (Host.watchHook), if any.
func (w *watcher) signal() {
	if w.h.watchHook != nil {
		w.h.watchHook()
	}
}

// fire reloads one file once it has been quiet.
func (w *watcher) fire(base string, t *time.Timer) {
	w.mu.Lock()
	if w.timers[base] == t {
		delete(w.timers, base)
	}
	w.mu.Unlock()
	defer w.wg.Done()
	select {
	case <-w.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(w.h.ctx, 2*time.Minute)
	defer cancel()
	if err := w.h.syncFile(ctx, w.dir, base); err != nil {
		w.h.log.Warn("plugin reload failed; previous version (if any) keeps serving", "file", base, "err", err)
	}
	w.signal()
}

// close stops the watch and waits for pending reloads.
func (w *watcher) close() {
	w.once.Do(func() {
		w.mu.Lock()
		close(w.done)
		for base, t := range w.timers {
			if t.Stop() {
				w.wg.Done()
			}
			delete(w.timers, base)
		}
		w.mu.Unlock()
		w.fsw.Close()
		w.wg.Wait()
	})
}
