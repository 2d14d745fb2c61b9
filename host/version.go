package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/internal/datamerge"
	"routerd.net/routerd/host/internal/preempt"
	"routerd.net/routerd/host/internal/wasmbin"
)

// wasmMagic is the preamble of a binary Wasm module (magic and version 1).
var wasmMagic = wasmbin.Magic

// version is one loaded module file of a plugin: compiled code, manifest and a pool of
// instances. A plugin swaps versions atomically; a retired version closes when its last
// call ends.
type version struct {
	h        *Host
	spec     Spec
	path     string
	digest   string
	size     int64
	manifest *abi.Manifest
	compiled *extism.CompiledPlugin // shared with plugins bound to the same module (key)
	image    *memoryImage           // compiled's initial memory, nil when it is in the module
	key      compiledKey
	fast     bool
	preempt  bool             // instrumented with loop checks (see internal/preempt)
	hooks    []abi.Hook       // enabled hooks: declared by the manifest and enabled by the spec
	imports  []wasmbin.Import // the module's imports, to explain instantiation failures
	loadedAt time.Time
	loadTook time.Duration

	sem chan struct{} // one token per running call (limits.maxConcurrency)

	mu      sync.Mutex
	idle    []*instance
	active  int // calls that entered this version
	retired bool
	closed  bool
	warming int // instances being created in the background
}

// loadErr builds a LoadError for this version.
func (v *version) loadErr(kind error, detail string, err error) error {
	return &LoadError{Plugin: v.spec.Name, File: filepath.Base(v.path), Kind: kind, Detail: detail, Err: err}
}

// readModule reads and checks a module file: size limit, Wasm magic, sha256 pin. The
// size is checked before reading (a refused file costs nothing), and the file is read
// into one buffer of its size; the read stays bounded by the limit if the file grows
// meanwhile.
func (h *Host) readModule(path string, spec Spec) ([]byte, string, error) {
	lerr := func(kind error, detail string, err error) error {
		return &LoadError{Plugin: spec.Name, File: filepath.Base(path), Kind: kind, Detail: detail, Err: err}
	}
	tooLarge := func(size int64) error {
		return lerr(ErrBadModule, fmt.Sprintf("file is %d bytes, larger than the limit of %d bytes for a plugin module", size, h.opts.MaxModuleBytes), nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", lerr(ErrBadModule, "open: "+err.Error(), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", lerr(ErrBadModule, "stat: "+err.Error(), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", lerr(ErrBadModule, "not a regular file ("+fi.Mode().Type().String()+")", nil)
	}
	if fi.Size() > h.opts.MaxModuleBytes {
		return nil, "", tooLarge(fi.Size())
	}
	r := io.LimitReader(f, h.opts.MaxModuleBytes+1)
	data := make([]byte, fi.Size())
	n, err := io.ReadFull(r, data)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF): // shrunk since the stat: what is there
		data = data[:n]
	case err != nil:
		return nil, "", lerr(ErrBadModule, "read: "+err.Error(), err)
	}
	if m, _ := r.Read(make([]byte, 1)); m > 0 {
		// Grown since the stat: it is being written; the watcher loads it once quiet.
		rest, _ := io.Copy(io.Discard, r)
		if size := fi.Size() + 1 + rest; size > h.opts.MaxModuleBytes {
			return nil, "", tooLarge(size)
		}
		return nil, "", lerr(ErrBadModule, "file changed while being read (is it still being written?); it is loaded again when it is quiet", nil)
	}
	if !bytes.HasPrefix(data, wasmMagic) {
		head := data[:min(len(data), 8)]
		return nil, "", lerr(ErrBadModule, fmt.Sprintf("not a WebAssembly binary module: starts with %q, want \\0asm version 1", head), nil)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if spec.SHA256 != "" && spec.SHA256 != digest {
		return nil, "", lerr(ErrDigestMismatch, fmt.Sprintf("file has sha256 %s, Plugin resource pins %s", digest, spec.SHA256), nil)
	}
	return data, digest, nil
}

// moduleFile holds the bytes of a module file on their way down the loader, so the
// stage that copies them can drop them: passed down as a plain argument, the read
// buffer of a 60 MB module stayed reachable from the loader's frames until the load
// ended and resident through compilation next to its copies (TestLoadPeakRSS).
type moduleFile struct{ data []byte }

// take returns the bytes and forgets them.
func (m *moduleFile) take() []byte {
	d := m.data
	m.data = nil
	return d
}

// loadVersion compiles the module at path for spec, checks its manifest and exports,
// and warms its pool. On error nothing is left open.
func (h *Host) loadVersion(ctx context.Context, path string, spec Spec, file *moduleFile, digest string) (_ *version, err error) {
	start := time.Now()
	v := &version{
		h:      h,
		spec:   spec,
		path:   path,
		digest: digest,
		size:   int64(len(file.data)),
		sem:    make(chan struct{}, spec.Limits.MaxConcurrency),
	}
	code, perr := h.prepare(file, digest)
	v.imports = moduleImports(code)
	v.preempt = perr == nil
	if perr != nil {
		h.log.Info("plugin: loop-check instrumentation not applied; using close-on-context-done", "plugin", spec.Name, "reason", perr)
	}
	v.key = compiledKey{digest: digest, pages: spec.Limits.memoryPages(), preempt: v.preempt}
	sc, err := h.acquireCompiled(ctx, v.key, code)
	if err != nil {
		return nil, v.loadErr(ErrBadModule, "compile: "+cleanWazeroError(err), err)
	}
	v.compiled, v.image = sc.compiled, sc.image
	defer func() {
		if err != nil {
			v.closeAll()
		}
	}()

	in, out, err := v.newInstance(ctx)
	if err != nil {
		return nil, err
	}
	v.idle = append(v.idle, in)
	if err := v.checkManifest(out, in); err != nil {
		return nil, err
	}
	v.fast = in.fast()
	v.loadedAt = time.Now()
	v.loadTook = v.loadedAt.Sub(start)
	// The version serves from its first instance; the other warm instances are created
	// in the background (a call that finds none idle creates its own).
	for i := 1; i < spec.Limits.WarmInstances; i++ {
		v.warming++
		h.wg.Add(1)
		go v.refill()
	}
	return v, nil
}

// instrumentVersion names the format of cached instrumented modules; bump it when
// package preempt or datamerge changes its output.
const instrumentVersion = "p4"

// compactData returns module with its data segments coalesced (see package datamerge:
// a Go module's ~30,000 segments cost wazero ~2.5 MB per module and 0.75 MB per
// instance), or module itself when there is nothing to merge or it cannot be parsed (the
// compiler then reports what is wrong with it).
func compactData(module []byte) []byte {
	if out, changed, err := datamerge.Coalesce(module, datamerge.MaxGap); err == nil && changed {
		return out
	}
	return module
}

// largeModuleBytes is the module size from which a load returns each stage's garbage to
// the OS before the next stage copies the module again: without it, the read buffer,
// the instrumented copy, the merged copy and the stripped copy of a 60 MB module
// overlapped with the garbage the Go heap keeps until its next collection (~6x the
// module's size in resident memory, TestLoadPeakRSS).
const largeModuleBytes = 8 << 20

// releaseLoadGarbage returns free memory to the OS now when a stage of loading a module
// of size bytes left a copy of it behind.
func releaseLoadGarbage(size int) {
	if size >= largeModuleBytes {
		debug.FreeOSMemory()
	}
}

// prepare returns the code to compile: with loop checks patched in (cheap stops at a
// deadline) and data segments coalesced, or — for modules the rewriter cannot handle, or
// with Options.Preemption close-on-done — only coalesced, with the reason wazero's
// close-on-context-done (which exits to Go at every loop header) must stop its calls.
// It takes the file's bytes, so they can be collected once copied.
func (h *Host) prepare(file *moduleFile, digest string) ([]byte, error) {
	if h.opts.Preemption == PreemptCloseOnDone {
		return compactData(file.take()), errors.New("Options.Preemption is " + PreemptCloseOnDone)
	}
	code, err := h.instrument(file, digest) // on failure code is the file's bytes
	if err != nil {
		return compactData(code), err
	}
	return code, nil
}

// instrument returns the module with loop checks and coalesced data segments, from the
// cache directory when an earlier load stored it (rewriting a 3 MB Go module takes
// ~15 ms; reading it back ~1 ms). It takes the file's bytes; when the rewriter refuses
// the module it returns them and the reason.
func (h *Host) instrument(file *moduleFile, digest string) ([]byte, error) {
	data := file.take()
	var cached string
	if h.opts.CacheDir != "" {
		cached = filepath.Join(h.opts.CacheDir, "preempt-"+instrumentVersion+"-"+digest+".wasm")
		if b, err := os.ReadFile(cached); err == nil && bytes.HasPrefix(b, wasmMagic) {
			return b, nil
		}
	}
	size := len(data)
	code, err := preempt.Instrument(data)
	if err != nil {
		return data, err
	}
	releaseLoadGarbage(size)
	code = compactData(code)
	releaseLoadGarbage(size)
	if cached == "" {
		return code, nil
	}
	if tmp, terr := os.CreateTemp(h.opts.CacheDir, ".preempt-*"); terr == nil {
		_, werr := tmp.Write(code)
		cerr := tmp.Close()
		if werr == nil && cerr == nil {
			_ = os.Rename(tmp.Name(), cached)
		}
		_ = os.Remove(tmp.Name()) // no-op after the rename
	}
	return code, nil
}

// checkManifest decodes the manifest output: ABI major first (refused with
// ErrABIMismatch), then the rest of the manifest, then that every declared hook is
// exported.
func (v *version) checkManifest(out []byte, in *instance) error {
	var m abi.Manifest
	if err := json.Unmarshal(out, &m); err != nil {
		return v.loadErr(ErrBadModule, fmt.Sprintf("%s returned invalid JSON: %v", abi.ExportManifest, err), err)
	}
	if _, err := abi.CheckCompatible(m.ABI); err != nil {
		if errors.Is(err, abi.ErrIncompatibleVersion) {
			return v.loadErr(ErrABIMismatch, fmt.Sprintf("module declares abi %q; this host speaks %s (major versions must match)", m.ABI, abi.ManifestVersion), err)
		}
		return v.loadErr(ErrABIMismatch, fmt.Sprintf("module declares abi %q; want %s", m.ABI, abi.ManifestVersion), err)
	}
	if err := m.Validate(); err != nil {
		return v.loadErr(ErrBadModule, "manifest: "+err.Error(), err)
	}
	for _, hk := range m.Hooks {
		if !in.hookFn[hk] {
			return v.loadErr(ErrBadModule, fmt.Sprintf("manifest declares hook %s but the module does not export it", hk), nil)
		}
		if v.spec.hookEnabled(hk, m.Hooks) {
			v.hooks = append(v.hooks, hk)
		}
	}
	v.manifest = &m
	return nil
}

// hasHook reports whether hook is enabled.
func (v *version) hasHook(hook abi.Hook) bool {
	for _, h := range v.hooks {
		if h == hook {
			return true
		}
	}
	return false
}

// enter registers a call on the version; false if it was retired meanwhile.
func (v *version) enter() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired || v.closed {
		return false
	}
	v.active++
	return true
}

// leave ends a call; the last call of a retired version closes it.
func (v *version) leave() {
	v.mu.Lock()
	v.active--
	last := v.retired && v.active == 0 && v.warming == 0 && !v.closed
	v.mu.Unlock()
	if last {
		v.closeAll()
	}
}

// retire stops new calls from entering; the version closes when the running ones end.
func (v *version) retire() {
	v.mu.Lock()
	v.retired = true
	now := v.active == 0 && v.warming == 0 && !v.closed
	v.mu.Unlock()
	if now {
		v.closeAll()
	}
}

// closeAll closes the idle instances and the compiled module (its wazero runtime).
func (v *version) closeAll() {
	v.mu.Lock()
	if v.closed && v.compiled == nil {
		v.mu.Unlock()
		return
	}
	v.closed = true
	idle := v.idle
	v.idle = nil
	compiled := v.compiled
	v.compiled = nil
	v.mu.Unlock()
	for _, in := range idle {
		in.close()
	}
	if compiled != nil {
		v.h.releaseCompiled(v.key)
	}
}

// compiledKey identifies a compiled module: the same file under the same runtime
// settings (memory cap, preemption mode) compiles to the same thing.
type compiledKey struct {
	digest  string
	pages   uint32
	preempt bool
}

// sharedCompiled is a compiled module (its own wazero runtime) and how many plugin
// versions use it.
type sharedCompiled struct {
	compiled *extism.CompiledPlugin
	image    *memoryImage // the module's initial memory when moved out of it (see slim.go)
	refs     int
}

// acquireCompiled returns the compiled module for key, compiling code on first use.
func (h *Host) acquireCompiled(ctx context.Context, key compiledKey, code []byte) (*sharedCompiled, error) {
	h.compiledMu.Lock()
	defer h.compiledMu.Unlock()
	if sc, ok := h.compiled[key]; ok {
		sc.refs++
		return sc, nil
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(!key.preempt).
		WithMemoryLimitPages(key.pages)
	if h.cache != nil {
		rc = rc.WithCompilationCache(h.cache)
	}
	size := len(code)
	image, code := h.extractImage(key.digest, code)
	releaseLoadGarbage(size)
	cctx := experimental.WithFunctionListenerFactory(ctx, captureFactory{})
	manifest := extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: code, Name: "main"}}}
	compiled, err := extism.NewCompiledPlugin(cctx, manifest, extism.PluginConfig{RuntimeConfig: rc, EnableWasi: true}, append(h.hostFunctions(), preemptYield()))
	if err != nil {
		image.close()
		return nil, err
	}
	h.slim(key.digest, compiled)
	sc := &sharedCompiled{compiled: compiled, image: image, refs: 1}
	h.compiled[key] = sc
	return sc, nil
}

// releaseCompiled drops one use of key's compiled module and closes it after the last.
func (h *Host) releaseCompiled(key compiledKey) {
	h.compiledMu.Lock()
	sc, ok := h.compiled[key]
	if ok {
		sc.refs--
		if sc.refs > 0 {
			ok = false
		} else {
			delete(h.compiled, key)
		}
	}
	h.compiledMu.Unlock()
	if ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sc.compiled.Close(ctx)
		sc.image.close()
	}
}

// instanceInitTimeout is the least time a new instance gets for its initialisation and
// manifest call (a call's own limits.timeout starts once it has an instance).
const instanceInitTimeout = 10 * time.Second

// acquire takes a concurrency token and an instance (idle, or a new one).
func (v *version) acquire(ctx context.Context) (*instance, error) {
	select {
	case v.sem <- struct{}{}:
	default:
		select {
		case v.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	v.mu.Lock()
	if n := len(v.idle); n > 0 {
		in := v.idle[n-1]
		v.idle = v.idle[:n-1]
		v.mu.Unlock()
		return in, nil
	}
	v.mu.Unlock()
	in, _, err := v.newInstance(ctx)
	if err != nil {
		<-v.sem
		return nil, err
	}
	return in, nil
}

// release returns an instance: a healthy one goes back to the idle pool (up to
// limits.warmInstances), an unhealthy one is closed and replaced in the background.
func (v *version) release(in *instance, healthy bool) {
	v.mu.Lock()
	keep := healthy && !v.closed && len(v.idle) < v.spec.Limits.WarmInstances
	if keep {
		v.idle = append(v.idle, in)
	}
	refill := !healthy && !v.retired && !v.closed && len(v.idle)+v.warming < v.spec.Limits.WarmInstances
	if refill {
		v.warming++
	}
	v.mu.Unlock()
	<-v.sem
	if !keep {
		in.close()
	}
	if refill {
		v.h.wg.Add(1)
		go v.refill()
	}
}

// refill creates one instance for the idle pool after an unhealthy one was discarded.
func (v *version) refill() {
	defer v.h.wg.Done()
	ctx, cancel := context.WithTimeout(v.h.ctx, 30*time.Second)
	defer cancel()
	in, _, err := v.newInstance(ctx)
	v.mu.Lock()
	v.warming--
	keep := err == nil && !v.closed && !v.retired && len(v.idle) < v.spec.Limits.WarmInstances
	if keep {
		v.idle = append(v.idle, in)
	}
	last := v.retired && v.active == 0 && v.warming == 0 && !v.closed
	v.mu.Unlock()
	if err != nil && v.h.ctx.Err() == nil { // failing because the host closes is no news
		v.h.log.Warn("plugin instance refill failed", "plugin", v.spec.Name, "err", err)
	}
	v.h.trim.schedule()
	if err == nil && !keep {
		in.close()
	}
	if last {
		v.closeAll()
	}
}

// idleCount returns the number of idle instances.
func (v *version) idleCount() (idle, active int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.idle), v.active
}
