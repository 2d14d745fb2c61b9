package daemon

import (
	"fmt"
	"time"

	"routerd.net/routerd/dataplane/observe"
	"routerd.net/routerd/federation/event"
)

// ObservationEvent turns an observation of the dataplane observer into a federation
// event of group from sourceNode, living ttl: address.observed, neighbor.moved or
// routerd.client.ipv4.observed with the typed payloads of package event (the subject is
// the address). The dataplane knows nothing of events; this is where they are made.
func ObservationEvent(o observe.Observation, group, sourceNode string, ttl time.Duration) (event.Event, error) {
	addr := o.Address.String()
	var p event.Payloader
	switch o.Kind {
	case observe.AddressObserved:
		p = event.AddressObserved{Address: addr, Interface: o.Interface, MAC: o.MAC, Domain: o.Domain}
	case observe.NeighborMoved:
		p = event.NeighborMoved{Address: addr, Interface: o.Interface, MAC: o.MAC,
			PreviousInterface: o.PreviousInterface, PreviousMAC: o.PreviousMAC, Domain: o.Domain}
	case observe.ClientIPv4Observed:
		p = event.ClientIPv4Observed{Address: addr, OwnerSide: o.OwnerSide, Domain: o.Domain}
	default:
		return event.Event{}, fmt.Errorf("routerd: observation of %s: unknown kind %q", addr, o.Kind)
	}
	return event.NewTyped(group, sourceNode, "", p, ttl, o.At), nil
}
