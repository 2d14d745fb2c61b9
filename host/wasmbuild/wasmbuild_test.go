package wasmbuild

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeModule creates a tiny module with one main package and returns its directory.
func writeModule(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/p\n\ngo 1.24\n",
		"main.go": body,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const reactor = `package main

//go:wasmexport answer
func answer() int32 { return %s }

func main() {}
`

func TestBuildCachesAndRebuildsOnChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := writeModule(t, strings.Replace(reactor, "%s", "42", 1))
	opts := Options{CacheDir: t.TempDir()}

	first, err := Build(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x00asm")) {
		t.Fatalf("%s is not a Wasm module", first)
	}
	fi1, _ := os.Stat(first)

	again, err := Build(ctx, dir, opts)
	if err != nil || again != first {
		t.Fatalf("second build = %s, %v; want cached %s", again, err, first)
	}
	if fi2, _ := os.Stat(again); !fi2.ModTime().Equal(fi1.ModTime()) {
		t.Fatal("cache hit rebuilt the module")
	}

	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(strings.Replace(reactor, "%s", "7", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := Build(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed == first {
		t.Fatal("changed source reused the old cache entry")
	}
}

func TestBuildConcurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := writeModule(t, strings.Replace(reactor, "%s", "1", 1))
	opts := Options{CacheDir: t.TempDir()}
	var wg sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = Build(ctx, dir, opts)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("build %d = %s, %v; want %s", i, paths[i], errs[i], paths[0])
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(opts.CacheDir, ".build-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		dir     func(t *testing.T) string
		wantSub string
	}{
		{name: "missing dir", dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, wantSub: "not a directory"},
		{name: "compile error", dir: func(t *testing.T) string {
			return writeModule(t, "package main\n\nfunc main() { undefined() }\n")
		}, wantSub: "undefined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(ctx, tt.dir(t), Options{CacheDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.wantSub) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantSub)
			}
		})
	}
}

func TestBuildNative(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := writeModule(t, "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hi\") }\n")
	path, err := BuildNative(ctx, dir, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("native binary %s not executable: %v", path, err)
	}
}

// TestBuildAcrossProcesses runs three test processes building the same module into one
// cache at once: exactly one of them compiles, the others wait for it and reuse the file.
func TestBuildAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("WASMBUILD_CHILD_DIR"); dir != "" {
		var logs bytes.Buffer
		path, err := Build(context.Background(), dir, Options{CacheDir: os.Getenv("WASMBUILD_CHILD_CACHE"),
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("PATH %s\nBUILT %v\n", path, strings.Contains(logs.String(), "wasmbuild: built"))
		return
	}
	dir := writeModule(t, strings.Replace(reactor, "%s", "3", 1))
	cache := t.TempDir()
	outs := make([][]byte, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuildAcrossProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), "WASMBUILD_CHILD_DIR="+dir, "WASMBUILD_CHILD_CACHE="+cache)
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	built, paths := 0, map[string]bool{}
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if p, ok := strings.CutPrefix(line, "PATH "); ok {
				paths[p] = true
			}
			if line == "BUILT true" {
				built++
			}
		}
	}
	if len(paths) != 1 || built != 1 {
		t.Fatalf("3 processes: %d distinct paths, %d builds; want 1 and 1\n%s\n%s\n%s", len(paths), built, outs[0], outs[1], outs[2])
	}
}
