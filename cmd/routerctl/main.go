// Command routerctl is the operator's CLI for routerd: it validates config, inspects and
// dry-runs plugins, reads and writes the federation event store, and talks to a running
// routerd over its control API.
//
// Exit codes: 0 success, 1 the operation failed or found problems (invalid config, failed
// checks), 2 usage error (unknown command or flag, missing argument).
//
// Each command group lives in its own file and registers itself with addCommand in init.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/buildinfo"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "routerctl"
)

// subcommands are registered by the command-group files in init.
var subcommands []func() *cobra.Command

// addCommand registers a constructor for a top-level command group.
func addCommand(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// usageError marks an error as a usage mistake (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentFailure ends the command with exit code 1 without printing anything more: the
// command has already reported what failed (for example a list of config errors).
var silentFailure = errors.New("failed")

// exitStatus ends the command with its exit code without printing anything more (as
// silentFailure, for commands whose exit code carries a meaning of its own: doctor).
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitWith returns an exitStatus error for code.
func exitWith(code int) error { return exitStatus{code} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   programName,
		Short: "Operate routerd: config, plugins, federation events, dataplane",
		Long: `routerctl operates a routerd node.

It validates resource documents, inspects and dry-runs Wasm plugins without a running
daemon, reads and writes the node's federation event store, and reports on deliveries,
peers, subscriptions and the dataplane.

Daemon settings (state dir, plugin dir, ...) come from flags, ROUTERD_* environment
variables, or the settings file (/etc/routerd/routerd.yaml).

Exit codes: 0 ok, 1 failed or problems found, 2 usage error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addOutputFlag(root)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the routerctl version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String(programName))
			return err
		},
	})
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

// run executes routerctl with args on the process's standard streams and returns the
// exit code.
func run(args []string) int {
	code, err := execute(args, os.Stdin, os.Stdout, os.Stderr)
	var es exitStatus
	if err != nil && !errors.Is(err, silentFailure) && !errors.As(err, &es) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", programName, err)
	}
	return code
}

// execute runs a fresh routerctl command tree with args and the given streams, and returns
// the exit code with the error that caused it (nil on success). Tests call it in-process.
func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	return exitCode(cmd, err), err
}

// exitCode maps the outcome of a command to routerctl's exit code.
func exitCode(cmd *cobra.Command, err error) int {
	var ue usageError
	var es exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.Is(err, silentFailure):
		return exitFailed
	case errors.As(err, &ue) || isCobraUsageError(cmd, err):
		return exitUsage
	}
	return exitFailed
}

// isCobraUsageError recognises cobra's own argument and command errors, which it does not type.
func isCobraUsageError(cmd *cobra.Command, err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "received ", "unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return cmd != nil && !cmd.Runnable() && cmd.HasSubCommands()
}

func main() { os.Exit(run(os.Args[1:])) }
