package schemas_test

import (
	"errors"
	"fmt"

	"routerd.net/routerd/schemas"
)

func ExampleDecode() {
	doc := `apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata:
  name: sam
spec:
  nodeName: router-a
  auth: {secretFile: /etc/routerd/sam.key}
  replayWindow: 5 minutes
---
apiVersion: federation.routerd.net/v1alpha1
kind: EventPeer
metadata:
  name: router-b
spec:
  groupRef: federation
  nodeName: router-b
  endpoint: http://127.0.0.1:19472
`
	_, err := schemas.Decode("federation.yaml", []byte(doc))
	var el *schemas.ErrorList
	if errors.As(err, &el) {
		for _, p := range el.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// federation.yaml:8: EventGroup/sam: spec.replayWindow: want a duration like 200ms, 30s, 5m or 1h30m, got "5 minutes"
	// federation.yaml:15: EventPeer/router-b: spec.groupRef: no EventGroup named "federation"; known: sam
}

func ExampleConfig_EventPeersOf() {
	cfg, err := schemas.LoadDir("../testdata/config/valid")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range cfg.EventPeersOf("sam") {
		fmt.Println(p.Metadata.Name, p.Spec.Endpoint, p.Spec.Direction)
	}
	// Output:
	// router-b http://127.0.0.1:19472 push
	// router-c http://127.0.0.1:19473 push
}
