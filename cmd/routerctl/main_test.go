package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// ctlRun is what one in-process routerctl run produced.
type ctlRun struct {
	stdout string // what the command printed
	stderr string // what cobra and the command wrote to stderr
	err    string // the error run() would print ("" on success)
	code   int    // the exit code run() would return
}

// runCtl runs routerctl in-process with stdin and args.
func runCtl(t *testing.T, stdin string, args ...string) ctlRun {
	t.Helper()
	var out, errb bytes.Buffer
	code, err := execute(args, strings.NewReader(stdin), &out, &errb)
	r := ctlRun{stdout: out.String(), stderr: errb.String(), code: code}
	if err != nil && !errors.Is(err, silentFailure) {
		r.err = err.Error()
	}
	return r
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "version", args: []string{"version"}, want: exitOK},
		{name: "unknown command", args: []string{"no-such-command"}, want: exitUsage},
		{name: "unknown flag", args: []string{"version", "--no-such-flag"}, want: exitUsage},
		{name: "extra argument", args: []string{"version", "extra"}, want: exitUsage},
		{name: "bad output format", args: []string{"version", "-o", "xml"}, want: exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}

func TestCompletionScript(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"completion", "bash"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "routerctl") {
		t.Fatalf("completion script does not mention routerctl:\n%.200s", out.String())
	}
}
