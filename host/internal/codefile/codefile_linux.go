//go:build linux

package codefile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pageSize is the system page size.
var pageSize = os.Getpagesize()

// Back replaces the pages holding code, a page-aligned mapping of len(code) bytes made
// by mmap, with a private read-only executable mapping of the file name in dir holding
// the same bytes, writing the file when it is missing or differs. On error the code's
// mapping is unchanged.
//
// Nothing may write to code afterwards (it is read-only, as wazero leaves it).
func Back(code []byte, dir, name string) (Result, error) {
	if len(code) == 0 {
		return Result{}, errors.New("codefile: empty code")
	}
	addr := unsafe.Pointer(&code[0])
	if uintptr(addr)%uintptr(pageSize) != 0 {
		return Result{}, ErrNotMapping
	}
	f, written, err := Ensure(dir, name, code)
	if err != nil {
		return Result{}, err
	}
	path := filepath.Join(dir, name)
	res := Result{Path: path, Written: written}
	defer f.Close()
	length := roundUp(len(code))
	got, err := unix.MmapPtr(int(f.Fd()), 0, addr, uintptr(length), unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_FIXED)
	if err != nil {
		// The common failure, EPERM on a noexec mount, is found before anything is
		// unmapped.
		return res, fmt.Errorf("codefile: map %s over the code: %w", path, err)
	}
	if got != addr {
		return res, fmt.Errorf("codefile: map %s: kernel placed it at %p, asked %p", path, got, addr)
	}
	return res, nil
}

// Ensure returns the file name in dir, open for reading, holding exactly content:
// the existing file when it does, else a new one written and renamed over the name.
// written says which; a written file's Name is the temporary name it was written
// under. Ensure never writes into an existing file, so a file mapped or
// opened earlier keeps its content.
func Ensure(dir, name string, content []byte) (f *os.File, written bool, err error) {
	path := filepath.Join(dir, name)
	if f, err = openSame(path, content); err != nil || f != nil {
		return f, false, err
	}
	f, err = write(dir, name, content)
	return f, err == nil, err
}

// openSame opens path when it holds exactly code, returns nil when it is missing or
// holds something else.
func openSame(path string, code []byte) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("codefile: %w", err)
	}
	same, err := holds(f, code)
	if err != nil || !same {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("codefile: read %s: %w", path, err)
		}
		return nil, nil
	}
	return f, nil
}

// holds reports whether f's content is code. It reads f through a temporary mapping,
// so the comparison costs page-cache reads, not resident memory.
func holds(f *os.File, code []byte) (bool, error) {
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() != int64(len(code)) {
		return false, nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(code), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return false, err
	}
	defer unix.Munmap(m)
	return bytes.Equal(m, code), nil
}

// write stores code in a new file and renames it to dir/name, returning it open for
// reading.
func write(dir, name string, code []byte) (*os.File, error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("codefile: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("codefile: write %s: %w", filepath.Join(dir, name), err)
	}
	if _, err := tmp.Write(code); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fail(err)
	}
	return tmp, nil
}

// roundUp rounds n up to a whole number of pages.
func roundUp(n int) int {
	return (n + pageSize - 1) / pageSize * pageSize
}
