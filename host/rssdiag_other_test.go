//go:build !linux

package host

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// rssBreakdown writes the Go runtime's memory figures (the mapping breakdown needs
// Linux's /proc).
func rssBreakdown(w io.Writer, _ *Host) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "go: HeapAlloc %d, HeapInuse %d, Sys %d bytes\n", ms.HeapAlloc, ms.HeapInuse, ms.Sys)
}

// writeHeapProfile writes the heap profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	werr := pprof.WriteHeapProfile(f)
	if err := f.Close(); werr == nil {
		werr = err
	}
	return werr
}
