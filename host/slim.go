package host

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"

	extism "github.com/extism/go-sdk"

	"routerd.net/routerd/host/internal/codefile"
	"routerd.net/routerd/host/internal/wazeroaccess"
)

// A compiled plugin costs more resident memory than it uses: wazero keeps its machine
// code (about 10 MB for a Go module) in anonymous memory, all of it resident although a
// plugin executes a small part, and keeps the decoded function bodies (about 2 MB) that
// it reads only while compiling. slim releases both once a module is compiled: the
// machine code is backed by a file under the cache directory (package codefile: only
// the pages executed become resident, shared through the page cache, droppable under
// memory pressure) and the bodies are dropped (package wazeroaccess). Without a cache
// directory the code stays in anonymous memory. Each step that fails is logged and
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

// slimStats are what slim released for one compiled plugin.
type slimStats struct {
	bodyBytes   int // function bodies dropped
	backedBytes int // machine code now backed by files
	written     int // code files written (missing or stale)
}

// slim releases the memory a compiled plugin does not need (see above).
func (h *Host) slim(digest string, compiled *extism.CompiledPlugin) slimStats {
	var st slimStats
	n, err := wazeroaccess.DropFunctionBodies(compiled)
	if err != nil {
		h.log.Warn("plugin: function bodies not released", "module", digest, "err", err)
	}
	st.bodyBytes = n
	if h.codeDir == "" {
		return st
	}
	execs, err := wazeroaccess.Executables(compiled)
	if err != nil {
		h.log.Warn("plugin: machine code left in anonymous memory", "module", digest, "err", err)
		return st
	}
	for _, code := range execs {
		if len(code) < minBackedCode {
			continue
		}
		file := fmt.Sprintf("%08x-%d.text", crc32.Checksum(code, crcTable), len(code))
		res, err := codefile.Back(code, h.codeDir, file)
		if err != nil {
			h.log.Warn("plugin: machine code left in anonymous memory", "module", digest, "err", err)
			continue
		}
		st.backedBytes += len(code)
		if res.Written {
			st.written++
		} else {
			now := time.Now()
			_ = os.Chtimes(res.Path, now, now) // keeps it from pruneCodeFiles
		}
	}
	return st
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
