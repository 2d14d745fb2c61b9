package host

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/host/wasmbuild"
)

// builds caches module bytes per source directory for the whole test binary.
var builds sync.Map // dir → []byte

// pluginBytes builds (with wasmbuild's cache) the Go plugin in dir and returns the module.
func pluginBytes(t testing.TB, dir string) []byte {
	t.Helper()
	if b, ok := builds.Load(dir); ok {
		return b.([]byte)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path, err := wasmbuild.Build(ctx, dir, wasmbuild.Options{})
	if err != nil {
		t.Fatalf("build %s: %v", dir, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	builds.Store(dir, b)
	return b
}

// Source directories of the plugins the tests use.
const (
	echoDir     = "../plugins/echo"
	capcheckDir = "testdata/plugins/capcheck"
	pdkstyleDir = "testdata/plugins/pdkstyle"
)

// testCache is one compilation cache shared by the package's tests (keeps them fast).
var testCache = filepath.Join(os.TempDir(), "routerd-host-test-cache")

// newHost creates a Host closed at the end of the test.
func newHost(t testing.TB, opts Options) *Host {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = testCache
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// writeFile writes data to dir/name.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// op is one capcheck operation.
type op struct {
	Fn    string `json:"fn"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	Type  string `json:"type,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
	Sleep string `json:"sleep,omitempty"`
	MiB   int    `json:"mib,omitempty"`
}

// opResult is capcheck's report of one operation.
type opResult struct {
	Fn    string `json:"fn"`
	OK    bool   `json:"ok"`
	Code  string `json:"code"`
	Value string `json:"value"`
}

// capInput encodes capcheck's input.
func capInput(t testing.TB, ops ...op) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"do": ops})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// capResults decodes capcheck's output.
func capResults(t testing.TB, out []byte) []opResult {
	t.Helper()
	var r struct {
		Results []opResult `json:"results"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("capcheck output %q: %v", out, err)
	}
	return r.Results
}

// statusOf returns the status of one plugin.
func statusOf(t testing.TB, h *Host, name string) PluginStatus {
	t.Helper()
	for _, s := range h.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for plugin %s in %+v", name, h.Status())
	return PluginStatus{}
}
