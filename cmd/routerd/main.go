// Command routerd is the routerd daemon: it loads the resource documents, keeps the node's
// event store, runs the Wasm plugin host and the subscription engine, turns plugin output
// into DynamicConfigParts, reconciles the dataplane, supervises one routerd-eventd per
// EventGroup and serves the local control API.
//
// Subcommands: run (the default), demo (three routers on 127.0.0.1), version.
//
// Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/buildinfo"
)

const programName = "routerd"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks a usage mistake (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	run := newRunCmd()
	root := &cobra.Command{
		Use:   programName,
		Short: "The routerd daemon",
		Long: `routerd is a declarative Linux router daemon whose site-specific logic runs as
sandboxed WebAssembly plugins, with an HMAC-signed event federation between routers.

Without a subcommand routerd runs the daemon ("routerd run"). "routerd demo" starts three
routers on 127.0.0.1 and shows an observed address become a RemoteAddressClaim on the
other two.

Exit codes: 0 ok, 1 failed, 2 usage error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          run.RunE,
	}
	// The root runs the daemon too, so it takes the same flags.
	root.Flags().AddFlagSet(run.Flags())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	root.AddCommand(run, newDemoCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the routerd version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String(programName))
			return err
		},
	})
	return root
}

// run executes routerd with args and returns the exit code.
func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, programName+":") {
		msg = programName + ": " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(cmd, err) {
		return exitUsage
	}
	return exitFailed
}

// isCobraUsageError recognises cobra's own argument and flag errors, which it does not type.
func isCobraUsageError(cmd *cobra.Command, err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return cmd != nil && !cmd.Runnable() && cmd.HasSubCommands()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
