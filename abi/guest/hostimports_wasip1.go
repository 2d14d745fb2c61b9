//go:build wasip1

package guest

import "unsafe"

// Host functions of module "routerd:direct" (abi.HostModuleDirect): the request and the
// response stay in this module's linear memory, so a host call is one boundary crossing
// (two when the response is larger than the reused response buffer). Module "routerd"
// offers the same functions with Extism memory blocks for Extism PDK plugins; going
// through the Extism kernel costs a crossing per 8 bytes. Each wrapper references only
// its own import, so the linker keeps only the imports a plugin really calls.

//go:wasmimport routerd:direct log
func hostLog(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct event_emit
func hostEventEmit(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct config_get
func hostConfigGet(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct kv_get
func hostKVGet(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct kv_set
func hostKVSet(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct now
func hostNow(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct provider_request
func hostProviderRequest(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

//go:wasmimport routerd:direct response
func hostResponse(resp unsafe.Pointer, respCap uint32) uint32

// hostFunc is the signature of the routerd:direct host functions.
type hostFunc = func(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

// Response buffer reused across host calls: decoded values never alias it (the
// response decoder copies into its own arena). Responses up to maxKeptResponse grow it;
// larger ones get a buffer of their own.
const (
	initialResponse = 1024
	maxKeptResponse = 64 << 10
)

var hostResp []byte

// callHost passes req to f and returns the response bytes, valid until the next host
// call.
func callHost(req []byte, f hostFunc) ([]byte, error) {
	if hostResp == nil {
		hostResp = make([]byte, initialResponse)
	}
	buf := hostResp
	n := f(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if n > uint32(len(buf)) {
		buf = make([]byte, n)
		if n <= maxKeptResponse {
			hostResp = buf
		}
		if hostResponse(unsafe.Pointer(&buf[0]), n) != n {
			n = 0
		}
	}
	if n == 0 {
		return nil, internalError("host function returned no response")
	}
	return buf[:n], nil
}

func callLog(req []byte) ([]byte, error)       { return callHost(req, hostLog) }
func callEventEmit(req []byte) ([]byte, error) { return callHost(req, hostEventEmit) }
func callConfigGet(req []byte) ([]byte, error) { return callHost(req, hostConfigGet) }
func callKVGet(req []byte) ([]byte, error)     { return callHost(req, hostKVGet) }
func callKVSet(req []byte) ([]byte, error)     { return callHost(req, hostKVSet) }
func callNow(req []byte) ([]byte, error)       { return callHost(req, hostNow) }
func callProviderRequest(req []byte) ([]byte, error) {
	return callHost(req, hostProviderRequest)
}
