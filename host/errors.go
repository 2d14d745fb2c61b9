package host

import (
	"errors"
	"fmt"
)

// Error kinds. Every error the host returns for a call or a load wraps exactly one of
// these, so callers test with errors.Is(err, host.ErrTimeout) and metrics count by kind.
var (
	// ErrTimeout: the call ran past limits.timeout (or the caller's deadline); the
	// instance was closed.
	ErrTimeout = errors.New("timeout")
	// ErrMemoryLimit: the guest tried to grow its memory past limits.memoryMiB.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrOutputTooLarge: the guest produced more than limits.maxOutputBytes.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrTrap: the guest trapped, panicked or exited.
	ErrTrap = errors.New("trap")
	// ErrBadOutput: the guest's output is not the JSON document the hook must return.
	ErrBadOutput = errors.New("bad output")
	// ErrGuest: the guest reported an error for this call (status 1 / error bit set).
	ErrGuest = errors.New("plugin error")
	// ErrCircuitOpen: the plugin failed too often in a row; calls are refused until the
	// breaker's cool-down ends.
	ErrCircuitOpen = errors.New("circuit open")
	// ErrABIMismatch: the module speaks an ABI major this host does not.
	ErrABIMismatch = errors.New("abi mismatch")
	// ErrBadModule: the file is not a usable plugin module (not Wasm, too large, lacks
	// required exports, bad manifest, unresolvable imports).
	ErrBadModule = errors.New("bad module")
	// ErrDigestMismatch: the module's sha256 differs from the Plugin resource's pin.
	ErrDigestMismatch = errors.New("sha256 mismatch")
	// ErrNoHook: the plugin does not declare or enable the hook that was called.
	ErrNoHook = errors.New("hook not available")
	// ErrNotLoaded: no plugin of that name is loaded.
	ErrNotLoaded = errors.New("plugin not loaded")
	// ErrClosed: the host (or the plugin version) is closed.
	ErrClosed = errors.New("closed")
	// ErrCanceled: the caller canceled the call (not the plugin's fault; the breaker
	// ignores it).
	ErrCanceled = errors.New("canceled")
)

// errCanceled is the internal name used by the classifier.
var errCanceled = ErrCanceled

// kinds lists the error kinds with the short names used in metrics and Status.
var kinds = []struct {
	err  error
	name string
}{
	{ErrTimeout, "timeout"},
	{ErrMemoryLimit, "memory_limit"},
	{ErrOutputTooLarge, "output_too_large"},
	{ErrTrap, "trap"},
	{ErrBadOutput, "bad_output"},
	{ErrGuest, "plugin_error"},
	{ErrCircuitOpen, "circuit_open"},
	{ErrABIMismatch, "abi_mismatch"},
	{ErrBadModule, "bad_module"},
	{ErrDigestMismatch, "digest_mismatch"},
	{ErrNoHook, "no_hook"},
	{ErrNotLoaded, "not_loaded"},
	{ErrClosed, "closed"},
	{ErrCanceled, "canceled"},
}

// ErrorKind returns the short name of err's kind ("timeout", "trap", ...), "canceled"
// for a caller's cancellation, or "other".
func ErrorKind(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// CallError is the error of one plugin call. It names the plugin and hook, matches its
// Kind with errors.Is and unwraps to the underlying cause.
type CallError struct {
	Plugin string
	Hook   string
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Detail says what happened, in words safe to show an operator.
	Detail string
	// Err is the underlying cause (may be nil).
	Err error
}

// Error implements error: "plugin NAME: HOOK: KIND: DETAIL".
func (e *CallError) Error() string {
	msg := fmt.Sprintf("plugin %s: %s: %v", e.Plugin, e.Hook, e.Kind)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is reports whether target is the error's kind.
func (e *CallError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *CallError) Unwrap() error { return e.Err }

// LoadError is the error of loading one module file.
type LoadError struct {
	Plugin string
	File   string
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Detail says what is wrong with the file.
	Detail string
	// Err is the underlying cause (may be nil).
	Err error
}

// Error implements error: "plugin NAME: load FILE: KIND: DETAIL".
func (e *LoadError) Error() string {
	msg := fmt.Sprintf("plugin %s: load %s: %v", e.Plugin, e.File, e.Kind)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is reports whether target is the error's kind.
func (e *LoadError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *LoadError) Unwrap() error { return e.Err }
