package host

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	extism "github.com/extism/go-sdk"

	"routerd.net/routerd/host/internal/codefile"
	"routerd.net/routerd/host/internal/datamerge"
	"routerd.net/routerd/host/internal/wazeroaccess"
)

// A compiled plugin costs more resident memory than it uses:
//
//   - wazero keeps its machine code (about 10 MB for a Go module) in anonymous memory,
//     all of it resident although a plugin executes a small part;
//   - wazero keeps the decoded function bodies (about 2 MB), which the pinned version
//     reads only while compiling;
//   - wazero keeps the data segments (about 1.4 MB) and copies them into every new
//     instance, so every instance has all of them resident although the Go runtime in
//     the guest reads a small part (type data, strings, the pclntab).
//
// slim releases the first once a module is compiled: the machine code is backed by a
// file under the cache directory (package codefile: only the pages executed become
// resident, shared through the page cache, droppable under memory pressure). It drops
// the bodies (package wazeroaccess) unless Options.KeepFunctionBodies: that writes
// wazero's unexported fields and relies on wazero never reading them after compiling,
// which TestBodiesUnusedAfterCompile proves for the pinned version and every path the
// host uses. extractImage handles the third before
// compiling: it moves the data segments out of the module into a memory image file
// (package datamerge), which every instance maps privately at the start of its memory
// before the module's code runs (instanceMemory.loadImage): pages the guest only reads
// stay shared page cache, pages it writes are copied on write. Without a cache
// directory everything stays as wazero has it. Each step that fails is logged and
// skipped: the plugin works either way, it only uses more memory.

// codeDirName is the directory under Options.CacheDir holding machine code files.
const codeDirName = "code"

// minBackedCode is the smallest code mapping slim backs by a file: below it (host
// modules' trampolines, the Extism kernel is ~100 KB) a file saves too little.
const minBackedCode = 64 << 10

// codeFileMaxAge is how long a code file no load used stays in the cache directory.
const codeFileMaxAge = 14 * 24 * time.Hour

// crcTable is the CRC-32C table naming code files (hardware-accelerated on amd64/arm64).
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// slim releases the memory a compiled plugin does not need (see above) and logs what it
// released at debug level.
func (h *Host) slim(digest string, compiled *extism.CompiledPlugin) {
	bodies := 0
	if !h.opts.KeepFunctionBodies {
		var err error
		if bodies, err = wazeroaccess.DropFunctionBodies(compiled); err != nil {
			h.log.Warn("plugin: function bodies not released", "module", digest, "err", err)
		}
	}
	backed, written := 0, 0
	defer func() {
		h.log.Debug("plugin: compiled module slimmed", "module", digest, "bodyBytesReleased", bodies, "codeBytesFileBacked", backed, "codeFilesWritten", written)
	}()
	if h.codeDir == "" {
		return
	}
	execs, err := wazeroaccess.Executables(compiled)
	if err != nil {
		h.log.Warn("plugin: machine code left in anonymous memory", "module", digest, "err", err)
		return
	}
	for _, code := range execs {
		if len(code) < minBackedCode {
			continue
		}
		res, err := codefile.Back(code, h.codeDir, contentName(code, ".text"))
		if err != nil {
			h.log.Warn("plugin: machine code left in anonymous memory", "module", digest, "err", err)
			continue
		}
		backed += len(code)
		if res.Written {
			written++
		} else {
			touch(res.Path)
		}
	}
}

// memoryImage is a module's initial memory, moved out of the module into a file that
// every instance maps privately (see above).
type memoryImage struct {
	file *os.File // open for the life of the compiled module: its content never changes
	path string   // where file is (file.Name() may be the temporary name it was written under)
	size int
}

// close closes the image file (instances mapped from it keep their mappings). A nil
// image is fine.
func (m *memoryImage) close() {
	if m != nil {
		m.file.Close()
	}
}

// extractImage moves the data segments of code out into a memory image file, returning
// the image and the module without them; or nil and code unchanged when the module is
// not of the form datamerge.Extract handles, guest memory is not reserved by the host
// (instanceMemory), there is no cache directory, or writing the file fails.
func (h *Host) extractImage(digest string, code []byte) (*memoryImage, []byte) {
	if h.codeDir == "" || !reserveSupported {
		return nil, code
	}
	stripped, image, ok, err := datamerge.Extract(code)
	if err != nil || !ok {
		return nil, code
	}
	name := contentName(image, ".data")
	f, written, err := codefile.Ensure(h.codeDir, name, image)
	if err != nil {
		h.log.Warn("plugin: data segments left in the module", "module", digest, "err", err)
		return nil, code
	}
	path := filepath.Join(h.codeDir, name)
	if !written {
		touch(path)
	}
	return &memoryImage{file: f, path: path, size: len(image)}, stripped
}

// contentName names a code file after its content: CRC-32C, size and ext. Equal
// content shares a file; Back and Ensure compare the bytes, so a collision costs a
// rewrite, never wrong code.
func contentName(content []byte, ext string) string {
	return fmt.Sprintf("%08x-%d%s", crc32.Checksum(content, crcTable), len(content), ext)
}

// touch marks a code file used now, keeping it from pruneCodeFiles.
func touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// pruneCodeFiles removes code files no load has used for codeFileMaxAge (and
// temporary files left by a crash). Files mapped by a running process stay valid: the
// mapping keeps the inode.
func pruneCodeFiles(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		stale := now.Sub(info.ModTime()) > codeFileMaxAge
		if strings.HasPrefix(e.Name(), ".") {
			stale = now.Sub(info.ModTime()) > time.Hour // a crashed writer's temporary file
		}
		if stale {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// checkPrivateDir refuses a cache directory another user could write to: the compiled
// code, code files and memory images in it become code and data the host runs.
func checkPrivateDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("host: cache directory %s: %w", dir, err)
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("host: cache directory %s is writable by group or others (mode %v); run chmod go-w %s", dir, info.Mode().Perm(), dir)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("host: cache directory %s is owned by uid %d, not by this process (uid %d); remove it or choose another --state-dir", dir, st.Uid, os.Geteuid())
	}
	return nil
}
