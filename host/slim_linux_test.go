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

	"github.com/tetratelabs/wazero"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/internal/codefile"
)

// codeFiles returns the files under cache/code (machine code and memory images) and
// which of them this process maps.
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
		if f := strings.Fields(line); len(f) == 6 && filepath.Dir(f[5]) == dir {
			if name := filepath.Base(f[5]); !slices.Contains(mapped, name) {
				mapped = append(mapped, name)
			}
		}
	}
	return files, mapped
}

// TestMachineCodeBackedByFiles loads echo three times on one cache directory: the first
// load writes its machine code and memory image to files and runs from them, a restart
// reuses them, and a restart after the files were damaged rewrites them instead of
// using them.
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
	if !slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, ".text") }) ||
		!slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, ".data") }) || len(mapped) != len(files) {
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

// TestMemoryImageIsPrivate checks that instances mapping the same memory image do not
// see each other's writes and never write the file.
func TestMemoryImageIsPrivate(t *testing.T) {
	h := newHost(t, Options{CacheDir: t.TempDir()})
	path := writeFile(t, t.TempDir(), "echo.wasm", pluginBytes(t, echoDir))
	if err := h.LoadFile(context.Background(), path, Spec{Name: "echo", Limits: Limits{WarmInstances: 2}}); err != nil {
		t.Fatal(err)
	}
	v := h.entry("echo").current.Load()
	if v.image == nil {
		t.Fatal("echo was loaded without a memory image")
	}
	var a, b *instance
	h.wg.Wait() // the background warm-up of the second instance has ended
	v.mu.Lock()
	if len(v.idle) >= 2 {
		a, b = v.idle[0], v.idle[1]
	}
	v.mu.Unlock()
	if b == nil {
		t.Fatal("the second warm instance did not appear")
	}
	file, err := os.ReadFile(v.image.path)
	if err != nil {
		t.Fatal(err)
	}
	off := uint32(len(file) / 2)
	before, _ := a.main.Memory().ReadByte(off)
	if other, _ := b.main.Memory().ReadByte(off); before != file[off] || other != file[off] {
		t.Fatalf("byte %d: instance a %#x, b %#x, file %#x; want the file's", off, before, other, file[off])
	}
	a.main.Memory().WriteByte(off, ^before)
	defer a.main.Memory().WriteByte(off, before)
	if got, _ := b.main.Memory().ReadByte(off); got != file[off] {
		t.Errorf("a write in one instance changed another's memory (%#x)", got)
	}
	if now, _ := os.ReadFile(v.image.path); !bytes.Equal(now, file) {
		t.Error("a write in an instance changed the image file")
	}
}

// TestLoadImageCopiesWithoutRegion checks the fallback: a memory the host did not
// reserve gets the image copied in.
func TestLoadImageCopiesWithoutRegion(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	// A module with one exported memory of one page.
	mod, err := r.Instantiate(ctx, []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 5, 3, 1, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("image"), 1000)
	f, _, err := codefile.Ensure(t.TempDir(), "x.data", content)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &instanceMemory{}
	if err := m.loadImage(mod.Memory(), &memoryImage{file: f, path: "x.data", size: len(content)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := mod.Memory().Read(0, uint32(len(content))); !bytes.Equal(got, content) {
		t.Fatal("the memory does not start with the image")
	}
	if err := m.loadImage(mod.Memory(), &memoryImage{file: f, path: "x.data", size: 2 * 65536}); err == nil {
		t.Fatal("an image larger than the memory was accepted")
	}
	if err := m.loadImage(nil, &memoryImage{file: f, path: "x.data", size: 1}); err == nil {
		t.Fatal("a module without memory was accepted")
	}
}

func TestNewRefusesSharedCacheDir(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(dir string) error
		wantErr string
	}{
		{"private", func(string) error { return nil }, ""},
		{"writable by others", func(dir string) error { return os.Chmod(dir, 0o777) }, "writable by group or others"},
		{"writable by group", func(dir string) error { return os.Chmod(dir, 0o770) }, "writable by group or others"},
		{"another user's", func(dir string) error {
			if os.Geteuid() != 0 {
				t.Skip("chown to another user needs root")
			}
			return os.Chown(dir, 65534, 65534)
		}, "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tt.prepare(dir); err != nil {
				t.Fatal(err)
			}
			h, err := New(Options{CacheDir: dir})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				h.Close()
				return
			}
			if err == nil {
				h.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
