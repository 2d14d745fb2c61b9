package qualify

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"
)

// netnsAvailable reports why routers cannot get their own namespaces here.
func netnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root, so no network namespaces")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("no network namespace support: %w", err)
	}
	return nil
}

// lockDir takes an exclusive flock on dir/run.lock for the life of the returned file:
// a run directory whose lock can be taken belongs to a harness that is gone.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "run.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("qualify: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("qualify: lock %s: %w", dir, err)
	}
	return f, nil
}

// cleanLeftovers removes what killed runs left under root: for every run directory
// whose lock is free, the processes started from it (found by their command line
// naming the directory) are killed, its namespaces deleted and the directory removed.
// It returns one line per thing removed.
func cleanLeftovers(root string, log *slog.Logger) []string {
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(root, workPrefix+"*"))
	for _, dir := range dirs {
		lock, err := lockDir(dir)
		if err != nil {
			continue // a live run, or not ours
		}
		id := strings.TrimPrefix(filepath.Base(dir), workPrefix)
		for _, pid := range processesUsing(dir) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				out = append(out, fmt.Sprintf("process %d of run %s", pid, id))
			}
		}
		out = append(out, deleteNamespaces("rdq"+id+"-")...)
		lock.Close()
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("qualify: remove leftover run dir", "dir", dir, "err", err)
		} else {
			out = append(out, "directory "+dir)
		}
	}
	return out
}

// processesUsing returns the pids whose command line mentions dir.
func processesUsing(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// deleteNamespaces deletes the named namespaces starting with prefix.
func deleteNamespaces(prefix string) []string {
	var out []string
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := netns.DeleteNamed(e.Name()); err == nil {
				out = append(out, "namespace "+e.Name())
			}
		}
	}
	return out
}

// Leftovers lists what runs under root left behind that Run would clean (live runs
// excluded): run directories, their processes and namespaces. Tests use it.
func Leftovers(root string) []string {
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(root, workPrefix+"*"))
	for _, dir := range dirs {
		out = append(out, "directory "+dir)
		for _, pid := range processesUsing(dir) {
			out = append(out, fmt.Sprintf("process %d", pid))
		}
		id := strings.TrimPrefix(filepath.Base(dir), workPrefix)
		ents, _ := os.ReadDir("/run/netns")
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "rdq"+id+"-") {
				out = append(out, "namespace "+e.Name())
			}
		}
	}
	return out
}
