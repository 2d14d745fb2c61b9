package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"routerd.net/routerd/host/internal/wasmbin"
)

// The loader's transient memory is measured in a child process (this test binary
// re-executed with loadPeakEnv) so the parent's heap does not count: the child resets
// its peak RSS (clear_refs 5), loads one module, and reports the peak growth.

// loadPeakEnv makes the test binary act as the load measurement child: "<module>:<cache dir>".
const loadPeakEnv = "ROUTERD_HOST_LOAD_PEAK_CHILD"

// loadPeakLimits lets the inflated module's memory fit.
var loadPeakLimits = Limits{MemoryMiB: 256, WarmInstances: 1}

// loadPeakChild loads module with a fresh Host and prints
// "PEAK <peak growth kB> <growth kB after the load> <error or ok>".
func loadPeakChild(module, cache string) error {
	h, err := New(Options{CacheDir: cache})
	if err != nil {
		return err
	}
	defer h.Close()
	runtime.GC()
	debug.FreeOSMemory()
	before, err := procStatusKB("VmRSS")
	if err != nil {
		return err
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	lerr := h.LoadFile(context.Background(), module, Spec{Name: "big", Limits: loadPeakLimits})
	peak, err := procStatusKB("VmHWM")
	if err != nil {
		return err
	}
	runtime.GC()
	debug.FreeOSMemory()
	after, err := procStatusKB("VmRSS")
	if err != nil {
		return err
	}
	outcome := "ok"
	if lerr != nil {
		outcome = strings.ReplaceAll(lerr.Error(), "\n", " ")
	}
	fmt.Printf("PEAK %d %d %s\n", peak-before, after-before, outcome)
	return nil
}

// procStatusKB reads a kB field of /proc/self/status.
func procStatusKB(field string) (int, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// loadPeak runs the child on module and returns its peak and lasting growth in bytes and
// the load's outcome.
func loadPeak(tb testing.TB, module string) (peak, lasting int64, outcome string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), loadPeakEnv+"="+module+":"+tb.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("load child: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.SplitN(sc.Text(), " ", 4); len(f) == 4 && f[0] == "PEAK" {
			p, _ := strconv.ParseInt(f[1], 10, 64)
			l, _ := strconv.ParseInt(f[2], 10, 64)
			return p << 10, l << 10, f[3]
		}
	}
	tb.Fatalf("load child printed no PEAK line:\n%s\n%s", out, stderr.String())
	return 0, 0, ""
}

// inflate returns module with a custom section of extra random bytes appended, a
// module as large as a plugin embedding a big asset: every stage of the loader (read,
// digest, instrumentation, data merging, compilation) handles its bytes, and the module
// works as before.
func inflate(module []byte, extra int) []byte {
	const name = "routerd.test.padding"
	payload := binary.AppendUvarint(nil, uint64(len(name)))
	payload = append(payload, name...)
	out := slices.Concat(module, []byte{0}) // custom section id
	out = binary.AppendUvarint(out, uint64(len(payload)+extra))
	out = append(out, payload...)
	start := len(out)
	out = append(out, make([]byte, extra)...)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := start; i+8 <= len(out); i += 8 {
		binary.LittleEndian.PutUint64(out[i:], rng.Uint64())
	}
	return out
}

// loadPeakMaxRatio bounds a load's peak resident growth as a multiple of the module's
// size. Measured for a 63 MB module (TestLoadPeakRSS): ~6x before the loader checked the
// size first, read into one buffer and released each stage's copy; ~3.1x after, of
// which wazero's compilation is ~2x (its decoder copies custom sections and builds the
// compiled module while the module's bytes are live).
const loadPeakMaxRatio = 3.5

// TestLoadPeakRSS loads a 63 MB module (a real plugin with 60 MB of random bytes in a
// custom section, which every loader stage copies) in a child process and bounds the
// peak RSS growth; a file over the size limit must be refused without being read.
func TestLoadPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 63 MB module")
	}
	dir := t.TempDir()
	big := inflate(pluginBytes(t, echoDir), 60<<20)
	bigPath := writeFile(t, dir, "big.wasm", big)
	// A 100 MB file over the default 64 MiB limit, sparse: it costs no disk.
	hugePath := filepath.Join(dir, "huge.wasm")
	if err := os.WriteFile(hugePath, wasmbin.Magic, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(hugePath, 100<<20); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		size    int64
		maxPeak int64 // bytes
		outcome string
	}{
		{name: "63 MB module within limits", path: bigPath, size: int64(len(big)),
			maxPeak: int64(loadPeakMaxRatio * float64(len(big))), outcome: "ok"},
		{name: "100 MB file over the limit", path: hugePath, size: 100 << 20,
			maxPeak: 8 << 20, outcome: "larger than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peak, lasting, outcome := loadPeak(t, tt.path)
			t.Logf("%.1f MB: peak +%.1f MB (%.2fx the file), +%.1f MB after the load; %s",
				float64(tt.size)/(1<<20), float64(peak)/(1<<20), float64(peak)/float64(tt.size), float64(lasting)/(1<<20), outcome)
			if !strings.Contains(outcome, tt.outcome) {
				t.Fatalf("load outcome %q, want %q", outcome, tt.outcome)
			}
			if peak > tt.maxPeak {
				t.Fatalf("peak RSS grew by %.1f MB loading a %.1f MB file; want at most %.1f MB",
					float64(peak)/(1<<20), float64(tt.size)/(1<<20), float64(tt.maxPeak)/(1<<20))
			}
		})
	}
}

// BenchmarkPluginLoadPeakRSS reports the peak RSS growth of loading a 63 MB module, as a
// multiple of its size, and of refusing a 100 MB file (see TestLoadPeakRSS).
func BenchmarkPluginLoadPeakRSS(b *testing.B) {
	dir := b.TempDir()
	big := inflate(pluginBytes(b, echoDir), 60<<20)
	bigPath := writeFile(b, dir, "big.wasm", big)
	hugePath := filepath.Join(dir, "huge.wasm")
	if err := os.WriteFile(hugePath, wasmbin.Magic, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(hugePath, 100<<20); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		peak, _, outcome := loadPeak(b, bigPath)
		if outcome != "ok" {
			b.Fatalf("load: %s", outcome)
		}
		bench("plugin_load_peak_rss_x", float64(peak)/float64(len(big)), "x")
		peak, _, _ = loadPeak(b, hugePath)
		bench("plugin_load_refused_peak_rss_mb", float64(peak)/(1<<20), "MB")
	}
}
