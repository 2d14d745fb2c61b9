// Command event-to-remote-claim is the bundled routerd plugin that turns
// routerd.client.ipv4.observed events into RemoteAddressClaim documents (on_events hook),
// which the host wraps into DynamicConfigParts. The logic lives in package claim, shared
// with the native subprocess baseline in testdata/plugins/subprocess-claim.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/event-to-remote-claim/claim"
)

// Manifest is the plugin's manifest.
var Manifest = abi.Manifest{
	Name:         "event-to-remote-claim",
	Version:      "1.0.0",
	Hooks:        []abi.Hook{abi.HookOnEvents},
	Capabilities: []abi.Capability{abi.CapProposeDynamicConfig},
	Description:  "observed client IPv4 address events -> RemoteAddressClaim (ttl 30m)",
}

func init() {
	guest.Register(Manifest)
	guest.OnEvents(onEvents)
}

// builder's buffers are reused across calls: the SDK encodes each result before the next
// call, so the guest allocates (and collects) less per call.
var builder claim.Builder

func onEvents(req *abi.Request) (*abi.Result, error) { return builder.Build(req), nil }

func main() {}
