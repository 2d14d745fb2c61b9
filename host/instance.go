package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
	"go.opentelemetry.io/otel/metric"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
	"routerd.net/routerd/host/internal/preempt"
)

// The Extism go-sdk keeps the instance's main wazero module private. The host needs it
// for the fast path, so it compiles every module with a function listener on the
// routerd_manifest export: when the host calls the manifest of a new instance through
// Extism, the listener sees the main module and, in the call's context, the Extism
// kernel module and the *extism.Plugin, and stores them in the capture the host put in
// that context. Functions other than routerd_manifest get no listener and no overhead.

// captureKey is the context key of the *capture filled by the listener.
type captureKey struct{}

// capture receives the modules of an instance during its first call.
type capture struct {
	main   api.Module
	kernel api.Module
	// onMain runs once the main module is known (arms the stop timer of the
	// initialisation, so even a module looping in its Go init functions is stopped).
	onMain func(api.Module)
	// disarm releases the timer onMain armed (nil when none).
	disarm func() bool
	// imageErr is why onMain could not load the module's memory image.
	imageErr error
}

// captureFactory attaches captureListener to _initialize (the WASI reactor's start,
// run by Extism before the first export) and routerd_manifest only.
type captureFactory struct{}

// NewFunctionListener implements experimental.FunctionListenerFactory.
func (captureFactory) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	for _, n := range def.ExportNames() {
		if n == abi.ExportManifest || n == "_initialize" {
			return captureListener{}
		}
	}
	return nil
}

// captureListener stores the called module in the context's capture.
type captureListener struct{}

// Before implements experimental.FunctionListener.
func (captureListener) Before(ctx context.Context, mod api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	c, ok := ctx.Value(captureKey{}).(*capture)
	if !ok || c.main != nil {
		return
	}
	c.main = mod
	c.kernel, _ = ctx.Value(extism.PluginCtxKey("extism")).(api.Module)
	if st, ok := ctx.Value(callStateKey{}).(*callState); ok {
		st.bind(mod, c.kernel)
	}
	if c.onMain != nil {
		c.onMain(mod)
	}
}

// After implements experimental.FunctionListener.
func (captureListener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}

// Abort implements experimental.FunctionListener.
func (captureListener) Abort(context.Context, api.Module, api.FunctionDefinition, error) {}

// callStateKey is the context key of the *callState host functions read.
type callStateKey struct{}

// callState is what host functions need to know about the running call.
type callState struct {
	call    capability.Call
	records []capability.Record // host-function calls made, when recording
	record  bool

	// guest is the plugin module's linear memory (routerd:direct calls), kernel the
	// instance's Extism kernel (routerd calls); both nil until the instance's first
	// export runs. pending is a routerd:direct response that did not fit the guest's
	// buffer, until the guest takes it or makes its next host call.
	guest   api.Memory
	kernel  *kernelMemory
	pending []byte
	// attrs are the metric attributes of each host function (by index in Host.funcs),
	// built on first use.
	attrs []metric.MeasurementOption
}

// bind records the instance's modules, once they are known.
func (st *callState) bind(main, kernel api.Module) {
	st.guest = main.Memory()
	if kernel != nil {
		st.kernel = &kernelMemory{mod: kernel}
	}
}

// kernelMemory returns the instance's kernel accessor (nil when unknown).
func (st *callState) kernelMemory() *kernelMemory {
	if st == nil {
		return nil
	}
	return st.kernel
}

// callCtx is the context of a fast-path call: the caller's context (with its deadline)
// plus the values the Extism host-function wrappers and ours look up. It answers those
// lookups without a chain of context.WithValue allocations.
type callCtx struct {
	context.Context
	in *instance
}

// Value implements context.Context.
func (c *callCtx) Value(key any) any {
	switch key {
	case extism.PluginCtxKey("plugin"):
		return c.in.plugin
	case extism.PluginCtxKey("extism"):
		return c.in.kernel
	case callStateKey{}:
		return c.in.state
	case stopKey{}:
		return &c.in.stopped
	}
	return c.Context.Value(key)
}

// instance is one instantiated copy of a plugin version. It is used by one call at a
// time (the pool hands it out exclusively).
type instance struct {
	v      *version
	plugin *extism.Plugin
	mem    *instanceMemory // the linear memories of plugin's modules
	main   api.Module      // the plugin's own module (nil for a failed capture)
	kernel api.Module      // the Extism kernel module of this instance
	stderr *tail
	state  *callState

	// Fast path (nil when the module lacks routerd_buffer/routerd_call).
	bufFn, callFn api.Function
	bufPtr        uint32
	bufCap        uint32
	stack         [2]uint64
	// hookFn are the Extism-path exports, by hook.
	hookFn map[abi.Hook]bool

	// stopped is the stop flag of an instrumented version (see internal/preempt): set
	// when the call's context ends, read by the guest's loop checks through
	// preemptYield. It stays set: a stopped instance is not reused.
	stopped atomic.Bool
}

// fireStop makes the guest trap at its next loop check.
func (in *instance) fireStop() { in.stopped.Store(true) }

// armStop sets the stop flag when ctx ends; call the returned function when the call
// returns. For a version without loop checks it does nothing (wazero closes the module
// instead).
func (in *instance) armStop(ctx context.Context) func() bool {
	if !in.v.preempt {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, in.fireStop)
}

// stopKey is the context key of the running instance's stop flag (*atomic.Bool).
type stopKey struct{}

// preemptYield is the host function the loop checks of an instrumented module call
// every preempt.Budget iterations: it returns 1 when the running call's stop flag is set.
// Being a host call, it also returns the goroutine to Go, where the scheduler and the
// garbage collector can stop it. The flag is an atomic.Bool, written by the deadline
// timer's goroutine and read here.
func preemptYield() extism.HostFunction {
	f := extism.NewHostFunctionWithStack(preempt.ImportName, func(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
		stack[0] = 0
		if s, ok := ctx.Value(stopKey{}).(*atomic.Bool); ok && s.Load() {
			stack[0] = 1
		}
	}, nil, []extism.ValueType{extism.ValueTypeI32})
	f.SetNamespace(preempt.ImportModule)
	return f
}

// tail keeps what the guest wrote to stdout/stderr during the current call — the first
// KiB (where the Go runtime puts "panic: ..." or "fatal error: ...") and the last 4 KiB —
// for error details.
type tail struct {
	mu   sync.Mutex
	head []byte
	buf  []byte
	max  int
}

const tailHead = 1024

func newTail(max int) *tail { return &tail{max: max} }

// Write implements io.Writer.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := tailHead - len(t.head); room > 0 {
		t.head = append(t.head, p[:min(room, len(p))]...)
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) reset() {
	t.mu.Lock()
	t.head, t.buf = t.head[:0], t.buf[:0]
	t.mu.Unlock()
}

// String returns the head and the tail (once when they overlap).
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.head) < tailHead || len(t.buf) < t.max {
		return strings.TrimSpace(string(t.buf))
	}
	return strings.TrimSpace(string(t.head) + "\n…\n" + string(t.buf))
}

// newInstance instantiates the version's compiled module, runs its initialisation and
// manifest through Extism (capturing the wazero modules) and resolves the fast-path
// exports. It returns the manifest output as well.
func (v *version) newInstance(ctx context.Context) (*instance, []byte, error) {
	stderr := newTail(4096)
	mc := wazero.NewModuleConfig().
		WithStderr(stderr).
		WithStdout(stderr).
		WithRandSource(rand.Reader)
	g := &v.spec.Grants
	if g.WASI.Env {
		for k, val := range v.spec.Env {
			mc = mc.WithEnv(k, val)
		}
	}
	if len(g.WASI.Files) > 0 {
		fs := wazero.NewFSConfig()
		for _, f := range g.WASI.Files {
			if f.ReadOnly {
				fs = fs.WithReadOnlyDirMount(f.HostPath, f.GuestPath)
			} else {
				fs = fs.WithDirMount(f.HostPath, f.GuestPath)
			}
		}
		mc = mc.WithFSConfig(fs)
	}
	im := &instanceMemory{}
	p, err := v.compiled.Instance(experimental.WithMemoryAllocator(ctx, im.allocator()), extism.PluginInstanceConfig{ModuleConfig: mc})
	if err != nil {
		im.release()
		return nil, nil, v.loadErr(ErrBadModule, v.instantiateDetail(err), err)
	}
	in := &instance{
		v:      v,
		plugin: p,
		mem:    im,
		stderr: stderr,
		state:  &callState{call: capability.Call{Plugin: v.spec.Name, Hook: abi.ExportManifest, Grants: g, DryRun: v.h.opts.DryRun}},
		hookFn: make(map[abi.Hook]bool),
	}
	im.guard(in)
	p.SetLogger(func(level extism.LogLevel, msg string) {
		v.h.log.Debug("extism", "plugin", v.spec.Name, "level", level.String(), "msg", msg)
	})
	if !p.FunctionExists(abi.ExportManifest) {
		in.close()
		return nil, nil, v.loadErr(ErrBadModule, "module lacks the export "+abi.ExportManifest+" (is it a routerd plugin?)", nil)
	}
	for _, h := range abi.Hooks() {
		in.hookFn[h] = p.FunctionExists(string(h))
	}

	c := &capture{}
	initTimeout := max(v.spec.Limits.Timeout, instanceInitTimeout)
	mctx, cancel := context.WithTimeout(ctx, initTimeout)
	defer cancel()
	c.onMain = func(mod api.Module) {
		if v.image != nil {
			c.imageErr = in.mem.loadImage(mod.Memory(), v.image)
		}
		c.disarm = in.armStop(mctx)
		if c.imageErr != nil {
			cancel() // the module must not run without its data: stop it at once
		}
	}
	mctx = context.WithValue(mctx, captureKey{}, c)
	mctx = context.WithValue(mctx, callStateKey{}, in.state)
	mctx = context.WithValue(mctx, stopKey{}, &in.stopped)
	rc, out, err := p.CallWithContext(mctx, abi.ExportManifest, nil)
	if c.disarm != nil {
		c.disarm()
	}
	if c.imageErr != nil {
		in.close()
		return nil, nil, v.loadErr(ErrBadModule, "initial memory: "+c.imageErr.Error(), c.imageErr)
	}
	if err == nil && rc != 0 {
		err = fmt.Errorf("returned status %d", rc)
	}
	if err != nil {
		kind, detail := in.classify(mctx, err)
		in.close()
		if kind == ErrTimeout {
			detail = fmt.Sprintf("initialisation and %s did not finish within %v", abi.ExportManifest, initTimeout)
		}
		return nil, nil, v.loadErr(kind, abi.ExportManifest+": "+detail, err)
	}
	if in.stopped.Load() {
		in.close()
		return nil, nil, v.loadErr(ErrTimeout, fmt.Sprintf("initialisation and %s did not finish within %v", abi.ExportManifest, initTimeout), nil)
	}
	in.main, in.kernel = c.main, c.kernel
	if in.main != nil && in.kernel != nil {
		in.bufFn = in.main.ExportedFunction(abi.ExportBuffer)
		in.callFn = in.main.ExportedFunction(abi.ExportCall)
		if !fastSignatures(in.bufFn, in.callFn) {
			in.bufFn, in.callFn = nil, nil
		}
	}
	in.state.call.Hook = ""
	return in, out, nil
}

// fastSignatures checks routerd_buffer(i32) i32 and routerd_call(i32, i32) i64.
func fastSignatures(buf, call api.Function) bool {
	if buf == nil || call == nil {
		return false
	}
	b, c := buf.Definition(), call.Definition()
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	return equalTypes(b.ParamTypes(), i32) && equalTypes(b.ResultTypes(), i32) &&
		equalTypes(c.ParamTypes(), i32, i32) && equalTypes(c.ResultTypes(), i64)
}

func equalTypes(got []api.ValueType, want ...api.ValueType) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// fast reports whether the instance has the fast-path exports.
func (in *instance) fast() bool { return in.callFn != nil }

// call runs hook on input. It returns the output, or an error kind (one of the Err*
// sentinels) with a detail, and whether the instance is still healthy (reusable).
func (in *instance) call(ctx context.Context, hook abi.Hook, input []byte) (out []byte, kind error, detail string, healthy bool) {
	in.stderr.reset()
	in.state.call.Hook = string(hook)
	in.state.records = in.state.records[:0]
	in.state.pending = nil
	defer func() { in.state.call.Hook = "" }()
	if in.fast() {
		return in.callFast(ctx, hook, input)
	}
	return in.callExtism(ctx, hook, input)
}

// callFast writes input into the guest's buffer, calls routerd_call and copies the
// output out of guest memory: two boundary crossings (one more when the buffer grows).
func (in *instance) callFast(ctx context.Context, hook abi.Hook, input []byte) ([]byte, error, string, bool) {
	id, _ := hook.ID()
	cctx := &callCtx{Context: ctx, in: in}
	n := uint32(len(input))
	if n > in.bufCap || in.bufCap == 0 {
		want := max(n, 4096)
		in.stack[0] = uint64(want)
		if err := in.bufFn.CallWithStack(cctx, in.stack[:]); err != nil {
			kind, detail := in.classify(ctx, err)
			return nil, kind, abi.ExportBuffer + ": " + detail, false
		}
		in.bufPtr, in.bufCap = uint32(in.stack[0]), want
	}
	mem := in.main.Memory()
	if !mem.Write(in.bufPtr, input) {
		return nil, ErrBadOutput, fmt.Sprintf("%s returned buffer %#x of %d bytes outside guest memory (%d bytes)", abi.ExportBuffer, in.bufPtr, n, mem.Size()), false
	}
	in.stack[0], in.stack[1] = uint64(id), uint64(n)
	stop := in.armStop(ctx)
	err := in.callFn.CallWithStack(cctx, in.stack[:])
	// A deadline that fired as the call returned has set the stop flag: the result
	// stands, but the instance would trap on its next call, so it is not reused.
	reusable := stop()
	if err != nil {
		kind, detail := in.classify(ctx, err)
		return nil, kind, detail, false
	}
	ptr, ln, failed := abi.DecodeCallResult(in.stack[0])
	if !failed && int(ln) > in.v.spec.Limits.MaxOutputBytes {
		return nil, ErrOutputTooLarge, fmt.Sprintf("%d bytes, limit %d (limits.maxOutputBytes)", ln, in.v.spec.Limits.MaxOutputBytes), false
	}
	buf, ok := mem.Read(ptr, ln)
	if !ok {
		return nil, ErrBadOutput, fmt.Sprintf("%s returned %d bytes at %#x, outside guest memory", abi.ExportCall, ln, ptr), false
	}
	if failed {
		return nil, ErrGuest, truncate(string(buf), 512), reusable
	}
	return append([]byte(nil), buf...), nil, "", reusable
}

// callExtism runs the hook export through the Extism call path (modules without the
// fast-path exports, e.g. written with an Extism PDK).
func (in *instance) callExtism(ctx context.Context, hook abi.Hook, input []byte) ([]byte, error, string, bool) {
	if !in.hookFn[hook] {
		return nil, ErrNoHook, "module does not export " + string(hook), true
	}
	ctx = context.WithValue(ctx, callStateKey{}, in.state)
	ctx = context.WithValue(ctx, stopKey{}, &in.stopped)
	stop := in.armStop(ctx)
	rc, out, err := in.plugin.CallWithContext(ctx, string(hook), input)
	reusable := stop() // see callFast
	if err != nil {
		if msg := in.plugin.GetError(); msg != "" && msg == err.Error() {
			return nil, ErrGuest, truncate(msg, 512), reusable
		}
		kind, detail := in.classify(ctx, err)
		return nil, kind, detail, false
	}
	if rc != 0 {
		return nil, ErrGuest, fmt.Sprintf("returned status %d", rc), reusable
	}
	if len(out) > in.v.spec.Limits.MaxOutputBytes {
		return nil, ErrOutputTooLarge, fmt.Sprintf("%d bytes, limit %d (limits.maxOutputBytes)", len(out), in.v.spec.Limits.MaxOutputBytes), false
	}
	return out, nil, "", reusable
}

// classify maps a wazero call error to an error kind and a detail for the operator.
func (in *instance) classify(ctx context.Context, err error) (error, string) {
	out := in.stderr.String()
	var exit *sys.ExitError
	if in.stopped.Load() {
		if errors.Is(ctx.Err(), context.Canceled) {
			return errCanceled, "canceled by the caller"
		}
		return ErrTimeout, fmt.Sprintf("did not finish within %v (limits.timeout or the caller's deadline); instance stopped", in.v.spec.Limits.Timeout)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded):
		return ErrTimeout, fmt.Sprintf("did not finish within %v (limits.timeout or the caller's deadline); instance closed", in.v.spec.Limits.Timeout)
	case errors.Is(err, context.Canceled) || (errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled):
		return errCanceled, "canceled by the caller"
	case in.hitMemoryLimit(out):
		return ErrMemoryLimit, fmt.Sprintf("guest memory reached limits.memoryMiB %d", in.v.spec.Limits.MemoryMiB) + lastLine(out)
	case errors.As(err, &exit):
		return ErrTrap, fmt.Sprintf("guest exited with code %d", exit.ExitCode()) + lastLine(out)
	}
	return ErrTrap, cleanWazeroError(err) + lastLine(out)
}

// hitMemoryLimit reports whether a failure came from the memory cap: the Go runtime
// (and most guest allocators) report "out of memory" when memory.grow fails, and a
// memory at (or within one grow step of) the cap tells the same.
func (in *instance) hitMemoryLimit(stderr string) bool {
	if strings.Contains(stderr, "out of memory") {
		return true
	}
	limit := uint64(in.v.spec.Limits.memoryPages()) * 65536
	const slack = 4 << 20
	for _, m := range []api.Module{in.main, in.kernel} {
		if m == nil {
			continue
		}
		if mem := m.Memory(); mem != nil && uint64(mem.Size())+slack >= limit {
			return true
		}
	}
	return false
}

// close releases the instance's modules and their memory. No call may be running on it.
func (in *instance) close() {
	if in.plugin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = in.plugin.Close(ctx)
		in.plugin = nil
	}
	in.mem.release()
}

// lastLine returns ": <last line of s>" or "" (the guest's own explanation of a crash,
// e.g. "panic: ...").
func lastLine(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	// Prefer the panic / fatal error line over the goroutine trace that follows it.
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return ": guest said: " + truncate(strings.TrimSpace(l), 300)
		}
	}
	return ": guest said: " + truncate(strings.TrimSpace(lines[len(lines)-1]), 300)
}

// cleanWazeroError keeps the first line of a wazero error (the wasm stack trace follows).
func cleanWazeroError(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return truncate(s, 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
