package event_test

import (
	"fmt"

	"routerd.net/routerd/federation/event"
)

func ExampleDecode() {
	body := []byte(`{"id":"evt-1","group":"cloudedge","sourceNode":"onprem-router",
		"type":"routerd.client.ipv4.observed","subject":" 10.88.60.9 ",
		"payload":{"domain":"lab"},"observedAt":"2026-05-01T10:00:00+02:00"}`)
	e, err := event.Decode(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := e.ClientIPv4Observed()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Address, c.OwnerSide, c.Domain)
	canonical, _ := e.Marshal()
	fmt.Println(string(canonical))
	// Output:
	// 10.88.60.9 onprem lab
	// {"id":"evt-1","group":"cloudedge","sourceNode":"onprem-router","type":"routerd.client.ipv4.observed","subject":"10.88.60.9","dedupeKey":"evt-1","payload":{"domain":"lab"},"observedAt":"2026-05-01T08:00:00Z"}
}

func ExampleDecode_invalid() {
	_, err := event.Decode([]byte(`{"id":"evt-2","group":"g","payload":{"n":1}}`))
	fmt.Println(err)
	// Output:
	// payload.n: payload values must be strings, got JSON number
}
