package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/daemon"
	"routerd.net/routerd/cmd/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run three routers on 127.0.0.1 and show an observed address become a claim",
		Long: `routerd demo starts three routers (router-a, router-b, router-c) on 127.0.0.1, each with
its own state directory in a temporary directory, its own routerd-eventd child on a free
port, and a dry-run dataplane. It then emits one routerd.client.ipv4.observed event
(address.observed) on router-a and shows, step by step with timings:

  1. the event stored on router-a;
  2. the event delivered (HMAC-signed push) to router-b and router-c;
  3. the event-to-remote-claim plugin (Wasm) turning it into a RemoteAddressClaim on
     router-b and router-c, checked against the DynamicOverridePolicy and stored as a
     DynamicConfigPart;
  4. the dataplane changes router-b and router-c plan for the claim (dry run);

With --cloud (make demo-cloud) it goes on with the provider half on router-b, whose
claim has capture provider-secondary-ip through an aws CloudProviderProfile that the demo
points at a fake EC2 on 127.0.0.1 (it checks SigV4 signatures with a key made for the run):

  6. the provider-aws plugin's plan hook proposes assign-secondary-ip for the claim;
  7. an operator approves it; executing it is refused because the ProviderActionPolicy
     is dryRunOnly — nothing reaches the provider;
  8. the policy is changed to execute (config reload), the plan approved again and
     executed: routerd signs the plugin's EC2 request (the plugin never sees the key)
     and the fake EC2's NIC now carries the address;
  9. the audit chain of every decision verifies.

and shuts everything down. No root and no setup are needed. It exits 1 if any step fails
or times out, so it doubles as an end-to-end test.

The routers' resource documents are read from --config-dir (one subdirectory per router);
their listen ports and peer endpoints are replaced with free ports and a random shared
secret is written for the run.`,
		Example: `  make demo
  make demo-cloud
  routerd demo --plugin-dir bin/plugins --config-dir testdata/demo --cloud`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			if _, err := netip.ParseAddr(o.Address); err != nil {
				return usageError{fmt.Errorf("--address %q: %w", o.Address, err)}
			}
			switch o.Netns {
			case "", "off", "auto", "on":
			default:
				return usageError{fmt.Errorf("--netns %q: want auto, on or off", o.Netns)}
			}
			if o.EventdBinary == "" {
				o.EventdBinary = daemon.DefaultEventdBinary()
			}
			if o.EventdBinary == "" {
				return usageError{errors.New("routerd-eventd not found next to routerd: build it (make build) or pass --eventd-binary")}
			}
			return demo.Run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.PluginDir, "plugin-dir", "bin/plugins", "directory holding event-to-remote-claim.wasm")
	fs.StringVar(&o.ConfigDir, "config-dir", "testdata/demo", "directory with one config subdirectory per router (router-a, router-b, router-c)")
	fs.StringVar(&o.EventdBinary, "eventd-binary", "", "routerd-eventd executable (default: next to routerd)")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "give up when the whole demo takes longer")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (state, logs) afterwards")
	fs.StringVar(&o.OTLPEndpoint, "otlp-endpoint", os.Getenv("ROUTERD_OTLP_ENDPOINT"), "OTLP/HTTP base URL to export the routers' traces to, e.g. http://127.0.0.1:4318 (env ROUTERD_OTLP_ENDPOINT)")
	fs.StringVar(&o.Address, "address", "10.88.60.9", "the observed address (inside the lab domain 10.88.0.0/16)")
	fs.BoolVar(&o.Cloud, "cloud", false, "also run the provider steps: plan, policy gate, approval and execution against a fake EC2")
	fs.StringVar(&o.Netns, "netns", "auto", "apply the claims to real kernels in network namespaces: auto (when root), on, off (dry run)")
	return cmd
}
