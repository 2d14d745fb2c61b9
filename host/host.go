package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"go.opentelemetry.io/otel/metric"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/capability/clock"
	"routerd.net/routerd/host/capability/configget"
	"routerd.net/routerd/host/capability/events"
	"routerd.net/routerd/host/capability/hostlog"
	"routerd.net/routerd/host/capability/kv"
	"routerd.net/routerd/host/internal/jsonvalid"
)

// Options configure a Host. Every field is optional.
type Options struct {
	// Logger receives the host's own log lines and the plugins' log host calls.
	Logger *slog.Logger
	// CacheDir holds the persistent wazero compilation cache (settings.CacheDir());
	// "" compiles without a persistent cache.
	CacheDir string
	// MeterProvider receives the plugin metrics (default: no-op).
	MeterProvider metric.MeterProvider
	// Auditor records denied host-function calls (e.g. the store's AppendAudit).
	Auditor Auditor
	// KV backs kv_get/kv_set (default: an in-memory store, lost on restart).
	KV kv.Store
	// KVNotFound recognises KV's missing-key error (default: errors.Is kv.ErrNotFound).
	KVNotFound func(error) bool
	// Config serves config_get (default: no resources).
	Config configget.Source
	// Events stores events emitted with event_emit (default: unavailable).
	Events events.Emitter
	// Now is the clock of host function now (default time.Now).
	Now func() time.Time
	// Functions are extra host functions (e.g. provider_request); one with the name of
	// a built-in replaces it.
	Functions []capability.Function
	// DryRun makes host functions with side effects record instead of act.
	DryRun bool
	// MaxModuleBytes bounds module files (default DefaultMaxModuleBytes).
	MaxModuleBytes int64
	// BreakerThreshold consecutive failures open a plugin's breaker for BreakerCooldown
	// (defaults DefaultBreakerThreshold, DefaultBreakerCooldown).
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// WatchDebounce is how long a file must be quiet before Watch (re)loads it
	// (default 250ms), so partial writes are not loaded.
	WatchDebounce time.Duration
	// Preemption selects how calls are stopped at their deadline: PreemptLoopCheck
	// (default; modules it cannot instrument fall back) or PreemptCloseOnDone (always
	// wazero's close-on-context-done: slower, no module rewriting).
	Preemption string
	// KeepFunctionBodies keeps the function bodies wazero holds after compiling a module
	// (~2 MB of Go heap per Go module). By default the host drops them by writing
	// unexported wazero fields (host/internal/wazeroaccess): wazero does not promise never
	// to read them again, but TestBodiesUnusedAfterCompile proves, for the pinned wazero
	// (TestPinnedVersions), that every path the host uses after compiling — instantiating,
	// calls, traps with stack traces, listeners, cache hits and misses, recompiling —
	// gives identical results with the bodies dropped or poisoned. Set it to opt out.
	KeepFunctionBodies bool
}

// Plugin states reported in PluginStatus.State.
const (
	// StateReady: a version is loaded and the breaker is closed.
	StateReady = "ready"
	// StateStale: the newest file failed to load; the previous version keeps serving.
	StateStale = "stale"
	// StateCircuitOpen: calls are refused until the breaker's cool-down ends.
	StateCircuitOpen = "circuit-open"
	// StateHalfOpen: the next call is a trial.
	StateHalfOpen = "half-open"
	// StateFailed: no version could be loaded; calls fail with ErrNotLoaded.
	StateFailed = "failed"
)

// How a plugin's calls are stopped at their deadline (PluginStatus.Preemption).
const (
	// PreemptLoopCheck: the module was instrumented with a stop check at every loop.
	PreemptLoopCheck = "loop-check"
	// PreemptCloseOnDone: wazero's close-on-context-done (slower; used for modules the
	// instrumentation does not support).
	PreemptCloseOnDone = "close-on-done"
)

// Host loads and runs plugins. It is safe for concurrent use.
type Host struct {
	opts    Options
	log     *slog.Logger
	cache   wazero.CompilationCache
	codeDir string // machine code files (see slim.go); "" without a cache directory
	funcs   []capability.Function
	metrics *instruments
	audits  auditGate
	ctx     context.Context // canceled by Close: background work stops
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	loadMu sync.Mutex // serialises loads, reloads and unloads

	mu      sync.RWMutex
	plugins map[string]*entry
	specs   []Spec // configured Plugin resources (nil: none)
	dir     string // plugin directory (set by LoadDir/Watch)
	closed  bool

	watch *watcher
	// watchHook, when set (by tests, before Watch), runs after the watcher saw an event
	// of a plugin file and after each reload it ran: the tests' readiness signal.
	watchHook func()

	hcAttrs sync.Map // [2]string{plugin, function} → metric.MeasurementOption

	compiledMu sync.Mutex
	compiled   map[compiledKey]*sharedCompiled // compiled modules, shared by plugins

	trim trimmer // returns loading garbage to the OS (see trim.go)
}

// entry is one plugin: its current version and the state that outlives versions.
type entry struct {
	name    string
	spec    Spec
	current atomic.Pointer[version]
	breaker *breaker
	stats   stats

	mu         sync.Mutex
	loadErr    error  // last load failure (nil after a successful load)
	failDigest string // digest of the file that failed, to avoid reloading it in a loop
}

// New creates a Host. Call LoadDir or Watch to load plugins, and Close when done.
//
// # Errors
//
// Opening the compilation cache directory or registering metrics can fail.
func New(opts Options) (*Host, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxModuleBytes <= 0 {
		opts.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if opts.WatchDebounce <= 0 {
		opts.WatchDebounce = 250 * time.Millisecond
	}
	if opts.KV == nil {
		opts.KV = &kv.Memory{}
	}
	h := &Host{opts: opts, log: opts.Logger, plugins: make(map[string]*entry), compiled: make(map[compiledKey]*sharedCompiled)}
	h.trim.delay = defaultTrimDelay
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", opts.CacheDir, err)
		}
		if err := checkPrivateDir(opts.CacheDir); err != nil {
			return nil, err
		}
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", opts.CacheDir, err)
		}
		h.cache = c
		h.codeDir = filepath.Join(opts.CacheDir, codeDirName)
		if err := os.MkdirAll(h.codeDir, 0o700); err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", opts.CacheDir, err)
		}
		pruneCodeFiles(h.codeDir, time.Now())
	}
	var funcs []capability.Function
	funcs = append(funcs, hostlog.New(hostlog.Options{Logger: opts.Logger})...)
	funcs = append(funcs, clock.New(clock.Options{Now: opts.Now})...)
	funcs = append(funcs, kv.New(kv.Options{Store: opts.KV, IsNotFound: opts.KVNotFound})...)
	funcs = append(funcs, configget.New(configget.Options{Source: opts.Config})...)
	funcs = append(funcs, events.New(events.Options{Emitter: opts.Events})...)
	funcs = append(funcs, unsupportedProviderRequest())
	for _, f := range opts.Functions {
		if i := slices.IndexFunc(funcs, func(g capability.Function) bool { return g.Name == f.Name }); i >= 0 {
			funcs[i] = f
		} else {
			funcs = append(funcs, f)
		}
	}
	h.funcs = funcs
	m, err := newInstruments(opts.MeterProvider, h.breakerStates, h.warmInstances)
	if err != nil {
		return nil, fmt.Errorf("host: metrics: %w", err)
	}
	h.metrics = m
	return h, nil
}

// breakerStates reports every plugin's breaker state (for the metrics gauge).
func (h *Host) breakerStates() map[string]BreakerState {
	h.mu.RLock()
	defer h.mu.RUnlock()
	now := time.Now()
	out := make(map[string]BreakerState, len(h.plugins))
	for name, e := range h.plugins {
		out[name] = e.breaker.current(now)
	}
	return out
}

// funcNames are the names of the host functions (the values of the "function" metric
// attribute).
func (h *Host) funcNames() []string {
	out := make([]string, len(h.funcs))
	for i, f := range h.funcs {
		out[i] = f.Name
	}
	return out
}

// warmInstances reports every plugin's idle instances in its serving version (for the
// metrics gauge; 0 while nothing is loaded).
func (h *Host) warmInstances() map[string]int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]int, len(h.plugins))
	for name, e := range h.plugins {
		n := 0
		if v := e.current.Load(); v != nil {
			v.mu.Lock()
			n = len(v.idle)
			v.mu.Unlock()
		}
		out[name] = n
	}
	return out
}

// entry returns the plugin named name, or nil.
func (h *Host) entry(name string) *entry {
	h.mu.RLock()
	e := h.plugins[name]
	h.mu.RUnlock()
	return e
}

// Configure sets the Plugin resources (replacing earlier ones). When a plugin directory
// is loaded, plugins whose resource changed are reloaded, plugins whose resource went
// away are unloaded and their modules loaded again under defaults.
func (h *Host) Configure(ctx context.Context, specs []Spec) error {
	norm := make([]Spec, 0, len(specs))
	var errs []error
	seen := map[string]bool{}
	for _, s := range specs {
		n, err := s.normalize()
		if err != nil {
			errs = append(errs, fmt.Errorf("host: configure: %w", err))
			continue
		}
		if seen[n.Name] {
			errs = append(errs, fmt.Errorf("host: configure: plugin %s: defined twice", n.Name))
			continue
		}
		seen[n.Name] = true
		norm = append(norm, n)
	}
	h.mu.Lock()
	h.specs = norm
	dir := h.dir
	h.mu.Unlock()
	if dir != "" {
		errs = append(errs, h.sync(ctx, dir))
	}
	return errors.Join(errs...)
}

// LoadDir loads every *.wasm module of dir (and unloads plugins whose module is no
// longer there). A module that fails to load is reported in the returned error and in
// Status (state failed); the others load regardless.
func (h *Host) LoadDir(ctx context.Context, dir string) error {
	h.mu.Lock()
	h.dir = dir
	h.mu.Unlock()
	return h.sync(ctx, dir)
}

// desired returns the plugins the directory's files and the Plugin resources call for:
// every resource, plus a defaulted plugin for each file no resource names.
func (h *Host) desired(dir string) ([]Spec, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil {
		return nil, fmt.Errorf("host: list %s: %w", dir, err)
	}
	h.mu.RLock()
	specs := slices.Clone(h.specs)
	h.mu.RUnlock()
	bound := map[string]bool{}
	for _, s := range specs {
		bound[s.Module] = true
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	for _, f := range files {
		base := filepath.Base(f)
		if bound[base] {
			continue
		}
		d, err := DefaultSpec(base).normalize()
		if err != nil || names[d.Name] {
			continue // a resource already uses the name
		}
		specs = append(specs, d)
	}
	return specs, nil
}

// sync reconciles the loaded plugins with dir and the configured resources.
func (h *Host) sync(ctx context.Context, dir string) error {
	specs, err := h.desired(dir)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var errs []error
	for _, s := range specs {
		want[s.Name] = true
		if err := h.load(ctx, filepath.Join(dir, s.Module), s); err != nil {
			errs = append(errs, err)
		}
	}
	h.mu.RLock()
	var gone []string
	for name := range h.plugins {
		if !want[name] {
			gone = append(gone, name)
		}
	}
	h.mu.RUnlock()
	for _, name := range gone {
		h.Unload(name)
	}
	return errors.Join(errs...)
}

// syncFile reloads (or unloads) the plugins bound to one module file of dir.
func (h *Host) syncFile(ctx context.Context, dir, base string) error {
	specs, err := h.desired(dir)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(filepath.Join(dir, base))
	if statErr == nil {
		var errs []error
		for _, s := range specs {
			if s.Module == base {
				errs = append(errs, h.load(ctx, filepath.Join(dir, base), s))
			}
		}
		return errors.Join(errs...)
	}
	// Removed: defaulted plugins of that file unload; plugins a resource binds to it
	// stop serving and stay listed as failed, so the operator sees the missing module.
	h.mu.RLock()
	var gone, missing []*entry
	for _, e := range h.plugins {
		e.mu.Lock()
		switch {
		case e.spec.Module != base:
		case e.spec.Defaulted:
			gone = append(gone, e)
		default:
			missing = append(missing, e)
		}
		e.mu.Unlock()
	}
	h.mu.RUnlock()
	for _, e := range gone {
		h.Unload(e.name)
	}
	for _, e := range missing {
		err := &LoadError{Plugin: e.name, File: base, Kind: ErrBadModule, Detail: "module file removed from the plugin directory", Err: statErr}
		h.loadMu.Lock()
		e.mu.Lock()
		e.loadErr, e.failDigest = err, ""
		old := e.current.Swap(nil)
		e.mu.Unlock()
		h.loadMu.Unlock()
		if old != nil {
			old.retire()
		}
		e.stats.setError(err)
		h.log.Warn("plugin module removed", "plugin", e.name, "file", base)
	}
	return nil
}

// LoadFile loads (or reloads) the module at path as a plugin with spec (use
// DefaultSpec(filepath.Base(path)) for an unconfigured module). A broken new file
// leaves the previous version serving.
func (h *Host) LoadFile(ctx context.Context, path string, spec Spec) error {
	if spec.Module == "" {
		spec.Module = filepath.Base(path)
	}
	spec, err := spec.normalize()
	if err != nil {
		return fmt.Errorf("host: load %s: %w", path, err)
	}
	return h.load(ctx, path, spec)
}

// load loads path for spec unless the same file and spec are already loaded (or already
// failed).
func (h *Host) load(ctx context.Context, path string, spec Spec) error {
	h.loadMu.Lock()
	defer h.loadMu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return fmt.Errorf("host: load %s: %w", path, ErrClosed)
	}
	e := h.plugins[spec.Name]
	if e == nil {
		e = &entry{name: spec.Name, spec: spec, breaker: newBreaker(h.opts.BreakerThreshold, h.opts.BreakerCooldown)}
		h.plugins[spec.Name] = e
	}
	h.mu.Unlock()

	data, digest, err := h.readModule(path, spec)
	cur := e.current.Load()
	e.mu.Lock()
	sameSpec := reflect.DeepEqual(e.spec, spec)
	if err == nil && sameSpec && cur != nil && cur.digest == digest {
		e.mu.Unlock()
		return nil // unchanged
	}
	if err == nil && sameSpec && e.loadErr != nil && e.failDigest == digest {
		err := e.loadErr
		e.mu.Unlock()
		return err // the same broken file again
	}
	e.mu.Unlock()
	var v *version
	if err == nil {
		v, err = h.loadVersion(ctx, path, spec, &moduleFile{data: data}, digest)
		h.trim.schedule()
	}
	if err != nil {
		e.mu.Lock()
		e.loadErr, e.failDigest = err, digest
		if cur == nil || !sameSpec {
			// Nothing compatible is serving: with a changed spec (grants, limits) the old
			// version must not keep running under the old grants.
			e.spec = spec
			if old := e.current.Swap(nil); old != nil {
				old.retire()
			}
		}
		e.mu.Unlock()
		e.stats.setError(err)
		h.metrics.loads.Add(ctx, 1, loadAttrs(spec.Name, "error"))
		h.log.Error("plugin load failed", "plugin", spec.Name, "file", path, "err", err)
		return err
	}
	e.mu.Lock()
	e.spec, e.loadErr, e.failDigest = spec, nil, ""
	old := e.current.Swap(v)
	e.mu.Unlock()
	e.breaker.reset()
	if old != nil {
		old.retire()
	}
	h.metrics.loads.Add(ctx, 1, loadAttrs(spec.Name, "ok"))
	h.metrics.loaded(ctx, spec.Name, h.funcNames())
	h.log.Info("plugin loaded", "plugin", spec.Name, "file", path, "version", v.manifest.Version,
		"sha256", digest[:12], "fastPath", v.fast, "took", v.loadTook.Round(time.Millisecond), "replaced", old != nil)
	return nil
}

// Unload removes the plugin named name; running calls finish on their version first.
func (h *Host) Unload(name string) {
	h.loadMu.Lock()
	defer h.loadMu.Unlock()
	h.mu.Lock()
	e := h.plugins[name]
	delete(h.plugins, name)
	h.mu.Unlock()
	if e == nil {
		return
	}
	if v := e.current.Swap(nil); v != nil {
		v.retire()
		h.log.Info("plugin unloaded", "plugin", name)
	}
}

// Names returns the loaded plugin names, sorted.
func (h *Host) Names() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.plugins))
	for n := range h.plugins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Trace is what a traced call reports besides the output.
type Trace struct {
	// Duration is the wall time of the call (including waiting for an instance).
	Duration time.Duration `json:"duration"`
	// HostCalls are the host-function calls the plugin made, in order.
	HostCalls []capability.Record `json:"hostCalls"`
	// FastPath tells whether the direct-memory path was used.
	FastPath bool `json:"fastPath"`
}

// Call runs hook of the plugin named name with input (a JSON document) and returns its
// output, checked to be well-formed JSON. Errors are *CallError values matching one of
// the Err* kinds. Call is the lean path (benchmarks, echo-style plugins); Invoke and
// CallRequest also check that the output is a valid PluginResult.
func (h *Host) Call(ctx context.Context, name string, hook abi.Hook, input []byte) ([]byte, error) {
	out, _, err := h.call(ctx, name, hook, input, callMode{})
	return out, err
}

// CallTraced is Call that also reports the host-function calls made and the duration
// (routerctl plugin dry-run). The output must be a valid PluginResult.
func (h *Host) CallTraced(ctx context.Context, name string, hook abi.Hook, input []byte) ([]byte, Trace, error) {
	return h.call(ctx, name, hook, input, callMode{trace: true, result: true})
}

// Invoke implements the subscription engine's Invoker: it runs hook with the request
// JSON and returns the output, which must be a valid PluginResult (abi.DecodeResult);
// otherwise the call fails with ErrBadOutput and counts as a plugin failure.
func (h *Host) Invoke(ctx context.Context, plugin, hook string, request []byte) ([]byte, error) {
	out, _, err := h.call(ctx, plugin, abi.Hook(hook), request, callMode{result: true})
	return out, err
}

// InvokeDecode is Invoke for a caller that decodes the output itself (the subscription
// path parses the PluginResult anyway): instead of the host's own check, decode runs on
// the output, so it is scanned once. decode's error fails the call exactly as a failed
// check does: ErrBadOutput, counted in Status and metrics, and a failure for the
// breaker. decode runs once per call that produced output, after the instance is
// released; out is the caller's to keep. It returns nil or a *CallError.
func (h *Host) InvokeDecode(ctx context.Context, plugin, hook string, request []byte, decode func(out []byte) error) error {
	_, _, err := h.call(ctx, plugin, abi.Hook(hook), request, callMode{decode: decode})
	return err
}

// CallRequest encodes req, runs hook and decodes the PluginResult.
func (h *Host) CallRequest(ctx context.Context, name string, hook abi.Hook, req *abi.Request) (*abi.Result, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, &CallError{Plugin: name, Hook: string(hook), Kind: ErrBadModule, Detail: "encode request: " + err.Error(), Err: err}
	}
	var res *abi.Result
	_, _, err = h.call(ctx, name, hook, in, callMode{decode: func(out []byte) (err error) {
		res, err = abi.DecodeResult(out)
		return err
	}})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// callMode selects the extras of a call.
type callMode struct {
	trace  bool // record host calls
	result bool // the output must be a valid PluginResult
	// decode replaces the output check: the caller's decoder (InvokeDecode).
	decode func(out []byte) error
}

func (h *Host) call(ctx context.Context, name string, hook abi.Hook, input []byte, mode callMode) ([]byte, Trace, error) {
	start := time.Now()
	e := h.entry(name)
	if e == nil {
		return nil, Trace{}, &CallError{Plugin: name, Hook: string(hook), Kind: ErrNotLoaded, Detail: "no plugin of that name"}
	}
	out, tr, err := h.callEntry(ctx, e, hook, input, mode)
	tr.Duration = time.Since(start)
	if err == nil || !errors.Is(err, ErrNotLoaded) {
		e.stats.observe(tr.Duration, err)
		h.metrics.observeCall(ctx, name, string(hook), tr.Duration.Seconds(), err)
	}
	return out, tr, err
}

func (h *Host) callEntry(ctx context.Context, e *entry, hook abi.Hook, input []byte, mode callMode) ([]byte, Trace, error) {
	fail := func(kind error, detail string, cause error) error {
		return &CallError{Plugin: e.name, Hook: string(hook), Kind: kind, Detail: detail, Err: cause}
	}
	var v *version
	for range 3 {
		if v = e.current.Load(); v == nil || v.enter() {
			break
		}
		v = nil // retired between the load and enter: take the new version
	}
	if v == nil {
		e.mu.Lock()
		lerr := e.loadErr
		e.mu.Unlock()
		if lerr != nil {
			return nil, Trace{}, fail(ErrNotLoaded, "load failed: "+lerr.Error(), lerr)
		}
		return nil, Trace{}, fail(ErrNotLoaded, "unloaded", nil)
	}
	defer v.leave()
	tr := Trace{FastPath: v.fast}
	if !v.hasHook(hook) {
		return nil, tr, fail(ErrNoHook, fmt.Sprintf("enabled hooks are %v", v.hooks), nil)
	}
	now := time.Now()
	if ok, wait := e.breaker.allow(now); !ok {
		return nil, tr, fail(ErrCircuitOpen, fmt.Sprintf("%d consecutive failures; retry in %v", e.breaker.threshold, wait.Round(time.Millisecond)), nil)
	}
	out, err := h.run(ctx, v, hook, input, mode, &tr, fail)
	switch {
	case err == nil:
		e.breaker.record(true, time.Now())
	case errors.Is(err, ErrCanceled):
		e.breaker.abort()
	default:
		now := time.Now()
		e.stats.countedFailure(err, now)
		if e.breaker.record(false, now) {
			h.log.Warn("plugin circuit breaker opened", "plugin", e.name, "cooldown", e.breaker.cooldown, "err", err)
		}
	}
	return out, tr, err
}

// run executes one call on an instance of v under v's limits.
func (h *Host) run(ctx context.Context, v *version, hook abi.Hook, input []byte, mode callMode, tr *Trace,
	fail func(error, string, error) error) ([]byte, error) {
	in, err := v.acquire(ctx)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fail(ErrTimeout, fmt.Sprintf("no instance became free before the caller's deadline (limits.maxConcurrency %d)", v.spec.Limits.MaxConcurrency), err)
		case errors.Is(err, context.Canceled):
			return nil, fail(ErrCanceled, "canceled while waiting for an instance", err)
		}
		var le *LoadError
		if errors.As(err, &le) {
			return nil, fail(le.Kind, "new instance: "+le.Detail, err)
		}
		return nil, fail(ErrTrap, "new instance: "+err.Error(), err)
	}
	cctx, cancel := context.WithTimeout(ctx, v.spec.Limits.Timeout)
	defer cancel()
	in.state.record = mode.trace
	out, kind, detail, healthy := in.call(cctx, hook, input)
	if mode.trace {
		tr.HostCalls = slices.Clone(in.state.records)
	}
	in.state.record = false
	v.release(in, healthy)
	if kind != nil {
		if kind == ErrTimeout && ctx.Err() == nil {
			detail = fmt.Sprintf("did not finish within limits.timeout %v; instance closed", v.spec.Limits.Timeout)
		}
		return nil, fail(kind, detail, nil)
	}
	if mode.decode != nil {
		if err := mode.decode(out); err != nil {
			return nil, fail(ErrBadOutput, "output is not a valid PluginResult: "+truncate(err.Error(), 300), err)
		}
		return out, nil
	}
	if mode.result {
		if _, err := abi.DecodeResult(out); err != nil {
			return nil, fail(ErrBadOutput, "output is not a valid PluginResult: "+truncate(err.Error(), 300), err)
		}
		return out, nil
	}
	if err := jsonvalid.Valid(out); err != nil {
		detail := err.Error()
		if se, ok := errors.AsType[*jsonvalid.SyntaxError](err); ok {
			detail = fmt.Sprintf("%s at byte %d of %d", se.Msg, se.Offset, len(out))
		}
		return nil, fail(ErrBadOutput, "output is not valid JSON: "+truncate(detail, 200), err)
	}
	return out, nil
}

func loadAttrs(plugin, outcome string) metric.AddOption {
	return metric.WithAttributes(attrString("plugin", plugin), attrString("outcome", outcome))
}

// PluginStatus is the state of one plugin, as served at GET /v1/plugins and printed by
// routerctl plugin list.
type PluginStatus struct {
	Name            string            `json:"name"`
	Module          string            `json:"module"`
	Version         string            `json:"version"`
	Digest          string            `json:"digest"`
	State           string            `json:"state"`
	Breaker         string            `json:"breaker"`
	LastError       string            `json:"lastError,omitempty"`
	LastErrorAt     *time.Time        `json:"lastErrorAt,omitempty"`
	Grants          []string          `json:"grants"`
	Hooks           []abi.Hook        `json:"hooks"`
	FastPath        bool              `json:"fastPath"`
	Preemption      string            `json:"preemption,omitempty"`
	Defaulted       bool              `json:"defaulted,omitempty"`
	Calls           uint64            `json:"calls"`
	Errors          uint64            `json:"errors"`
	ErrorsByKind    map[string]uint64 `json:"errorsByKind,omitempty"`
	DeniedHostCalls uint64            `json:"deniedHostCalls"`
	P50Micros       float64           `json:"p50Us"`
	P99Micros       float64           `json:"p99Us"`
	IdleInstances   int               `json:"idleInstances"`
	InFlight        int               `json:"inFlight"`
	LoadedAt        *time.Time        `json:"loadedAt,omitempty"`
	LoadMillis      float64           `json:"loadMs,omitempty"`

	// BreakerCause is why the breaker is open or half-open: the failure that opened it
	// (a timeout, a trap, ...), with its error kind (ErrorKind) and time. Empty while the
	// breaker is closed. LastError then is usually the refusal ("circuit open").
	BreakerCause     string     `json:"breakerCause,omitempty"`
	BreakerCauseKind string     `json:"breakerCauseKind,omitempty"`
	BreakerCauseAt   *time.Time `json:"breakerCauseAt,omitempty"`
}

// Problem is the status's error for a one-line summary (routerctl plugin list): while
// the breaker is open or half-open, what opened it; otherwise LastError.
func (s PluginStatus) Problem() string {
	if s.BreakerCause != "" {
		return "circuit " + s.Breaker + " after " + s.BreakerCause
	}
	return s.LastError
}

// Status returns a snapshot of every plugin, sorted by name.
func (h *Host) Status() []PluginStatus {
	h.mu.RLock()
	entries := make([]*entry, 0, len(h.plugins))
	for _, e := range h.plugins {
		entries = append(entries, e)
	}
	h.mu.RUnlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	out := make([]PluginStatus, 0, len(entries))
	now := time.Now()
	for _, e := range entries {
		out = append(out, e.status(now))
	}
	return out
}

// status builds the entry's PluginStatus.
func (e *entry) status(now time.Time) PluginStatus {
	e.mu.Lock()
	spec, lerr := e.spec, e.loadErr
	e.mu.Unlock()
	st := PluginStatus{
		Name:      e.name,
		Module:    spec.Module,
		Grants:    append(slices.Clone(spec.Capabilities), spec.Grants.Names()...),
		Defaulted: spec.Defaulted,
		Breaker:   e.breaker.current(now).String(),
	}
	if st.Grants == nil {
		st.Grants = []string{}
	}
	e.stats.snapshot(&st)
	v := e.current.Load()
	switch {
	case v == nil:
		st.State = StateFailed
		st.Hooks = []abi.Hook{}
	case lerr != nil:
		st.State = StateStale
	case st.Breaker == BreakerOpen.String():
		st.State = StateCircuitOpen
	case st.Breaker == BreakerHalfOpen.String():
		st.State = StateHalfOpen
	default:
		st.State = StateReady
	}
	if lerr != nil {
		st.LastError = lerr.Error()
	}
	if st.Breaker != BreakerClosed.String() {
		e.stats.breakerCause(&st)
	}
	if v != nil {
		st.Version, st.Digest, st.FastPath = v.manifest.Version, v.digest, v.fast
		st.Preemption = PreemptCloseOnDone
		if v.preempt {
			st.Preemption = PreemptLoopCheck
		}
		st.Hooks = slices.Clone(v.hooks)
		st.IdleInstances, st.InFlight = v.idleCount()
		t := v.loadedAt
		st.LoadedAt = &t
		st.LoadMillis = float64(v.loadTook.Microseconds()) / 1e3
	}
	return st
}

// PluginInfo is the detail of one plugin (routerctl plugin inspect).
type PluginInfo struct {
	Status PluginStatus `json:"status"`
	// Manifest is what the module declares (nil when not loaded).
	Manifest *abi.Manifest `json:"manifest,omitempty"`
	// Spec is the effective Plugin resource (grants and limits after defaults).
	Spec Spec `json:"spec"`
	// Requested are the capabilities the manifest asks for.
	Requested []string `json:"requested"`
	// Granted are the capabilities the Plugin resource grants.
	Granted []string `json:"granted"`
	// Missing are requested but not granted (calls needing them will be denied).
	Missing []string `json:"missing"`
	// File is the module's path.
	File string `json:"file,omitempty"`
	// SizeBytes is the module's size.
	SizeBytes int64 `json:"sizeBytes,omitempty"`
}

// Inspect returns the detail of the plugin named name.
func (h *Host) Inspect(name string) (PluginInfo, error) {
	e := h.entry(name)
	if e == nil {
		return PluginInfo{}, &CallError{Plugin: name, Hook: "inspect", Kind: ErrNotLoaded, Detail: "no plugin of that name"}
	}
	e.mu.Lock()
	spec := e.spec
	e.mu.Unlock()
	info := PluginInfo{Status: e.status(time.Now()), Spec: spec, Requested: []string{}, Missing: []string{}}
	info.Granted = append(slices.Clone(spec.Capabilities), spec.Grants.Names()...)
	if info.Granted == nil {
		info.Granted = []string{}
	}
	if v := e.current.Load(); v != nil {
		m := *v.manifest
		info.Manifest, info.File, info.SizeBytes = &m, v.path, v.size
		for _, c := range m.Capabilities {
			info.Requested = append(info.Requested, string(c))
			if !slices.Contains(info.Granted, string(c)) {
				info.Missing = append(info.Missing, string(c))
			}
		}
	}
	return info, nil
}

// Close stops watching, waits up to 10 seconds for running calls, and releases every
// plugin and the compilation cache. It is safe to call more than once.
func (h *Host) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.Shutdown(ctx)
}

// Shutdown is Close with a caller-chosen deadline for running calls.
func (h *Host) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	w := h.watch
	h.watch = nil
	h.mu.Unlock()
	if w != nil {
		w.close()
	}
	h.cancel()
	h.trim.stop()
	names := h.Names()
	var versions []*version
	for _, n := range names {
		if e := h.entry(n); e != nil {
			if v := e.current.Load(); v != nil {
				versions = append(versions, v)
			}
		}
		h.Unload(n)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("host: shutdown: background work still running: %w", ctx.Err()))
	}
	for _, v := range versions {
		for {
			_, active := v.idleCount()
			if active == 0 {
				break
			}
			select {
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("host: shutdown: plugin %s: %d calls still running: %w", v.spec.Name, active, ctx.Err()))
				v.closeAll()
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
	}
	h.metrics.close()
	if h.cache != nil {
		if err := h.cache.Close(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("host: close compilation cache: %w", err))
		}
	}
	return errors.Join(errs...)
}

// dirOf returns the plugin directory, or "".
func (h *Host) dirOf() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.dir
}
