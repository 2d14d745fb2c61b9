//go:build linux

package codefile

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// codeMapping returns an anonymous read-only mapping of pages pages filled with seed's
// pattern, the way wazero leaves compiled code (minus PROT_EXEC, which changes nothing
// here), and unmaps it at the end of the test.
func codeMapping(t *testing.T, pages int, seed byte) []byte {
	t.Helper()
	m, err := unix.Mmap(-1, 0, pages*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(m) })
	for i := range m {
		m[i] = byte(i*7) + seed
	}
	if err := unix.Mprotect(m, unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	return m
}

// mapping describes the mapping at addr from /proc/self/smaps: its file (""
// for anonymous memory) and its resident kB.
func mapping(t *testing.T, addr uintptr) (file string, rssKB int) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 5 && strings.Contains(fl[0], "-") && !strings.HasSuffix(fl[0], ":") {
			lo, hi, _ := strings.Cut(fl[0], "-")
			l, _ := strconv.ParseUint(lo, 16, 64)
			h, _ := strconv.ParseUint(hi, 16, 64)
			in = uint64(addr) >= l && uint64(addr) < h
			if in {
				file = ""
				if len(fl) >= 6 {
					file = fl[5]
				}
			}
			continue
		}
		if in && len(fl) == 3 && fl[0] == "Rss:" {
			rssKB, _ = strconv.Atoi(fl[1])
			return file, rssKB
		}
	}
	t.Fatalf("no mapping at %#x", addr)
	return "", 0
}

// sink keeps reads of mapped memory from being optimised away.
var sink byte

func TestBack(t *testing.T) {
	const pages = 64
	dir := t.TempDir()
	code := codeMapping(t, pages, 1)
	want := bytes.Clone(code)
	addr := uintptr(unsafe.Pointer(&code[0]))
	if file, rss := mapping(t, addr); file != "" || rss < pages*pageSize/1024 {
		t.Fatalf("before Back: mapping file %q, rss %d kB; want anonymous and resident", file, rss)
	}

	res, err := Back(code, dir, "a.text")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Written || res.Path != filepath.Join(dir, "a.text") {
		t.Fatalf("Back = %+v, want the file written at %s", res, filepath.Join(dir, "a.text"))
	}
	file, rss := mapping(t, addr)
	if file != res.Path {
		t.Fatalf("after Back the code is mapped from %q, want %s", file, res.Path)
	}
	if rss != 0 {
		t.Errorf("after Back %d kB are resident before anything reads the code, want 0", rss)
	}
	if !bytes.Equal(code, want) {
		t.Fatal("the code changed")
	}
	// Reading everything brings it all in; reading one page brings in a fault-around
	// window at most (not the whole mapping).
	if _, rss := mapping(t, addr); rss < pages*pageSize/1024 {
		t.Errorf("after reading every page %d kB are resident, want %d", rss, pages*pageSize/1024)
	}
	if info, err := os.Stat(res.Path); err != nil || info.Mode().Perm() != 0o444 {
		t.Errorf("code file mode %v (%v), want read-only", info.Mode().Perm(), err)
	}

	// A second mapping of the same code reuses the file and is not resident.
	code2 := codeMapping(t, pages, 1)
	res2, err := Back(code2, dir, "a.text")
	if err != nil || res2.Written {
		t.Fatalf("Back of the same code = %+v, %v; want the file reused", res2, err)
	}
	sink += code2[0]
	if _, rss := mapping(t, uintptr(unsafe.Pointer(&code2[0]))); rss >= pages*pageSize/1024 {
		t.Errorf("after reading one page of the second mapping %d kB are resident, want less than all %d", rss, pages*pageSize/1024)
	}
}

func TestBackReplacesStaleFile(t *testing.T) {
	dir := t.TempDir()
	first := codeMapping(t, 4, 1)
	if _, err := Back(first, dir, "c.text"); err != nil {
		t.Fatal(err)
	}
	firstWant := bytes.Clone(first)

	// Same name, same size, other bytes (a stale or damaged file): rewritten, and the
	// code mapped earlier keeps its own bytes (the old file is replaced, not changed).
	other := codeMapping(t, 4, 2)
	otherWant := bytes.Clone(other)
	res, err := Back(other, dir, "c.text")
	if err != nil || !res.Written {
		t.Fatalf("Back over a stale file = %+v, %v; want it rewritten", res, err)
	}
	if !bytes.Equal(other, otherWant) {
		t.Error("the second code changed")
	}
	if !bytes.Equal(first, firstWant) {
		t.Error("rewriting the file changed code mapped from the earlier file")
	}
	// A file of another size is rewritten too.
	small := codeMapping(t, 2, 3)
	if res, err := Back(small, dir, "c.text"); err != nil || !res.Written {
		t.Fatalf("Back over a file of another size = %+v, %v; want it rewritten", res, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "c.text")); !bytes.Equal(got, small) {
		t.Error("the file does not hold the last code")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %d entries, want 1 (no temporary files left)", len(entries))
	}
}

func TestBackErrorsLeaveCodeAlone(t *testing.T) {
	code := codeMapping(t, 4, 4)
	want := bytes.Clone(code)
	addr := uintptr(unsafe.Pointer(&code[0]))
	tests := []struct {
		name    string
		code    []byte
		dir     string
		wantErr error
	}{
		{"not page aligned", code[1:], t.TempDir(), ErrNotMapping},
		{"empty", code[:0], t.TempDir(), nil},
		{"missing dir", code, filepath.Join(t.TempDir(), "missing"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Back(tt.code, tt.dir, "x.text")
			if err == nil {
				t.Fatal("Back succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if file, _ := mapping(t, addr); file != "" {
				t.Fatalf("after a failed Back the code is mapped from %q", file)
			}
			if !bytes.Equal(code, want) {
				t.Fatal("the code changed")
			}
		})
	}
}
