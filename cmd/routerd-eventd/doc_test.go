package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"routerd.net/routerd/federation/transport"
	"routerd.net/routerd/schemas"
)

// docPath is the documentation whose marked blocks the tests below run.
const docPath = "../../docs/transport.md"

// docBlocks returns the fenced blocks of a Markdown file whose info string carries a
// doctest:NAME word, by NAME.
func docBlocks(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var (
		name string
		body strings.Builder
		in   bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "```") {
			if in {
				body.WriteString(line + "\n")
			}
			continue
		}
		if in {
			if name != "" {
				if _, dup := out[name]; dup {
					t.Fatalf("%s: block doctest:%s appears twice", path, name)
				}
				out[name] = body.String()
			}
			in, name = false, ""
			body.Reset()
			continue
		}
		in = true
		for _, w := range strings.Fields(strings.TrimPrefix(line, "```")) {
			if n, ok := strings.CutPrefix(w, "doctest:"); ok {
				name = n
			}
		}
	}
	if in {
		t.Fatalf("%s: unterminated code block", path)
	}
	return out
}

func needBlocks(t *testing.T, blocks map[string]string, names ...string) {
	t.Helper()
	for _, n := range names {
		if strings.TrimSpace(blocks[n]) == "" {
			t.Fatalf("%s has no block marked doctest:%s", docPath, n)
		}
	}
}

// TestTransportDocExample runs the standalone example of docs/transport.md ("Try it")
// with the binaries built from this tree: the setup script, both transports (each until
// it logs that it is ready), the routerctl commands; the output must have the shape the
// doc shows.
func TestTransportDocExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds routerd-eventd and routerctl")
	}
	blocks := docBlocks(t, docPath)
	needBlocks(t, blocks, "setup", "daemons", "run", "output")

	bin := builtBinaries(t)

	// The doc's directory and ports become the test's own.
	dir := t.TempDir()
	ports := map[string]string{"19571": portOf(t, freePort(t)), "19572": portOf(t, freePort(t))}
	subst := func(s string) string {
		for from, to := range ports {
			s = strings.ReplaceAll(s, from, to)
		}
		return s
	}
	env := append(os.Environ(), "D="+dir, "ROUTERD_SETTINGS=", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	// Setup: the shell script as written, without the line that picks the directory.
	var script []string
	for _, line := range strings.Split(subst(blocks["setup"]), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "D=") {
			script = append(script, line)
		}
	}
	sh := exec.Command("sh", "-e", "-c", strings.Join(script, "\n"))
	sh.Env, sh.Dir = env, dir
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("setup block: %v\n%s", err, out)
	}

	argv := func(line string) []string {
		line = strings.TrimSuffix(strings.TrimSpace(line), "&")
		f := strings.Fields(os.Expand(line, func(k string) string {
			if k == "D" {
				return dir
			}
			t.Fatalf("doc command %q uses $%s, which the test does not set", line, k)
			return ""
		}))
		f[0] = filepath.Join(bin, f[0])
		return f
	}

	// Daemons, each ready when it says so.
	for i, line := range lines(subst(blocks["daemons"])) {
		n := &node{name: "daemon-" + strconv.Itoa(i), dir: dir}
		a := argv(line)
		n.log = newSyncBuffer()
		n.cmd = exec.Command(a[0], a[1:]...)
		n.cmd.Env, n.cmd.Dir = env, dir
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		n.exited = make(chan error, 1)
		go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(n.cmd, n.exited)
		t.Cleanup(func() {
			// As the doc says: SIGTERM drains and exits 0.
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-n.exited:
				if err != nil {
					t.Errorf("%s: exit after SIGTERM: %v\n%s", line, err, n.log.String())
				}
			case <-time.After(20 * time.Second):
				_ = n.cmd.Process.Kill()
				t.Errorf("%s: still running 20s after SIGTERM", line)
			}
		})
		if ok, err := n.log.waitLine(readyLine, n.exited, 15*time.Second); !ok {
			t.Fatalf("%s: not ready: %v\n%s", line, err, n.log.String())
		}
	}

	// Commands: every one but the last once; the last until its output has the doc's
	// shape (the push to the other node is asynchronous) or 10s pass.
	want := lines(blocks["output"])
	cmds := lines(subst(blocks["run"]))
	var got []string
	for _, line := range cmds[:len(cmds)-1] {
		got = append(got, lines(runDocCmd(t, argv(line), env, dir))...)
	}
	last := argv(cmds[len(cmds)-1])
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		all := append(append([]string(nil), got...), lines(runDocCmd(t, last, env, dir))...)
		err := sameShape(want, all)
		if err == "" {
			break
		}
		select {
		case <-deadline.C:
			t.Fatalf("output does not have the doc's shape after 10s: %s\ngot:\n%s\nwant:\n%s", err, strings.Join(all, "\n"), strings.Join(want, "\n"))
		case <-tick.C:
		}
	}
}

// built holds routerd-eventd and routerctl built once per test process (-count=N runs
// the example N times); TestMain removes the directory.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func builtBinaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "routerd-eventd-doctest-")
		if built.err != nil {
			return
		}
		build := exec.Command("go", "build", "-o", built.dir+string(filepath.Separator), "./cmd/routerd-eventd", "./cmd/routerctl")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lines returns the non-blank lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func runDocCmd(t *testing.T, argv, env []string, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return string(out)
}

var (
	ulidRE = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
)

// sameShape compares output with the doc's sample word by word: ids and times need only
// look like ids and times (the same id wherever the doc repeats one), everything else
// must be equal. It returns "" or what differs.
func sameShape(want, got []string) string {
	if len(got) != len(want) {
		return strconv.Itoa(len(got)) + " lines, want " + strconv.Itoa(len(want))
	}
	ids := map[string]string{}
	for i := range want {
		w, g := strings.Fields(want[i]), strings.Fields(got[i])
		if len(w) != len(g) {
			return "line " + strconv.Itoa(i+1) + ": " + strconv.Itoa(len(g)) + " columns, want " + strconv.Itoa(len(w))
		}
		for j := range w {
			switch {
			case ulidRE.MatchString(w[j]):
				if !ulidRE.MatchString(g[j]) {
					return "line " + strconv.Itoa(i+1) + ": " + g[j] + " is not an id"
				}
				if prev, ok := ids[w[j]]; ok && prev != g[j] {
					return "line " + strconv.Itoa(i+1) + ": id " + g[j] + ", want the same id as before (" + prev + ")"
				}
				ids[w[j]] = g[j]
			case timeRE.MatchString(w[j]):
				if !timeRE.MatchString(g[j]) {
					return "line " + strconv.Itoa(i+1) + ": " + g[j] + " is not a time"
				}
			case w[j] != g[j]:
				return "line " + strconv.Itoa(i+1) + ": " + g[j] + ", want " + w[j]
			}
		}
	}
	return ""
}

// TestTransportDocLegacyConfig: the routerd v1alpha1 JSON config of docs/transport.md
// and the YAML shown as its equivalent give the same resources.
func TestTransportDocLegacyConfig(t *testing.T) {
	blocks := docBlocks(t, docPath)
	needBlocks(t, blocks, "legacy-json", "legacy-yaml")
	path := filepath.Join(t.TempDir(), "eventd.json")
	if err := os.WriteFile(path, []byte(blocks["legacy-json"]), 0o600); err != nil {
		t.Fatal(err)
	}
	lc, err := transport.LoadLegacyConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := schemas.NewConfig(lc.Resources()...)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := schemas.Decode("transport.md.yaml", []byte(blocks["legacy-yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	j, y := fromJSON.Objects(), fromYAML.Objects()
	if len(j) != len(y) {
		t.Fatalf("JSON gives %d resources, YAML %d", len(j), len(y))
	}
	for i := range j {
		if !reflect.DeepEqual(j[i], y[i]) {
			t.Errorf("resource %d differs:\nJSON: %+v\nYAML: %+v", i, j[i], y[i])
		}
	}
}

func TestSameShape(t *testing.T) {
	want := []string{"01M94KWWKQHD5QHV40MCENVD9A", "SEQ  ID  SOURCE  OBSERVED", "1  01M94KWWKQHD5QHV40MCENVD9A  a  2026-12-06T02:45:59Z"}
	tests := []struct {
		name string
		got  []string
		ok   bool
	}{
		{name: "other id and time", ok: true, got: []string{"01KBS8QH1D7ZP3J7R8Y5N2V4CW", "SEQ ID SOURCE OBSERVED", "1 01KBS8QH1D7ZP3J7R8Y5N2V4CW a 2027-01-01T00:00:00.5Z"}},
		{name: "another source", got: []string{"01KBS8QH1D7ZP3J7R8Y5N2V4CW", "SEQ ID SOURCE OBSERVED", "1 01KBS8QH1D7ZP3J7R8Y5N2V4CW b 2027-01-01T00:00:00Z"}},
		{name: "listed id is not the emitted one", got: []string{"01KBS8QH1D7ZP3J7R8Y5N2V4CW", "SEQ ID SOURCE OBSERVED", "1 01KBS8QH1D7ZP3J7R8Y5N2V4CX a 2027-01-01T00:00:00Z"}},
		{name: "no rows yet", got: []string{"01KBS8QH1D7ZP3J7R8Y5N2V4CW", "SEQ ID SOURCE OBSERVED"}},
		{name: "not a time", got: []string{"01KBS8QH1D7ZP3J7R8Y5N2V4CW", "SEQ ID SOURCE OBSERVED", "1 01KBS8QH1D7ZP3J7R8Y5N2V4CW a -"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := sameShape(want, tt.got); (diff == "") != tt.ok {
				t.Errorf("sameShape = %q, want ok=%v", diff, tt.ok)
			}
		})
	}
}
