package daemon

import (
	"net/netip"
	"testing"
	"time"

	"routerd.net/routerd/dataplane/observe"
	"routerd.net/routerd/federation/event"
)

func TestObservationEvent(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("10.88.1.1")
	tests := []struct {
		name    string
		obs     observe.Observation
		typ     string
		payload map[string]string
		wantErr bool
	}{
		{
			name: "address observed",
			obs:  observe.Observation{Kind: observe.AddressObserved, At: at, Address: addr, Interface: "lan0", MAC: "02:00:00:00:00:01", Domain: "campus"},
			typ:  event.TypeAddressObserved,
			payload: map[string]string{event.KeyAddress: "10.88.1.1", event.KeyInterface: "lan0", event.KeyMAC: "02:00:00:00:00:01",
				event.KeyDomain: "campus"},
		},
		{
			name: "neighbor moved",
			obs: observe.Observation{Kind: observe.NeighborMoved, At: at, Address: addr, Interface: "lan1", MAC: "02:00:00:00:00:02",
				PreviousInterface: "lan0", PreviousMAC: "02:00:00:00:00:01", Domain: "campus"},
			typ: event.TypeNeighborMoved,
			payload: map[string]string{event.KeyAddress: "10.88.1.1", event.KeyInterface: "lan1", event.KeyMAC: "02:00:00:00:00:02",
				event.KeyPreviousInterface: "lan0", event.KeyPreviousMAC: "02:00:00:00:00:01", event.KeyDomain: "campus"},
		},
		{
			name:    "client ipv4 (the original routerd type)",
			obs:     observe.Observation{Kind: observe.ClientIPv4Observed, At: at, Address: addr, OwnerSide: "cloud", Domain: "campus"},
			typ:     event.TypeClientIPv4Observed,
			payload: map[string]string{event.KeyAddress: "10.88.1.1", event.KeyOwnerSide: "cloud", event.KeyDomain: "campus"},
		},
		{
			name:    "unknown kind",
			obs:     observe.Observation{Kind: "bogus", Address: addr},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ObservationEvent(tt.obs, "lab", "router-a", time.Minute)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("event %+v, want an error", ev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("not a valid federation event: %v", err)
			}
			if ev.Type != tt.typ || ev.Group != "lab" || ev.SourceNode != "router-a" || ev.Subject != "10.88.1.1" ||
				!ev.ObservedAt.Equal(at) || !ev.ExpiresAt.Equal(at.Add(time.Minute)) {
				t.Fatalf("event %+v", ev)
			}
			if len(ev.Payload) != len(tt.payload) {
				t.Fatalf("payload %v, want %v", ev.Payload, tt.payload)
			}
			for k, v := range tt.payload {
				if ev.Payload[k] != v {
					t.Fatalf("payload %v, want %v", ev.Payload, tt.payload)
				}
			}
		})
	}
}
