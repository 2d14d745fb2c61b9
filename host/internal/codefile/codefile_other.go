//go:build !linux

package codefile

import (
	"errors"
	"os"
)

// Back is supported on Linux only; elsewhere the code stays where it is.
func Back(code []byte, dir, name string) (Result, error) {
	return Result{}, errors.ErrUnsupported
}

// Ensure is supported on Linux only.
func Ensure(dir, name string, content []byte) (*os.File, bool, error) {
	return nil, false, errors.ErrUnsupported
}
