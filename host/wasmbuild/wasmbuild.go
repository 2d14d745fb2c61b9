// Package wasmbuild builds Go plugin directories into WebAssembly modules for tests,
// benchmarks and tools: `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`, cached by
// a hash of every non-standard-library source file the package depends on, go.mod,
// go.sum and the Go version. The cache lives under $ROUTERD_WASM_CACHE or
// <module root>/bin/.wasmcache; results are published by atomic rename, so concurrent
// test processes may build the same plugin safely; an advisory lock per output file makes
// the others wait for the first build instead of repeating it.
package wasmbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvCacheDir names the environment variable that overrides the cache directory.
const EnvCacheDir = "ROUTERD_WASM_CACHE"

// Options configures a build. The zero value is ready to use.
type Options struct {
	// CacheDir overrides $ROUTERD_WASM_CACHE and <module root>/bin/.wasmcache.
	CacheDir string
	// Go is the go command (default "go" from PATH).
	Go string
	// Logger receives one line per real (uncached) build; nil discards.
	Logger *slog.Logger
}

func (o *Options) goCmd() string {
	if o.Go != "" {
		return o.Go
	}
	return "go"
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// target is a build flavour.
type target struct {
	name string   // "wasm" or "native"
	env  []string // extra environment
	args []string // extra go build flags
	ext  string   // output suffix
}

var (
	wasmTarget   = target{name: "wasm", env: []string{"GOOS=wasip1", "GOARCH=wasm"}, args: []string{"-buildmode=c-shared"}, ext: ".wasm"}
	nativeTarget = target{name: "native", env: []string{"GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH}, ext: ""}
)

// Build compiles the Go main package in dir to a wasip1 reactor module and returns the
// path of the cached .wasm file. A cache hit costs one `go list`.
//
// # Errors
//
// Failures name the directory and include the go command's output.
func Build(ctx context.Context, dir string, opts Options) (string, error) {
	return build(ctx, dir, opts, wasmTarget)
}

// BuildNative compiles the Go main package in dir for the host platform (e.g. the
// subprocess plugin used as a benchmark baseline) with the same caching as Build.
func BuildNative(ctx context.Context, dir string, opts Options) (string, error) {
	return build(ctx, dir, opts, nativeTarget)
}

// inProcess serialises builds of the same output within one process.
var inProcess sync.Map // output path -> *sync.Mutex

func build(ctx context.Context, dir string, opts Options, t target) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("wasmbuild: %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("wasmbuild: %s is not a directory: %w", dir, errors.Join(err, os.ErrNotExist))
	}
	key, root, err := sourceKey(ctx, abs, opts, t)
	if err != nil {
		return "", err
	}
	cache := opts.CacheDir
	if cache == "" {
		cache = os.Getenv(EnvCacheDir)
	}
	if cache == "" {
		cache = filepath.Join(root, "bin", ".wasmcache")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("wasmbuild: create cache dir %s: %w", cache, err)
	}
	out := filepath.Join(cache, filepath.Base(abs)+"-"+key[:20]+t.ext)
	mu, _ := inProcess.LoadOrStore(out, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out, nil
	}
	unlock, err := lockFile(out + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out, nil // another process built it while we waited
	}
	tmp, err := os.CreateTemp(cache, ".build-*"+t.ext)
	if err != nil {
		return "", fmt.Errorf("wasmbuild: temp file in %s: %w", cache, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // no-op after a successful rename

	start := time.Now()
	args := append([]string{"build"}, t.args...)
	args = append(args, "-o", tmpName, ".")
	cmd := exec.CommandContext(ctx, opts.goCmd(), args...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), t.env...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("wasmbuild: build %s (%s): %w\n%s", dir, t.name, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmpName, out); err != nil {
		return "", fmt.Errorf("wasmbuild: publish %s: %w", out, err)
	}
	opts.logger().Info("wasmbuild: built", "dir", dir, "target", t.name, "out", out, "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// listFormat prints, for every non-standard package in the build, its directory and the
// files that go into it, plus the module root once (from the main package).
const listFormat = `{{if not .Standard}}{{.Dir}}{{"\t"}}{{join .GoFiles " "}} {{join .CgoFiles " "}} {{join .EmbedFiles " "}} {{join .SFiles " "}}{{"\t"}}{{if .Module}}{{.Module.GoMod}}{{end}}{{end}}`

var goVersions sync.Map // go command -> version string

// sourceKey hashes every source file dir's package depends on (outside the standard
// library), the go.mod/go.sum files involved, the Go version and the target, and returns
// the hex key and the main module's root.
func sourceKey(ctx context.Context, dir string, opts Options, t target) (key, root string, err error) {
	ver, err := goVersion(ctx, opts.goCmd())
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, opts.goCmd(), "list", "-deps", "-f", listFormat, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), t.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	listing, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("wasmbuild: go list %s: %w\n%s", dir, err, strings.TrimSpace(stderr.String()))
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s %v %v\n", ver, t.name, t.env, t.args)
	for _, line := range strings.Split(string(listing), "\n") {
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			continue
		}
		pkgDir, files, gomod := parts[0], strings.Fields(parts[1]), parts[2]
		for _, f := range files {
			if err := hashFile(h, filepath.Join(pkgDir, f)); err != nil {
				return "", "", err
			}
		}
		if pkgDir == dir && gomod != "" {
			root = filepath.Dir(gomod) // the main package's module
		}
	}
	if root == "" {
		return "", "", fmt.Errorf("wasmbuild: %s is not inside a Go module", dir)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, filepath.Join(root, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), root, nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("wasmbuild: hash %s: %w", path, err)
	}
	defer f.Close()
	fmt.Fprintf(h, "\x00%s\x00", path)
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("wasmbuild: hash %s: %w", path, err)
	}
	return nil
}

func goVersion(ctx context.Context, goCmd string) (string, error) {
	if v, ok := goVersions.Load(goCmd); ok {
		return v.(string), nil
	}
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("wasmbuild: %s env GOVERSION: %w", goCmd, err)
	}
	v := strings.TrimSpace(string(out))
	goVersions.Store(goCmd, v)
	return v, nil
}

// RepoRoot returns the root of the routerd module containing the working directory
// (the nearest parent holding go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("wasmbuild: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("wasmbuild: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ForTest builds the plugin at rel — a path relative to the module root such as
// "plugins/echo" or "testdata/plugins/loop" — and returns the .wasm path, failing tb on
// error. Builds can take tens of seconds on a busy machine; the result is cached.
func ForTest(tb testing.TB, rel string) string {
	tb.Helper()
	return forTest(tb, rel, wasmTarget)
}

// NativeForTest is ForTest for BuildNative.
func NativeForTest(tb testing.TB, rel string) string {
	tb.Helper()
	return forTest(tb, rel, nativeTarget)
}

// testBuilds memoizes ForTest/NativeForTest results for the life of the test process
// (sources do not change during a test run), saving the `go list` of a cache hit.
var testBuilds sync.Map // target name + ":" + absolute dir -> path

func forTest(tb testing.TB, rel string, t target) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(root, filepath.FromSlash(rel))
	memo := t.name + ":" + dir
	if p, ok := testBuilds.Load(memo); ok {
		if _, err := os.Stat(p.(string)); err == nil {
			return p.(string)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path, err := build(ctx, dir, Options{}, t)
	if err != nil {
		tb.Fatal(err)
	}
	testBuilds.Store(memo, path)
	return path
}
