// Package codefile backs machine code held in anonymous memory by a file, so that only
// the pages a program executes are resident.
//
// wazero copies a module's machine code into an anonymous mapping: every page of it is
// resident (about 10 MB for a Go wasip1 module) although a plugin executes a small part.
// Back writes the code to a file once and maps that file privately, read-only and
// executable, over the same addresses: the bytes at every address stay the same, and
// the kernel brings a page in when it is first executed and may drop it again under
// memory pressure, as for any program's text. Every mapping of the same file shares the
// page cache.
//
// A file is never written in place once created: Back writes a new file and renames it
// over the old name, so code mapped earlier keeps its inode. Before mapping an existing
// file Back compares it with the code byte for byte, so a stale or damaged file is
// replaced, never executed. The directory should be writable by the daemon only, like a
// compilation cache (whoever can write there can change code the daemon runs).
//
// Ensure, the first half of Back, serves other read-only images as well: the host keeps
// each module's initial memory in such a file and maps it into every instance.
package codefile

import "errors"

// ErrNotMapping is returned for code that does not start on a page boundary (it cannot
// be an mmap'd code segment).
var ErrNotMapping = errors.New("codefile: code does not start on a page boundary")

// Result says what Back did.
type Result struct {
	// Path is the file now backing the code.
	Path string
	// Written is true when Back wrote the file (it was missing or differed).
	Written bool
}
