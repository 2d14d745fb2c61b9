package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
)

// Environment of the durability writer child process.
const (
	envDurabilityChild = "ROUTERD_STORE_DURABILITY_CHILD"
	durabilityBatch    = 100
	durabilityMaxBatch = 100000
)

// TestDurabilityWriterChild is the child process of TestDurabilitySIGKILL: it inserts
// batches of durabilityBatch events forever and prints "ACK n" after batch n returned.
func TestDurabilityWriterChild(t *testing.T) {
	path := os.Getenv(envDurabilityChild)
	if path == "" {
		t.Skip("helper process for TestDurabilitySIGKILL")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	ctx := context.Background()
	payload := strings.Repeat("p", 700)
	for b := 0; b < durabilityMaxBatch; b++ {
		batch := make([]event.Event, durabilityBatch)
		for i := range batch {
			batch[i] = event.Event{ID: fmt.Sprintf("b%06d-e%03d", b, i), Group: "durable", Type: "t",
				Subject: strconv.Itoa(b), Payload: map[string]string{"batch": strconv.Itoa(b), "pad": payload}}
		}
		if _, err := s.InsertEvents(ctx, batch); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		// os.Stdout is unbuffered: the line is in the pipe before the next batch starts.
		fmt.Printf("ACK %d\n", b)
	}
	os.Exit(0)
}

// TestDurabilitySIGKILL kills a writer process in the middle of a stream of batched
// inserts and checks on the real file that every acknowledged batch is complete, no batch
// is partial, and the file passes PRAGMA integrity_check.
func TestDurabilitySIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a writer process")
	}
	path := filepath.Join(t.TempDir(), "routerd.db")
	for round := range 3 {
		acked := runAndKillWriter(t, path, 30+round*20)
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		ctx := context.Background()
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		rows, err := s.ReadDB().QueryContext(ctx, `SELECT subject, COUNT(*) FROM events WHERE group_name = 'durable' GROUP BY subject`)
		if err != nil {
			t.Fatal(err)
		}
		present := map[int]int{}
		for rows.Next() {
			var subject string
			var n int
			if err := rows.Scan(&subject, &n); err != nil {
				t.Fatal(err)
			}
			b, _ := strconv.Atoi(subject)
			present[b] = n
		}
		rows.Close()
		for b, n := range present {
			if n != durabilityBatch {
				t.Errorf("round %d: batch %d is partial: %d of %d events", round, b, n, durabilityBatch)
			}
		}
		for b := range acked {
			if present[b] != durabilityBatch {
				t.Errorf("round %d: acknowledged batch %d has %d events, want %d", round, b, present[b], durabilityBatch)
			}
		}
		t.Logf("round %d: %d batches acknowledged, %d stored (at most one more than acknowledged)", round, len(acked), len(present))
		if len(present) > len(acked)+1 {
			t.Errorf("round %d: %d batches stored but only %d acknowledged", round, len(present), len(acked))
		}
		s.Close()
		// The next round's writer starts its numbering again; clear the table so each round
		// checks its own stream.
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
	}
}

// runAndKillWriter starts the writer child on path, waits for killAfter acknowledgements,
// SIGKILLs it, and returns every batch it acknowledged.
func runAndKillWriter(t *testing.T, path string, killAfter int) map[int]bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityWriterChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDurabilityChild+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]bool{}
	killed := false
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "ACK "); ok {
			b, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			acked[b] = true
			if !killed && len(acked) >= killAfter {
				// Kill in the middle of the next batch's transaction (the child is
				// already inserting it); lines still in the pipe are read below.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
			continue
		}
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", err)
	}
	return acked
}
