package claim

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest/jsonw"
)

func TestName(t *testing.T) {
	tests := []struct {
		name, owner, address, want string
	}{
		{name: "ipv4 with prefix", owner: "onprem", address: "10.88.60.9/32", want: "onprem-10-88-60-9"},
		{name: "ipv4", owner: "cloud", address: "192.0.2.1", want: "cloud-192-0-2-1"},
		{name: "ipv6 trimmed", owner: "onprem", address: "2001:db8::1/128", want: "onprem-2001-db8--1"},
		{name: "leading colons trimmed", owner: "onprem", address: "::1", want: "onprem-1"},
		{name: "empty becomes addr", owner: "onprem", address: "/24", want: "onprem-addr"},
		{name: "only separators", owner: "cloud", address: ".:.", want: "cloud-addr"},
		{name: "dashes and dots trimmed", owner: "onprem", address: "-.10.0.0.1:-/32/x", want: "onprem-10-0-0-1"},
		{name: "inner dashes kept", owner: "onprem", address: "a-b.c", want: "onprem-a-b-c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Name(tt.owner, tt.address); got != tt.want {
				t.Fatalf("Name(%q, %q) = %q, want %q", tt.owner, tt.address, got, tt.want)
			}
		})
	}
}

func TestBuildProducesValidJSON(t *testing.T) {
	req := &abi.Request{Spec: abi.RequestSpec{Events: []abi.Event{
		{Type: EventType, Subject: "10.0.0.1", Payload: map[string]string{"domain": `we"ird\domain`}},
		{Type: EventType, Subject: "10.0.0.2"},
	}}}
	res := Build(req)
	if res.Status.TTL != TTL || len(res.Status.Resources) != 2 {
		t.Fatalf("result = %+v", res)
	}
	for i, r := range res.Status.Resources {
		var v struct {
			Metadata struct{ Name string }
			Spec     struct{ DomainRef, Address string }
		}
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatalf("resource %d: %v: %s", i, err, r)
		}
		if i == 0 && (v.Spec.DomainRef != `we"ird\domain` || v.Metadata.Name != "onprem-10-0-0-1") {
			t.Fatalf("resource 0 = %+v", v)
		}
	}
}

// TestAppendJSONMatchesWriter checks the hand-laid-out encoding against the same document
// built field by field with jsonw.Writer, for plain strings and each kind of escape.
func TestAppendJSONMatchesWriter(t *testing.T) {
	base := Claim{Name: "onprem-10-0-0-1", Address: "10.0.0.1/32", OwnerSide: "onprem", DomainRef: "lab-v4",
		ProviderRef: "aws-tokyo", NicRef: "eni-1", PeerRef: "aws-edge"}
	with := func(f func(c *Claim)) Claim { c := base; f(&c); return c }
	tests := []struct {
		name string
		c    Claim
	}{
		{name: "plain", c: base},
		{name: "empty fields", c: Claim{}},
		{name: "all need escaping", c: Claim{Name: "n<1>", Address: "10.0.0.1/32", OwnerSide: "cloud", DomainRef: "d\"q",
			ProviderRef: "p\\", NicRef: "nic\u2028", PeerRef: "peer\x01"}},
		{name: "ampersand in peerRef", c: with(func(c *Claim) { c.PeerRef = "a&b" })},
		{name: "greater-than in name", c: with(func(c *Claim) { c.Name = "a>b" })},
		{name: "non-ascii in domainRef", c: with(func(c *Claim) { c.DomainRef = "é" })},
		{name: "invalid utf-8 in address", c: with(func(c *Claim) { c.Address = "\xff" })},
		{name: "tab in nicRef", c: with(func(c *Claim) { c.NicRef = "a\tb" })},
		{name: "quote in ownerSide", c: with(func(c *Claim) { c.OwnerSide = `a"b` })},
		{name: "backslash in providerRef", c: with(func(c *Claim) { c.ProviderRef = `a\b` })},
		{name: "delete is plain", c: with(func(c *Claim) { c.PeerRef = "a\x7fb" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			var w jsonw.Writer
			w.BeginObject()
			w.StringField("apiVersion", APIVersion)
			w.StringField("kind", Kind)
			w.Key("metadata")
			w.BeginObject()
			w.StringField("name", c.Name)
			w.EndObject()
			w.Key("spec")
			w.BeginObject()
			w.StringField("domainRef", c.DomainRef)
			w.StringField("address", c.Address)
			w.StringField("ownerSide", c.OwnerSide)
			w.Key("capture")
			w.BeginObject()
			w.StringField("type", "provider-secondary-ip")
			w.StringField("providerRef", c.ProviderRef)
			w.StringField("providerMode", "secondary-ip")
			w.StringField("nicRef", c.NicRef)
			w.BoolField("configureOSAddress", false)
			w.EndObject()
			w.Key("delivery")
			w.BeginObject()
			w.StringField("peerRef", c.PeerRef)
			w.StringField("mode", "route")
			w.StringField("tunnelInterface", "wg-hybrid")
			w.EndObject()
			w.EndObject()
			w.EndObject()
			if got := string(c.AppendJSON([]byte("x"))[1:]); got != string(w.Bytes()) {
				t.Fatalf("AppendJSON:\n%s\nwant\n%s", got, w.Bytes())
			}
		})
	}
}

// TestClaimsNameBuffer checks names built in the shared buffer, including ones that do not
// fit and fall back to their own allocation, against Name.
func TestClaimsNameBuffer(t *testing.T) {
	var events []abi.Event
	for i := 0; i < 40; i++ {
		addr := "10.0.0." + string(rune('0'+i%10))
		if i%7 == 0 {
			addr = strings.Repeat("fd00:", 20) + "1/128" // longer than the per-event estimate
		}
		events = append(events, abi.Event{Type: EventType, Subject: addr, Payload: map[string]string{"ownerSide": "side" + string(rune('a'+i%26))}})
	}
	claims := Claims(&abi.Request{Spec: abi.RequestSpec{Events: events}})
	if len(claims) == 0 {
		t.Fatal("no claims")
	}
	for _, c := range claims {
		if want := Name(c.OwnerSide, c.Address); c.Name != want {
			t.Fatalf("claim name %q, want %q", c.Name, want)
		}
	}
}

// TestBuilderReuse checks that a reused Builder gives the same results as fresh builds,
// for batches that shrink, grow and are empty.
func TestBuilderReuse(t *testing.T) {
	batch := func(n int, owner string) *abi.Request {
		req := &abi.Request{}
		for i := 0; i < n; i++ {
			req.Spec.Events = append(req.Spec.Events, abi.Event{Type: EventType,
				Subject: "10.1." + strconv.Itoa(i/200) + "." + strconv.Itoa(i%200), Payload: map[string]string{"ownerSide": owner}})
		}
		return req
	}
	var b Builder
	for _, step := range []struct {
		n     int
		owner string
	}{{3, "onprem"}, {40, "cloud"}, {0, ""}, {1, "x"}, {100, "onprem"}, {2, "cloud"}} {
		req := batch(step.n, step.owner)
		got, err := json.Marshal(b.Build(req))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(Build(req))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("batch of %d: reused builder gave\n%s\nwant\n%s", step.n, got, want)
		}
	}
}

func TestTrimSpaceMatchesStrings(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "plain", in: "10.0.0.1"},
		{name: "delete at the ends", in: "\x7fx\x7f"},
		{name: "space at the end only", in: "x "},
		{name: "ascii spaces", in: " \t10.0.0.1\n\v\f\r"},
		{name: "only spaces", in: "   "},
		{name: "one char", in: "x"},
		{name: "unicode spaces", in: "\u00a010.0.0.1\u3000"},
		{name: "next line", in: "\u0085x\u0085"},
		{name: "non-space unicode", in: "é10.0.0.1é"},
		{name: "invalid utf-8", in: "\xff10\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if trimmed(tt.in) && strings.TrimSpace(tt.in) != tt.in {
				t.Fatalf("trimmed(%q) is true but TrimSpace changes it", tt.in)
			}
			in := Input{Type: tt.in, Subject: tt.in, Address: tt.in, OwnerSide: tt.in, Domain: tt.in,
				ProviderRef: tt.in, NicRef: tt.in, PeerRef: tt.in}
			in.trimSpace()
			want := strings.TrimSpace(tt.in)
			for i, got := range []string{in.Type, in.Subject, in.Address, in.OwnerSide, in.Domain, in.ProviderRef, in.NicRef, in.PeerRef} {
				if got != want {
					t.Fatalf("field %d after trimSpace = %q, want %q", i, got, want)
				}
			}
		})
	}
}
