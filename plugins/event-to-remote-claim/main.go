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
	guest.OnEventsView(onEvents)
}

// builder's and inputs' buffers are reused across calls: the SDK encodes each result
// before the next call, so the guest allocates (and collects) less per call.
var (
	builder claim.Builder
	inputs  []claim.Input
)

// onEvents reads the events as views (no payload maps: allocations and map operations are
// what costs most inside a Go Wasm guest) and runs the shared claim logic.
func onEvents(req *guest.RequestView) (*abi.Result, error) {
	ins := inputs[:0]
	for i := range req.Events {
		ev := &req.Events[i]
		in := claim.Input{Type: ev.Event.Type, Subject: ev.Event.Subject}
		for _, f := range ev.PayloadFields() {
			in.SetPayload(f.Key, f.Value)
		}
		ins = append(ins, in)
	}
	inputs = ins
	return builder.BuildInputs(req.Request.Spec.Now, ins), nil
}

func main() {}
