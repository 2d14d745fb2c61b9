// Command subprocess-claim is the native equivalent of the event-to-remote-claim Wasm
// plugin, in the original routerd plugin model: a normal program reading a PluginRequest
// as JSON on stdin and writing the PluginResult as JSON on stdout (encoding/json), exiting
// non-zero with a message on stderr on failure. It shares the claim logic with the Wasm
// plugin and exists as the benchmark baseline (one fork/exec per call).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/plugins/event-to-remote-claim/claim"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "subprocess-claim:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(io.LimitReader(in, 16<<20))
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	req, err := abi.DecodeRequest(data)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(claim.Build(req)); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}
