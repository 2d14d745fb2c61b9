package event

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Built-in event types.
const (
	// TypeClientIPv4Observed: a client IPv4 address was observed at the source node's site
	// (the original routerd type; event-to-remote-claim turns it into a RemoteAddressClaim).
	TypeClientIPv4Observed = "routerd.client.ipv4.observed"
	// TypeAddressObserved: the dataplane observer saw a new host address inside an
	// AddressMobilityDomain prefix.
	TypeAddressObserved = "address.observed"
	// TypeNeighborMoved: the dataplane observer saw a known host address move to another
	// link-layer address or interface.
	TypeNeighborMoved = "neighbor.moved"
)

// Payload keys of the built-in types.
const (
	KeyAddress           = "address"
	KeyOwnerSide         = "ownerSide"
	KeyDomain            = "domain"
	KeyProviderRef       = "providerRef"
	KeyNicRef            = "nicRef"
	KeyPeerRef           = "peerRef"
	KeyInterface         = "interface"
	KeyMAC               = "mac"
	KeyPreviousInterface = "previousInterface"
	KeyPreviousMAC       = "previousMac"
)

// Payloader is a typed payload of a built-in event type.
type Payloader interface {
	// EventType is the event type the payload belongs to.
	EventType() string
	// Payload is the envelope's string map (empty values left out).
	Payload() map[string]string
}

// NewTyped builds an event of p's type with p's payload (see New); the subject defaults
// to the payload's address when subject is empty.
func NewTyped(group, sourceNode, subject string, p Payloader, ttl time.Duration, now time.Time) Event {
	payload := p.Payload()
	if subject == "" {
		subject = payload[KeyAddress]
	}
	return New(group, p.EventType(), sourceNode, subject, payload, ttl, now)
}

// putNonEmpty sets m[k] = v when v is not blank.
func putNonEmpty(m map[string]string, k, v string) {
	if v = strings.TrimSpace(v); v != "" {
		m[k] = v
	}
}

// ClientIPv4Observed is the payload of routerd.client.ipv4.observed.
type ClientIPv4Observed struct {
	// Address is the IPv4 address (payload.address, else the event subject), optionally
	// with a prefix length as the original allowed.
	Address string
	// OwnerSide is where the address lives: onprem (default) or cloud.
	OwnerSide string
	// Domain is the AddressMobilityDomain name.
	Domain string
	// ProviderRef, NicRef and PeerRef are optional hints for the claim.
	ProviderRef, NicRef, PeerRef string
}

// EventType implements Payloader.
func (ClientIPv4Observed) EventType() string { return TypeClientIPv4Observed }

// Payload implements Payloader.
func (c ClientIPv4Observed) Payload() map[string]string {
	m := map[string]string{}
	putNonEmpty(m, KeyAddress, c.Address)
	putNonEmpty(m, KeyOwnerSide, c.OwnerSide)
	putNonEmpty(m, KeyDomain, c.Domain)
	putNonEmpty(m, KeyProviderRef, c.ProviderRef)
	putNonEmpty(m, KeyNicRef, c.NicRef)
	putNonEmpty(m, KeyPeerRef, c.PeerRef)
	return m
}

// IP parses Address (a prefix length is dropped).
func (c ClientIPv4Observed) IP() (netip.Addr, error) { return parseHostAddr(KeyAddress, c.Address) }

// ClientIPv4Observed returns the typed payload of a routerd.client.ipv4.observed event.
// Address falls back to the subject, OwnerSide defaults to onprem.
//
// # Errors
//
// ErrWrongType for another type; a *FieldError when neither payload.address nor subject
// holds an IPv4 address, or ownerSide is neither onprem nor cloud.
func (e Event) ClientIPv4Observed() (ClientIPv4Observed, error) {
	if e.Type != TypeClientIPv4Observed {
		return ClientIPv4Observed{}, fmt.Errorf("event %s: %w: %s, want %s", e.ID, ErrWrongType, e.Type, TypeClientIPv4Observed)
	}
	p := e.Payload
	c := ClientIPv4Observed{
		Address:     strings.TrimSpace(p[KeyAddress]),
		OwnerSide:   strings.TrimSpace(p[KeyOwnerSide]),
		Domain:      strings.TrimSpace(p[KeyDomain]),
		ProviderRef: strings.TrimSpace(p[KeyProviderRef]),
		NicRef:      strings.TrimSpace(p[KeyNicRef]),
		PeerRef:     strings.TrimSpace(p[KeyPeerRef]),
	}
	if c.Address == "" {
		c.Address = strings.TrimSpace(e.Subject)
	}
	if c.OwnerSide == "" {
		c.OwnerSide = "onprem"
	}
	if c.OwnerSide != "onprem" && c.OwnerSide != "cloud" {
		return c, &FieldError{Field: "payload." + KeyOwnerSide, Problem: fmt.Sprintf("%q: want onprem or cloud", c.OwnerSide)}
	}
	ip, err := c.IP()
	if err != nil {
		return c, err
	}
	if !ip.Is4() {
		return c, &FieldError{Field: "payload." + KeyAddress, Problem: fmt.Sprintf("%q is not an IPv4 address", c.Address)}
	}
	return c, nil
}

// AddressObserved is the payload of address.observed.
type AddressObserved struct {
	// Address is the host address (IPv4 or IPv6).
	Address string
	// Interface is the interface it was seen on.
	Interface string
	// MAC is its link-layer address, when known.
	MAC string
	// Domain is the AddressMobilityDomain whose prefix holds the address.
	Domain string
}

// EventType implements Payloader.
func (AddressObserved) EventType() string { return TypeAddressObserved }

// Payload implements Payloader.
func (a AddressObserved) Payload() map[string]string {
	m := map[string]string{}
	putNonEmpty(m, KeyAddress, a.Address)
	putNonEmpty(m, KeyInterface, a.Interface)
	putNonEmpty(m, KeyMAC, a.MAC)
	putNonEmpty(m, KeyDomain, a.Domain)
	return m
}

// IP parses Address.
func (a AddressObserved) IP() (netip.Addr, error) { return parseHostAddr(KeyAddress, a.Address) }

// AddressObserved returns the typed payload of an address.observed event (Address falls
// back to the subject).
//
// # Errors
//
// ErrWrongType for another type; a *FieldError when the address does not parse.
func (e Event) AddressObserved() (AddressObserved, error) {
	if e.Type != TypeAddressObserved {
		return AddressObserved{}, fmt.Errorf("event %s: %w: %s, want %s", e.ID, ErrWrongType, e.Type, TypeAddressObserved)
	}
	p := e.Payload
	a := AddressObserved{
		Address:   strings.TrimSpace(p[KeyAddress]),
		Interface: strings.TrimSpace(p[KeyInterface]),
		MAC:       strings.TrimSpace(p[KeyMAC]),
		Domain:    strings.TrimSpace(p[KeyDomain]),
	}
	if a.Address == "" {
		a.Address = strings.TrimSpace(e.Subject)
	}
	_, err := a.IP()
	return a, err
}

// NeighborMoved is the payload of neighbor.moved.
type NeighborMoved struct {
	// Address is the host address that moved.
	Address string
	// Interface and MAC are where it is now.
	Interface, MAC string
	// PreviousInterface and PreviousMAC are where it was before.
	PreviousInterface, PreviousMAC string
	// Domain is the AddressMobilityDomain whose prefix holds the address.
	Domain string
}

// EventType implements Payloader.
func (NeighborMoved) EventType() string { return TypeNeighborMoved }

// Payload implements Payloader.
func (n NeighborMoved) Payload() map[string]string {
	m := map[string]string{}
	putNonEmpty(m, KeyAddress, n.Address)
	putNonEmpty(m, KeyInterface, n.Interface)
	putNonEmpty(m, KeyMAC, n.MAC)
	putNonEmpty(m, KeyPreviousInterface, n.PreviousInterface)
	putNonEmpty(m, KeyPreviousMAC, n.PreviousMAC)
	putNonEmpty(m, KeyDomain, n.Domain)
	return m
}

// IP parses Address.
func (n NeighborMoved) IP() (netip.Addr, error) { return parseHostAddr(KeyAddress, n.Address) }

// NeighborMoved returns the typed payload of a neighbor.moved event (Address falls back to
// the subject).
//
// # Errors
//
// ErrWrongType for another type; a *FieldError when the address does not parse.
func (e Event) NeighborMoved() (NeighborMoved, error) {
	if e.Type != TypeNeighborMoved {
		return NeighborMoved{}, fmt.Errorf("event %s: %w: %s, want %s", e.ID, ErrWrongType, e.Type, TypeNeighborMoved)
	}
	p := e.Payload
	n := NeighborMoved{
		Address:           strings.TrimSpace(p[KeyAddress]),
		Interface:         strings.TrimSpace(p[KeyInterface]),
		MAC:               strings.TrimSpace(p[KeyMAC]),
		PreviousInterface: strings.TrimSpace(p[KeyPreviousInterface]),
		PreviousMAC:       strings.TrimSpace(p[KeyPreviousMAC]),
		Domain:            strings.TrimSpace(p[KeyDomain]),
	}
	if n.Address == "" {
		n.Address = strings.TrimSpace(e.Subject)
	}
	_, err := n.IP()
	return n, err
}

// parseHostAddr parses an address that may carry a prefix length ("10.0.0.7/32").
func parseHostAddr(key, s string) (netip.Addr, error) {
	field := "payload." + key
	if s == "" {
		return netip.Addr{}, &FieldError{Field: field, Problem: "is required (or set the event subject)"}
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, &FieldError{Field: field, Problem: fmt.Sprintf("%q is not an IP address or prefix", s)}
		}
		return p.Addr(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &FieldError{Field: field, Problem: fmt.Sprintf("%q is not an IP address", s)}
	}
	return a.WithZone(""), nil
}

// CheckTyped checks the payload of a built-in event type through its typed accessor
// (for example that routerd.client.ipv4.observed carries an IPv4 address); events of
// other types pass. Validate does not call it: peers may send what the original accepted.
func (e Event) CheckTyped() error {
	var err error
	switch e.Type {
	case TypeClientIPv4Observed:
		_, err = e.ClientIPv4Observed()
	case TypeAddressObserved:
		_, err = e.AddressObserved()
	case TypeNeighborMoved:
		_, err = e.NeighborMoved()
	}
	return err
}
