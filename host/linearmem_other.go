//go:build !linux

package host

import "errors"

// reserveSupported: elsewhere wazero keeps guest memory on the Go heap.
const reserveSupported = false

// region is unused where reserving memory is not supported.
type region struct{}

func reserve(uint64) (*region, error) {
	return nil, errors.New("host: reserving guest memory is supported on Linux only")
}

// Reallocate implements experimental.LinearMemory.
func (*region) Reallocate(uint64) []byte { return nil }

// Free implements experimental.LinearMemory.
func (*region) Free() {}

func (*region) unmap() {}

// backs is false: there are no regions.
func (*region) backs([]byte) bool { return false }

// mapImage is unsupported.
func (*region) mapImage(*memoryImage) error { return errors.ErrUnsupported }
