// Package daemon is the routerd daemon: it wires the configuration, the node's store,
// the Wasm plugin host, the subscription engine, the dynamic-part manager, the dataplane
// reconciler and the routerd-eventd supervisor together, runs the reconcile loop and its
// history, and serves the local control API.
//
// The routerd command parses flags and calls New, Run and Shutdown; the demo
// (cmd/internal/demo) starts several daemons in one process. Dependencies flow one way:
// cmd → daemon → federation, host, dataplane → schemas → abi.
package daemon
