//go:build wasip1

package guest

// Host functions of module "routerd" (Extism convention: i64 block offset in, i64 block
// offset out). Each wrapper references only its own import, so the linker keeps only the
// imports a plugin really calls and the host can refuse to link ungranted ones.

//go:wasmimport routerd log
func hostLog(offset uint64) uint64

//go:wasmimport routerd event_emit
func hostEventEmit(offset uint64) uint64

//go:wasmimport routerd config_get
func hostConfigGet(offset uint64) uint64

//go:wasmimport routerd kv_get
func hostKVGet(offset uint64) uint64

//go:wasmimport routerd kv_set
func hostKVSet(offset uint64) uint64

//go:wasmimport routerd now
func hostNow(offset uint64) uint64

//go:wasmimport routerd provider_request
func hostProviderRequest(offset uint64) uint64

// callHost stores req in kernel memory, calls the import and returns the response bytes.
func callHost(req []byte, f func(uint64) uint64) ([]byte, error) {
	in := store(req)
	outOff := f(in)
	extismFree(in)
	out := load(outOff)
	if outOff != 0 {
		extismFree(outOff)
	}
	if len(out) == 0 {
		return nil, internalError("host function returned no response")
	}
	return out, nil
}

func callLog(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostLog(o) })
}

func callEventEmit(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostEventEmit(o) })
}

func callConfigGet(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostConfigGet(o) })
}

func callKVGet(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostKVGet(o) })
}

func callKVSet(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostKVSet(o) })
}

func callNow(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostNow(o) })
}

func callProviderRequest(req []byte) ([]byte, error) {
	return callHost(req, func(o uint64) uint64 { return hostProviderRequest(o) })
}
