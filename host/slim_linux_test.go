package host

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
)

// codeFiles returns the code files under cache and which of them this process maps.
func codeFiles(t *testing.T, cache string) (files, mapped []string) {
	t.Helper()
	dir := filepath.Join(cache, codeDirName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		files = append(files, e.Name())
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) == 6 && filepath.Dir(f[5]) == dir && strings.HasPrefix(f[1], "r-x") {
			if name := filepath.Base(f[5]); !slices.Contains(mapped, name) {
				mapped = append(mapped, name)
			}
		}
	}
	return files, mapped
}

// TestMachineCodeBackedByFiles loads echo three times on one cache directory: the first
// load writes its machine code to files and runs from them, a restart reuses them, and a
// restart after the files were damaged rewrites them instead of running them.
func TestMachineCodeBackedByFiles(t *testing.T) {
	cache := t.TempDir()
	module := pluginBytes(t, echoDir)
	path := writeFile(t, t.TempDir(), "echo.wasm", module)
	in := []byte(`"` + strings.Repeat("x", 3000) + `"`)
	load := func() *Host {
		h := newHost(t, Options{CacheDir: cache})
		if err := h.LoadFile(context.Background(), path, Spec{Name: "echo"}); err != nil {
			t.Fatal(err)
		}
		if out, err := h.Call(context.Background(), "echo", abi.HookOnEvents, in); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("call: %v, %d bytes; want the input back", err, len(out))
		}
		return h
	}

	h := load()
	files, mapped := codeFiles(t, cache)
	if len(files) == 0 || len(mapped) != len(files) {
		t.Fatalf("after the first load: code files %v, mapped %v; want every file mapped", files, mapped)
	}
	info, err := os.Stat(filepath.Join(cache, codeDirName, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()

	h = load()
	again, _ := codeFiles(t, cache)
	if !slices.Equal(again, files) {
		t.Fatalf("a restart changed the code files from %v to %v", files, again)
	}
	if info2, err := os.Stat(filepath.Join(cache, codeDirName, files[0])); err != nil || !os.SameFile(info, info2) {
		t.Fatalf("a restart rewrote %s (%v)", files[0], err)
	}
	h.Close()

	// Damage every file (same name and size, other bytes): the next load must not run
	// them but write them anew.
	for _, name := range files {
		p := filepath.Join(cache, codeDirName, name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{0xcc}, int(st.Size())), 0o444); err != nil { // int3
			t.Fatal(err)
		}
	}
	h = load()
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(cache, codeDirName, name))
		if err != nil || bytes.Count(b, []byte{0xcc}) == len(b) {
			t.Errorf("%s was not rewritten (%v)", name, err)
		}
	}
	if _, mapped := codeFiles(t, cache); len(mapped) < len(files) {
		t.Errorf("after rewriting, %v of %v are mapped", mapped, files)
	}
}

func TestPruneCodeFiles(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	files := []struct {
		name string
		age  time.Duration
		keep bool
	}{
		{"0a0b0c0d-100.text", time.Hour, true},
		{"1a0b0c0d-100.text", codeFileMaxAge - time.Hour, true},
		{"2a0b0c0d-100.text", codeFileMaxAge + time.Hour, false},
		{".3a0b0c0d-100.text.tmp123", time.Minute, true}, // a load may be writing it
		{".4a0b0c0d-100.text.tmp456", 2 * time.Hour, false},
	}
	for _, f := range files {
		p := writeFile(t, dir, f.name, []byte("code"))
		if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
			t.Fatal(err)
		}
	}
	pruneCodeFiles(dir, now)
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f.name))
		if kept := err == nil; kept != f.keep {
			t.Errorf("%s (age %v): kept %v, want %v", f.name, f.age, kept, f.keep)
		}
	}
}
