package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// signal is a broadcast readiness signal: every notify wakes every waiter.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// notify wakes the current waiters.
func (s *signal) notify() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// next returns a channel closed by the next notify.
func (s *signal) next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// watchedHost returns a host whose watcher notifies the returned signal after every
// file event it sees and every reload it runs.
func watchedHost(t *testing.T, opts Options) (*Host, *signal) {
	h := newHost(t, opts)
	sig := newSignal()
	h.watchHook = sig.notify
	return h, sig
}

// waitFor checks cond after each signal from the watcher until it holds; it fails after
// 30 seconds without (a guard against a hang, not a synchronisation).
func waitFor(t *testing.T, sig *signal, what string, cond func() bool) {
	t.Helper()
	guard := time.NewTimer(30 * time.Second)
	defer guard.Stop()
	for {
		next := sig.next() // before cond: a reload finishing in between still wakes us
		if cond() {
			return
		}
		select {
		case <-next:
		case <-guard.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// find returns the status of name and whether it is loaded.
func find(h *Host, name string) (PluginStatus, bool) {
	for _, s := range h.Status() {
		if s.Name == name {
			return s, true
		}
	}
	return PluginStatus{}, false
}

func TestWatchLoadReplaceBreakRemove(t *testing.T) {
	echo, capcheck := pluginBytes(t, echoDir), pluginBytes(t, capcheckDir)
	dir := t.TempDir()
	h, sig := watchedHost(t, Options{WatchDebounce: 100 * time.Millisecond})
	if err := h.Watch(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p.wasm")
	steps := []struct {
		name  string
		apply func(t *testing.T)
		until func(st PluginStatus, ok bool) bool
		check func(t *testing.T)
	}{
		{
			name:  "new file loads",
			apply: func(t *testing.T) { writeFile(t, dir, "p.wasm", echo) },
			until: func(st PluginStatus, ok bool) bool { return ok && st.State == StateReady && st.Version == "1.0.0" },
			check: func(t *testing.T) {
				if out, err := h.Call(context.Background(), "p", abi.HookPlan, []byte(`{"v":1}`)); err != nil || string(out) != `{"v":1}` {
					t.Fatalf("echo: %q %v", out, err)
				}
			},
		},
		{
			name: "replaced file, written in two slow chunks, swaps in",
			apply: func(t *testing.T) {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
				if err != nil {
					t.Fatal(err)
				}
				seen := sig.next()
				if _, err := f.Write(capcheck[:len(capcheck)/2]); err != nil {
					t.Fatal(err)
				}
				waitFor(t, sig, "the watcher to see the first half", func() bool {
					select {
					case <-seen:
						return true
					default:
						return false
					}
				}) // the second half comes well within the debounce
				if _, err := f.Write(capcheck[len(capcheck)/2:]); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			},
			until: func(st PluginStatus, ok bool) bool { return ok && st.State == StateReady && st.Version == "0.1.0" },
			check: func(t *testing.T) {
				out, err := h.Call(context.Background(), "p", abi.HookOnEvents, capInput(t, op{Fn: "now"}))
				if err != nil || !capResults(t, out)[0].OK {
					t.Fatalf("capcheck: %q %v", out, err)
				}
				if st, _ := find(h, "p"); st.LastError != "" {
					t.Fatalf("a half-written file was loaded: %q", st.LastError)
				}
				if _, err := h.Call(context.Background(), "p", abi.HookPlan, []byte(`{}`)); !errors.Is(err, ErrNoHook) {
					t.Fatalf("plan on capcheck: %v", err)
				}
			},
		},
		{
			name: "broken new version leaves the old one serving",
			apply: func(t *testing.T) {
				tmp := writeFile(t, dir, ".p.wasm.tmp", []byte("garbage, not wasm"))
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			},
			until: func(st PluginStatus, ok bool) bool { return ok && st.State == StateStale },
			check: func(t *testing.T) {
				st, _ := find(h, "p")
				if st.Version != "0.1.0" || st.LastError == "" {
					t.Fatalf("status %+v", st)
				}
				if _, err := h.Call(context.Background(), "p", abi.HookOnEvents, capInput(t, op{Fn: "now"})); err != nil {
					t.Fatalf("old version stopped serving: %v", err)
				}
			},
		},
		{
			name: "fixed file recovers",
			apply: func(t *testing.T) {
				tmp := writeFile(t, dir, ".p.wasm.tmp", echo)
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			},
			until: func(st PluginStatus, ok bool) bool { return ok && st.State == StateReady && st.Version == "1.0.0" },
		},
		{
			name:  "removed file unloads",
			apply: func(t *testing.T) { os.Remove(path) },
			until: func(_ PluginStatus, ok bool) bool { return !ok },
			check: func(t *testing.T) {
				if _, err := h.Call(context.Background(), "p", abi.HookPlan, []byte(`{}`)); !errors.Is(err, ErrNotLoaded) {
					t.Fatalf("call after remove: %v", err)
				}
			},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.apply(t)
			waitFor(t, sig, s.name, func() bool { st, ok := find(h, "p"); return s.until(st, ok) })
			if s.check != nil {
				s.check(t)
			}
		})
	}
}

func TestReplaceWaitsForInflightCalls(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	blockingLog := capability.Function{
		Name:    abi.FuncLog,
		Granted: func(g *capability.Grants) bool { return g.Log },
		Handle: func(ctx context.Context, _ *capability.Call, _ []byte) (any, error) {
			entered <- struct{}{}
			<-release
			return abi.Response{}, nil
		},
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "p.wasm", pluginBytes(t, capcheckDir))
	// Build the replacement before the call starts, and give the call a deadline far
	// beyond the test's own work: the call blocks until release, while the replacement is
	// compiled, which takes seconds on a loaded machine with a cold cache.
	replacement := pluginBytes(t, echoDir)
	h := newHost(t, Options{Functions: []capability.Function{blockingLog}})
	spec := Spec{Name: "p", Grants: capability.Grants{Log: true}, Limits: Limits{Timeout: 2 * time.Minute}}
	if err := h.LoadFile(context.Background(), path, spec); err != nil {
		t.Fatal(err)
	}
	old := h.entry("p").current.Load()

	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := h.Call(context.Background(), "p", abi.HookOnEvents, capInput(t, op{Fn: "log", Value: "slow"}))
		done <- result{out, err}
	}()
	<-entered

	writeFile(t, dir, "p.wasm", replacement)
	if err := h.LoadFile(context.Background(), path, spec); err != nil {
		t.Fatal(err)
	}
	// New calls go to the new version while the old call is still running.
	if out, err := h.Call(context.Background(), "p", abi.HookPlan, []byte(`{"new":true}`)); err != nil || string(out) != `{"new":true}` {
		t.Fatalf("new version: %q %v", out, err)
	}
	old.mu.Lock()
	closedEarly := old.closed
	old.mu.Unlock()
	if closedEarly {
		t.Fatal("old version closed while a call was running on it")
	}
	h.compiledMu.Lock()
	shared := len(h.compiled)
	h.compiledMu.Unlock()
	if shared != 2 {
		t.Fatalf("%d compiled modules while both versions live, want 2", shared)
	}
	close(release)
	r := <-done
	if r.err != nil || !capResults(t, r.out)[0].OK {
		t.Fatalf("in-flight call on the old version: %q %v", r.out, r.err)
	}
	old.mu.Lock()
	closed := old.closed
	old.mu.Unlock()
	if !closed {
		t.Fatal("old version not closed after its last call")
	}
	h.compiledMu.Lock()
	shared = len(h.compiled)
	h.compiledMu.Unlock()
	if shared != 1 {
		t.Fatalf("%d compiled modules after the old version closed, want 1", shared)
	}
}

func TestConfigureReloadsOnSpecChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "capcheck.wasm", pluginBytes(t, capcheckDir))
	h := newHost(t, Options{})
	if err := h.LoadDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kvOp := capInput(t, op{Fn: "kv_get", Key: "a"})
	steps := []struct {
		name     string
		specs    []Spec
		plugin   string
		wantCode string
		absent   []string
	}{
		{name: "defaulted: kv denied", plugin: "capcheck", wantCode: "capability_denied"},
		{name: "resource grants kv", specs: []Spec{{Name: "cc", Module: "capcheck.wasm", Grants: capability.Grants{KV: true}}}, plugin: "cc", absent: []string{"capcheck"}},
		{name: "grant withdrawn", specs: []Spec{{Name: "cc", Module: "capcheck.wasm"}}, plugin: "cc", wantCode: "capability_denied"},
		{name: "resource removed: back to default", specs: nil, plugin: "capcheck", wantCode: "capability_denied", absent: []string{"cc"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := h.Configure(ctx, s.specs); err != nil {
				t.Fatal(err)
			}
			out, err := h.Call(ctx, s.plugin, abi.HookOnEvents, kvOp)
			if err != nil {
				t.Fatal(err)
			}
			if r := capResults(t, out); r[0].Code != s.wantCode {
				t.Fatalf("kv_get code %q, want %q", r[0].Code, s.wantCode)
			}
			for _, a := range s.absent {
				if _, ok := find(h, a); ok {
					t.Fatalf("plugin %s still loaded: %v", a, h.Names())
				}
			}
		})
	}
}

func TestConfigureMissingModuleIsVisible(t *testing.T) {
	h := newHost(t, Options{})
	dir := t.TempDir()
	if err := h.Configure(context.Background(), []Spec{{Name: "ghost", Module: "ghost.wasm"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDir(context.Background(), dir); err == nil {
		t.Fatal("LoadDir: want an error for the missing module")
	}
	st := statusOf(t, h, "ghost")
	if st.State != StateFailed || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestWatchRemovedModuleOfResource(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))
	h, sig := watchedHost(t, Options{WatchDebounce: 50 * time.Millisecond})
	if err := h.Configure(context.Background(), []Spec{{Name: "bound", Module: "echo.wasm"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Watch(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, h, "bound"); st.State != StateReady {
		t.Fatalf("status %+v", st)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sig, "bound to fail", func() bool { st, ok := find(h, "bound"); return ok && st.State == StateFailed })
	if st := statusOf(t, h, "bound"); !strings.Contains(st.LastError, "module file removed") {
		t.Fatalf("status %+v", st)
	}
	if _, err := h.Call(context.Background(), "bound", abi.HookPlan, []byte(`{}`)); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("call after removal: %v", err)
	}
	// Putting the file back brings it back.
	writeFile(t, dir, "echo.wasm", pluginBytes(t, echoDir))
	waitFor(t, sig, "bound to be ready", func() bool { st, ok := find(h, "bound"); return ok && st.State == StateReady })
}
