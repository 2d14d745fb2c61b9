// Package abi defines version 1 of the routerd plugin ABI: the version string and its
// major/minor compatibility rules, the plugin manifest, hook names and numeric ids, export
// and host-function names, capability and grant names, error codes, the JSON documents
// exchanged with a plugin (PluginRequest, PluginResult, ActionPlan) and the request and
// response bodies of the host functions in module "routerd".
//
// The package is a leaf: it imports only the standard library, never the Wasm runtime and
// never another routerd package, so that both the host (package host) and guests
// (package abi/guest, compiled to wasip1) can share it. The host encodes and decodes these
// types with encoding/json; the guest SDK uses its own reflection-free codec that produces
// and accepts the same JSON.
//
// See docs/plugin-abi.md for the full description with a worked example of each message.
package abi
