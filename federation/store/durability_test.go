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
		// Each round kills at another point: right after an acknowledgement, or a little
		// later, when the child is deeper into the next batch's transaction.
		acked := runAndKillWriter(t, path, 30+round*20, time.Duration(round)*400*time.Microsecond)
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

// runAndKillWriter starts the writer child on path, waits for killAfter acknowledgements
// and delay, SIGKILLs it, and returns every batch it acknowledged.
func runAndKillWriter(t *testing.T, path string, killAfter int, delay time.Duration) map[int]bool {
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
				time.Sleep(delay)
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

// Environment of the multi-process writer child.
const envWriterChild = "ROUTERD_STORE_WRITER_CHILD" // "path|name"

// TestMultiProcessWriterChild is a child of TestMultiProcessWriters: it inserts 40
// batches of 50 events named after the child and exits 0, or prints ERR and exits 3.
func TestMultiProcessWriterChild(t *testing.T) {
	spec := os.Getenv(envWriterChild)
	if spec == "" {
		t.Skip("helper process for TestMultiProcessWriters")
	}
	path, name, _ := strings.Cut(spec, "|")
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	ctx := context.Background()
	for b := range 40 {
		batch := make([]event.Event, 50)
		for i := range batch {
			batch[i] = event.Event{ID: fmt.Sprintf("%s-%03d-%03d", name, b, i), Group: name, Type: "t",
				ExpiresAt: time.Now().Add(time.Hour)}
		}
		if _, err := s.InsertEvents(ctx, batch); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		if err := s.SetCursor(ctx, name, int64(b)); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
	}
	if err := s.Close(); err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// TestMultiProcessWriters runs two writer processes on one file (as routerd and
// routerd-eventd do) while this process inserts expired events and prunes them: no
// process sees SQLITE_BUSY, every event of the writers is stored, the file is intact.
func TestMultiProcessWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	path := filepath.Join(t.TempDir(), "routerd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var cmds []*exec.Cmd
	for _, name := range []string{"routerd", "eventd"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessWriterChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envWriterChild+"="+path+"|"+name)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s output:\n%s", name, out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	done := make(chan error, len(cmds))
	for _, c := range cmds {
		go func() { done <- c.Wait() }()
	}
	// Meanwhile: insert expired events and prune them, bounded in rounds and time.
	deadline := time.Now().Add(60 * time.Second)
	running := len(cmds)
	for round := 0; running > 0 && round < 10000 && time.Now().Before(deadline); round++ {
		batch := make([]event.Event, 20)
		for i := range batch {
			batch[i] = event.Event{ID: fmt.Sprintf("old-%05d-%02d", round, i), Group: "old", Type: "t",
				ObservedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		}
		if _, err := s.InsertEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(ctx, PruneOptions{Expired: true, BatchSize: 7}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer process failed: %v", err)
			}
			running--
		default:
		}
	}
	for ; running > 0; running-- {
		if err := <-done; err != nil {
			t.Fatalf("writer process failed: %v", err)
		}
	}
	for _, g := range []string{"routerd", "eventd"} {
		n, err := s.CountEvents(ctx, EventFilter{Group: g})
		if err != nil || n != 40*50 {
			t.Errorf("group %s: %d events, %v; want %d", g, n, err, 40*50)
		}
		if c, _ := s.GetCursor(ctx, g); c != 39 {
			t.Errorf("cursor %s = %d, want 39", g, c)
		}
	}
	if n, _ := s.CountEvents(ctx, EventFilter{Group: "old"}); n != 0 {
		t.Errorf("%d expired events left after the last prune", n)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}
