//go:build !wasip1

package guest

import "routerd.net/routerd/abi"

// Outside a Wasm guest there is no host: every host function reports "unsupported".

func notInWasm(fn string) error {
	return abi.NewError(abi.ErrCodeUnsupported, "host function "+fn+" is only available inside a wasip1 guest")
}

// nativeHost, when set (by tests), answers the host-function calls outside Wasm.
var nativeHost func(fn string, req []byte) ([]byte, error)

func callNative(fn string, req []byte) ([]byte, error) {
	if nativeHost != nil {
		return nativeHost(fn, req)
	}
	return nil, notInWasm(fn)
}

func callLog(req []byte) ([]byte, error)       { return callNative(abi.FuncLog, req) }
func callEventEmit(req []byte) ([]byte, error) { return callNative(abi.FuncEventEmit, req) }
func callConfigGet(req []byte) ([]byte, error) { return callNative(abi.FuncConfigGet, req) }
func callKVGet(req []byte) ([]byte, error)     { return callNative(abi.FuncKVGet, req) }
func callKVSet(req []byte) ([]byte, error)     { return callNative(abi.FuncKVSet, req) }
func callNow(req []byte) ([]byte, error)       { return callNative(abi.FuncNow, req) }
func callProviderRequest(req []byte) ([]byte, error) {
	return callNative(abi.FuncProviderRequest, req)
}

// nativeVars backs Var/SetVar outside Wasm, so plugin logic using them can be unit-tested
// natively (single-threaded, like a guest instance).
var nativeVars = map[string][]byte{}

// ConfigValue returns the Extism plugin config value of key; outside Wasm there is no
// config and it always reports false.
func ConfigValue(key string) (string, bool) { return "", false }

// Var returns the plugin variable key (outside Wasm: from an in-process map).
func Var(key string) ([]byte, bool) {
	v, ok := nativeVars[key]
	return v, ok
}

// SetVar sets the plugin variable key (outside Wasm: in an in-process map).
func SetVar(key string, value []byte) { nativeVars[key] = append([]byte(nil), value...) }

// ExtismLog writes to the Extism log; outside Wasm it does nothing.
func ExtismLog(level, msg string) {}
