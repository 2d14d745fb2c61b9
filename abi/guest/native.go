//go:build !wasip1

package guest

import "routerd.net/routerd/abi"

// Outside a Wasm guest there is no host: every host function reports "unsupported".

func notInWasm(fn string) error {
	return abi.NewError(abi.ErrCodeUnsupported, "host function "+fn+" is only available inside a wasip1 guest")
}

func callLog([]byte) ([]byte, error)             { return nil, notInWasm(abi.FuncLog) }
func callEventEmit([]byte) ([]byte, error)       { return nil, notInWasm(abi.FuncEventEmit) }
func callConfigGet([]byte) ([]byte, error)       { return nil, notInWasm(abi.FuncConfigGet) }
func callKVGet([]byte) ([]byte, error)           { return nil, notInWasm(abi.FuncKVGet) }
func callKVSet([]byte) ([]byte, error)           { return nil, notInWasm(abi.FuncKVSet) }
func callNow([]byte) ([]byte, error)             { return nil, notInWasm(abi.FuncNow) }
func callProviderRequest([]byte) ([]byte, error) { return nil, notInWasm(abi.FuncProviderRequest) }
