// Package claim is the logic of the event-to-remote-claim plugin: it turns observed
// client address events into RemoteAddressClaim documents, exactly as the original
// routerd plugin did (COMPAT.md "Bundled plugin behaviour"). It is shared by the Wasm
// plugin and by the native subprocess equivalent used as a benchmark baseline, and it
// builds JSON without reflection (fast inside a Wasm guest).
package claim

import (
	"strings"
	"time"
	"unsafe"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest/jsonw"
)

// Constants of the claims this logic produces.
const (
	// EventType is the only event type turned into claims; others are ignored.
	EventType = abi.EventTypeIPv4Observed
	// TTL is the result TTL.
	TTL = "30m"
	// APIVersion and Kind of the produced documents.
	APIVersion = "hybrid.routerd.net/v1alpha1"
	// Kind of the produced documents.
	Kind = "RemoteAddressClaim"

	defaultOwnerSide   = "onprem"
	defaultProviderRef = "example-provider"
	defaultNicRef      = "example-nic-ref"
	defaultPeerRef     = "onprem-main"
)

// Claim is one RemoteAddressClaim before encoding.
type Claim struct {
	// Name is metadata.name, e.g. onprem-10-88-60-9.
	Name string
	// Address is spec.address (payload.address, else the subject).
	Address string
	// OwnerSide is spec.ownerSide (payload.ownerSide, default onprem).
	OwnerSide string
	// DomainRef is spec.domainRef (payload.domain).
	DomainRef string
	// ProviderRef is spec.capture.providerRef (default example-provider).
	ProviderRef string
	// NicRef is spec.capture.nicRef (default example-nic-ref).
	NicRef string
	// PeerRef is spec.delivery.peerRef (default onprem-main).
	PeerRef string
}

// Input is what the logic reads from one event: its type, its subject and the payload
// members it knows ("" when absent). Build fills it from abi.Events; a Wasm plugin can
// fill it from the guest SDK's event views without building payload maps.
type Input struct {
	// Type and Subject are the event's.
	Type, Subject string
	// Address, OwnerSide, Domain, ProviderRef, NicRef and PeerRef are the payload members
	// of those names (untrimmed).
	Address, OwnerSide, Domain, ProviderRef, NicRef, PeerRef string
}

// SetPayload records the payload member key = value if the logic reads that key.
func (in *Input) SetPayload(key, value string) {
	switch key {
	case "address":
		in.Address = value
	case "ownerSide":
		in.OwnerSide = value
	case "domain":
		in.Domain = value
	case "providerRef":
		in.ProviderRef = value
	case "nicRef":
		in.NicRef = value
	case "peerRef":
		in.PeerRef = value
	}
}

// InputOf returns the Input of ev.
func InputOf(ev *abi.Event) Input {
	in := Input{Type: ev.Type, Subject: ev.Subject}
	for k, v := range ev.Payload {
		in.SetPayload(k, v)
	}
	return in
}

// FromEvent returns the claim for ev; ok is false when ev is not an observed-address
// event or names no address.
func FromEvent(ev *abi.Event) (c Claim, ok bool) {
	in := InputOf(ev)
	in.trimSpace()
	if in.Type != EventType {
		return Claim{}, false
	}
	if c, ok = fields(&in); !ok {
		return Claim{}, false
	}
	c.Name = Name(c.OwnerSide, c.Address)
	return c, true
}

// fields fills every claim field but the name from a trimmed Input; ok is false without
// an address.
func fields(in *Input) (c Claim, ok bool) {
	c.Address = in.Address
	if c.Address == "" {
		c.Address = in.Subject
	}
	if c.Address == "" {
		return Claim{}, false
	}
	c.OwnerSide = orDefault(in.OwnerSide, defaultOwnerSide)
	c.DomainRef = in.Domain
	c.ProviderRef = orDefault(in.ProviderRef, defaultProviderRef)
	c.NicRef = orDefault(in.NicRef, defaultNicRef)
	c.PeerRef = orDefault(in.PeerRef, defaultPeerRef)
	return c, true
}

// trimSpace applies strings.TrimSpace to every string of in. The common case, nothing to
// trim, is decided with one call instead of eight: a call costs more than the checks
// inside a Wasm guest.
func (in *Input) trimSpace() {
	if trimmed(in.Type) && trimmed(in.Subject) && trimmed(in.Address) && trimmed(in.OwnerSide) &&
		trimmed(in.Domain) && trimmed(in.ProviderRef) && trimmed(in.NicRef) && trimmed(in.PeerRef) {
		return
	}
	in.Type, in.Subject = strings.TrimSpace(in.Type), strings.TrimSpace(in.Subject)
	in.Address, in.OwnerSide = strings.TrimSpace(in.Address), strings.TrimSpace(in.OwnerSide)
	in.Domain, in.ProviderRef = strings.TrimSpace(in.Domain), strings.TrimSpace(in.ProviderRef)
	in.NicRef, in.PeerRef = strings.TrimSpace(in.NicRef), strings.TrimSpace(in.PeerRef)
}

// trimmed reports whether strings.TrimSpace(s) == s for certain: s is empty or starts
// and ends with a byte in 0x21..0x7f (every ASCII space is at most ' '; a non-ASCII end
// may be a Unicode space). c-0x21 < 0x5f is that range (the byte arithmetic wraps).
func trimmed(s string) bool {
	n := len(s)
	return n == 0 || s[0]-0x21 < 0x5f && s[n-1]-0x21 < 0x5f
}

// fromInput is FromEvent with the name appended to *names (one allocation for all the
// names of a batch: each allocation is expensive inside a Wasm guest).
func fromInput(src *Input, names *[]byte) (c Claim, ok bool) {
	in := *src // trimmed on a copy: the caller's Inputs stay as they are
	in.trimSpace()
	if in.Type != EventType {
		return Claim{}, false
	}
	c, ok = fields(&in)
	if !ok {
		return Claim{}, false
	}
	start := len(*names)
	// The name is at most ownerSide + "-" + max(address, "addr").
	if n := start + len(c.OwnerSide) + 1 + max(len(c.Address), 4); n > cap(*names) {
		c.Name = Name(c.OwnerSide, c.Address) // buffer full: allocate this one
		return c, true
	}
	*names = appendName(*names, c.OwnerSide, c.Address)
	c.Name = unsafe.String(&(*names)[start], len(*names)-start)
	return c, true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Name returns "<ownerSide>-<address>" where the address loses its prefix length, '.'
// and ':' become '-', and leading/trailing '-' are trimmed ("addr" if nothing is left).
func Name(ownerSide, address string) string {
	return string(appendName(nil, ownerSide, address))
}

// appendName appends Name(ownerSide, address) to b. It is written as plain loops (no
// strings.Cut or Trim): each call and cut-set costs extra inside a Wasm guest.
func appendName(b []byte, ownerSide, address string) []byte {
	end := 0
	for end < len(address) && address[end] != '/' {
		end++
	}
	start := 0
	for start < end && isSep(address[start]) { // '.' and ':' become '-', and '-' is trimmed
		start++
	}
	for end > start && isSep(address[end-1]) {
		end--
	}
	a := address[start:end]
	if a == "" {
		a = "addr"
	}
	b = append(b, ownerSide...)
	b = append(b, '-')
	n := len(b)
	b = append(b, a...)
	for i := n; i < len(b); i++ {
		if c := b[i]; c == '.' || c == ':' {
			b[i] = '-'
		}
	}
	return b
}

func isSep(c byte) bool { return c == '.' || c == ':' || c == '-' }

// AppendJSON appends the claim as a RemoteAddressClaim document. The constant parts are
// appended as pre-encoded chunks and only the seven variable strings are escaped: this is
// the hot path of the plugin inside the Wasm guest.
func (c *Claim) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"apiVersion":"`+APIVersion+`","kind":"`+Kind+`","metadata":{"name":`...)
	dst = jsonw.AppendString(dst, c.Name)
	dst = append(dst, `},"spec":{"domainRef":`...)
	dst = jsonw.AppendString(dst, c.DomainRef)
	dst = append(dst, `,"address":`...)
	dst = jsonw.AppendString(dst, c.Address)
	dst = append(dst, `,"ownerSide":`...)
	dst = jsonw.AppendString(dst, c.OwnerSide)
	dst = append(dst, `,"capture":{"type":"provider-secondary-ip","providerRef":`...)
	dst = jsonw.AppendString(dst, c.ProviderRef)
	dst = append(dst, `,"providerMode":"secondary-ip","nicRef":`...)
	dst = jsonw.AppendString(dst, c.NicRef)
	dst = append(dst, `,"configureOSAddress":false},"delivery":{"peerRef":`...)
	dst = jsonw.AppendString(dst, c.PeerRef)
	return append(dst, `,"mode":"route","tunnelInterface":"wg-hybrid"}}}`...)
}

// Claims returns the claims for the request's events in event order. When several events
// name the same claim (same owner side and address), the last one wins, at the position of
// the first.
func Claims(req *abi.Request) []Claim {
	var b Builder
	return b.claims(b.inputsOf(req))
}

// Build is the on_events hook: one RemoteAddressClaim per observed address, TTL 30m,
// observedAt = the request's now.
func Build(req *abi.Request) *abi.Result {
	var b Builder
	return b.Build(req)
}

// Builder is Build with buffers reused from one call to the next: a Wasm plugin, whose SDK
// encodes each result before the next call, allocates less per call and so collects
// garbage less often. Everything a Build returns is valid only until the next Build.
// The zero value is ready to use; a Builder is not safe for concurrent use.
type Builder struct {
	inputs []Input
	out    []Claim
	names  []byte
	buf    []byte
	ends   []int
	result abi.Result
}

// inputsOf returns the Inputs of req's events in the builder's reused slice.
func (b *Builder) inputsOf(req *abi.Request) []Input {
	ins := b.inputs[:0]
	for i := range req.Spec.Events {
		ins = append(ins, InputOf(&req.Spec.Events[i]))
	}
	b.inputs = ins
	return ins
}

func (b *Builder) claims(ins []Input) []Claim {
	out := b.out[:0]
	var index map[string]int // only for large batches; small ones scan linearly
	if len(ins) > 32 {
		index = make(map[string]int, len(ins))
	}
	// All names in one buffer; a name that does not fit gets its own allocation. The
	// buffer is fresh when it must grow, so names handed out earlier stay intact.
	if need := 48 * len(ins); cap(b.names) < need {
		b.names = make([]byte, 0, need)
	}
	names := b.names[:0]
	for i := range ins {
		c, ok := fromInput(&ins[i], &names)
		if !ok {
			continue
		}
		j := -1
		if index != nil {
			if k, dup := index[c.Name]; dup {
				j = k
			}
		} else {
			for k := range out {
				if out[k].Name == c.Name {
					j = k
					break
				}
			}
		}
		if j >= 0 {
			out[j] = c
			continue
		}
		if index != nil {
			index[c.Name] = len(out)
		}
		out = append(out, c)
	}
	b.out = out
	return out
}

// Build returns the on_events result for req (see the package function Build), reusing
// the builder's buffers.
func (b *Builder) Build(req *abi.Request) *abi.Result {
	return b.BuildInputs(req.Spec.Now, b.inputsOf(req))
}

// BuildInputs is Build for events already reduced to Inputs (in event order), with now
// as the result's observedAt. The result may point into the Inputs' strings.
func (b *Builder) BuildInputs(now time.Time, ins []Input) *abi.Result {
	claims := b.claims(ins)
	res := &b.result
	*res = abi.Result{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginResult,
		Status: abi.ResultStatus{ObservedAt: now, TTL: TTL, Resources: res.Status.Resources[:0]}}
	if len(claims) == 0 {
		res.Status.Resources = nil
		return res
	}
	// One backing array for all documents.
	buf := b.buf[:0]
	ends := b.ends[:0]
	for i := range claims {
		buf = claims[i].AppendJSON(buf)
		ends = append(ends, len(buf))
	}
	b.buf, b.ends = buf, ends
	// buf is final: slice it only after the last append.
	start := 0
	for _, end := range ends {
		res.Status.Resources = append(res.Status.Resources, buf[start:end:end])
		start = end
	}
	return res
}
