// Command badjson is a hostile test plugin that returns malformed output from every hook.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{Name: "badjson", Version: "1.0.0"})
	guest.HandleRaw(abi.HookOnEvents, func([]byte) ([]byte, error) {
		return []byte(`{"status":{"ttl":"30m","resources":[{"kind":"RemoteAddressClaim"`), nil // truncated
	})
	guest.HandleRaw(abi.HookPlan, func([]byte) ([]byte, error) {
		return []byte("this is not JSON"), nil
	})
	guest.HandleRaw(abi.HookExecute, func([]byte) ([]byte, error) {
		return []byte(`{"status":{"resources":["not an object"]}}`), nil // valid JSON, invalid document
	})
}

func main() {}
