// Command claim-v2 is a test candidate version of event-to-remote-claim for replay
// tests (routerctl plugin dry-run --replay --against): it produces the same claims
// except that it drops cloud-side ones and proposes a 45m TTL, so a replay must report
// exactly those differences.
package main

import (
	"bytes"
	"encoding/json"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/event-to-remote-claim/claim"
)

func init() {
	guest.Register(abi.Manifest{
		Name:    "event-to-remote-claim",
		Version: "2.0.0-test",
		Hooks:   []abi.Hook{abi.HookOnEvents},
	})
	guest.OnEvents(func(req *abi.Request) (*abi.Result, error) {
		res := claim.Build(req)
		kept := res.Status.Resources[:0]
		for _, r := range res.Status.Resources {
			if !bytes.Contains(r, []byte(`"ownerSide":"cloud"`)) {
				kept = append(kept, json.RawMessage(r))
			}
		}
		res.Status.Resources = kept
		res.Status.TTL = "45m"
		return res, nil
	})
}

func main() {}
