package host

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// rssBreakdown writes where this process's resident memory is: Go runtime figures,
// resident guest linear memory of the idle instances (Extism instantiates its kernel
// before the plugin, so an instance's first region is the kernel's), and resident MB by
// mapping kind (anonymous r-xp is wazero's compiled code).
func rssBreakdown(w io.Writer, h *Host) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mb := func(n uint64) float64 { return float64(n) / (1 << 20) }
	fmt.Fprintf(w, "go: HeapAlloc %.1f MB (%d objects), HeapInuse %.1f MB, HeapIdle-Released %.1f MB, StackInuse %.1f MB, Sys %.1f MB, other (mspan, gc, ...) %.1f MB\n",
		mb(ms.HeapAlloc), ms.HeapObjects, mb(ms.HeapInuse), mb(ms.HeapIdle-ms.HeapReleased), mb(ms.StackInuse), mb(ms.Sys), mb(ms.MSpanInuse+ms.GCSys+ms.OtherSys+ms.MCacheInuse+ms.BuckHashSys))
	var mainMem, kernMem uint64
	var guestRanges [][2]uint64
	var residentPages [2]int // Extism kernel, plugin
	var n int
	h.mu.RLock()
	for _, e := range h.plugins {
		v := e.current.Load()
		if v == nil {
			continue
		}
		v.mu.Lock()
		for _, in := range v.idle {
			n++
			in.mem.mu.Lock()
			for i, r := range in.mem.regions {
				if r.size > 0 {
					vec := make([]byte, (r.size+pageSize-1)/pageSize)
					if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&r.mem[0])), uintptr(r.size), uintptr(unsafe.Pointer(&vec[0]))); errno == 0 {
						for _, b := range vec {
							residentPages[min(i, 1)] += int(b & 1)
						}
					}
				}
				if len(r.mem) > 0 {
					start := uint64(uintptr(unsafe.Pointer(&r.mem[0])))
					guestRanges = append(guestRanges, [2]uint64{start, start + uint64(len(r.mem))})
				}
			}
			in.mem.mu.Unlock()
			if in.main != nil && in.main.Memory() != nil {
				mainMem += uint64(in.main.Memory().Size())
			}
			if in.kernel != nil && in.kernel.Memory() != nil {
				kernMem += uint64(in.kernel.Memory().Size())
			}
		}
		v.mu.Unlock()
	}
	h.mu.RUnlock()
	fmt.Fprintf(w, "guest memory in RAM (mincore; counts the page cache of memory images, shared): Extism kernels %.1f MB, plugins %.1f MB\n", mb(uint64(residentPages[0])*pageSize), mb(uint64(residentPages[1])*pageSize))
	fmt.Fprintf(w, "instances: %d idle, guest memory size %.1f MB, extism kernel memory size %.1f MB\n", n, mb(mainMem), mb(kernMem))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		fmt.Fprintln(w, err)
		return
	}
	defer f.Close()
	byKind := map[string]int{}
	anonKind := map[string]int{}
	kind := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 5 && strings.Contains(fl[0], "-") && !strings.HasSuffix(fl[0], ":") {
			kind = "anon " + fl[1]
			var lo, hi uint64
			if a, b, ok := strings.Cut(fl[0], "-"); ok {
				lo, _ = strconv.ParseUint(a, 16, 64)
				hi, _ = strconv.ParseUint(b, 16, 64)
			}
			for _, g := range guestRanges {
				if lo >= g[0] && hi <= g[1] {
					kind = "guest linear memory " + fl[1]
				}
			}
			if len(fl) >= 6 {
				kind = fl[5] + " " + fl[1]
			}
			continue
		}
		if len(fl) == 3 && (fl[0] == "Rss:" || fl[0] == "Anonymous:") {
			kb, _ := strconv.Atoi(fl[1])
			if fl[0] == "Rss:" {
				byKind[kind] += kb
			} else {
				anonKind[kind] += kb
			}
		}
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return byKind[kinds[i]] > byKind[kinds[j]] })
	for _, k := range kinds {
		if byKind[k] >= 1024 {
			fmt.Fprintf(w, "rss %-60s %7.1f MB (%.1f MB anonymous)\n", k, float64(byKind[k])/1024, float64(anonKind[k])/1024)
		}
	}
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
