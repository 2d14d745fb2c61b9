//go:build !linux

package codefile

import "errors"

// Back is supported on Linux only; elsewhere the code stays where it is.
func Back(code []byte, dir, name string) (Result, error) {
	return Result{}, errors.ErrUnsupported
}
