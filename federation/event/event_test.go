package event

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

var decodeCases = []struct {
	name    string
	body    string
	wantErr string // substring; "" means valid
	check   func(t *testing.T, e Event)
}{
	{
		name: "original v1alpha1 event",
		body: `{"id":"evt-1","group":"cloudedge","sourceNode":"onprem-router","type":"routerd.client.ipv4.observed","subject":"10.88.60.9","payload":{"address":"10.88.60.9","ownerSide":"onprem"},"observedAt":"2026-05-01T10:00:00Z","expiresAt":"2026-05-01T10:30:00Z"}`,
		check: func(t *testing.T, e Event) {
			if e.DedupeKey != "evt-1" {
				t.Errorf("dedupeKey = %q, want the id", e.DedupeKey)
			}
			if got := e.ExpiresAt.Sub(e.ObservedAt); got != 30*time.Minute {
				t.Errorf("ttl = %v", got)
			}
		},
	},
	{
		name: "strings are trimmed",
		body: `{"id":"  evt-2 ","group":" g ","type":" t\n","subject":"  s  ","payload":{" k ":"  v  "}}`,
		check: func(t *testing.T, e Event) {
			if e.ID != "evt-2" || e.Group != "g" || e.Type != "t" || e.Subject != "s" || e.Payload["k"] != "v" {
				t.Errorf("not trimmed: %+v", e)
			}
		},
	},
	{
		name: "empty time strings are absent",
		body: `{"id":"a","group":"g","type":"t","observedAt":"","expiresAt":" "}`,
		check: func(t *testing.T, e Event) {
			if !e.ObservedAt.IsZero() || !e.ExpiresAt.IsZero() {
				t.Errorf("times = %v %v", e.ObservedAt, e.ExpiresAt)
			}
		},
	},
	{
		name: "unknown fields are ignored",
		body: `{"id":"a","group":"g","type":"t","schemaVersion":2}`,
	},
	{name: "invalid UTF-8 subject", body: "{\"id\":\"a\",\"group\":\"g\",\"type\":\"t\",\"subject\":\"10.0.0.1\xff\xfe\"}", wantErr: "subject: is not valid UTF-8 text (byte 52 of the event)"},
	{name: "invalid UTF-8 payload value", body: "{\"id\":\"a\",\"group\":\"g\",\"type\":\"t\",\"payload\":{\"ok\":\"1\",\"k\":\"\xc3\"}}", wantErr: "payload.k: is not valid UTF-8 text"},
	{name: "invalid UTF-8 in an unknown field", body: "{\"id\":\"a\",\"group\":\"g\",\"type\":\"t\",\"note\":\"\xed\xa0\x80\"}", wantErr: "note: is not valid UTF-8 text"},
	{name: "unpaired high surrogate escape", body: `{"id":"a","group":"g","type":"t","subject":"x\ud800y"}`, wantErr: "subject: is not valid UTF-8 text"},
	{name: "unpaired low surrogate escape", body: `{"id":"a","group":"g","type":"t","subject":"\uDC00"}`, wantErr: "subject: is not valid UTF-8 text"},
	{name: "high surrogate then a non-surrogate escape", body: `{"id":"a","group":"g","type":"t","subject":"\ud800\u0041"}`, wantErr: "subject: is not valid UTF-8 text"},
	{
		name: "valid multibyte text and escapes",
		body: `{"id":"a","group":"g","type":"t","subject":"café \ud83d\ude00 \\ud800 \u00e9 日本"}`,
		check: func(t *testing.T, e Event) {
			if want := "café 😀 \\ud800 é 日本"; e.Subject != want {
				t.Errorf("subject = %q, want %q", e.Subject, want)
			}
		},
	},
	{name: "missing id", body: `{"group":"g","type":"t"}`, wantErr: "id: is required"},
	{name: "blank group", body: `{"id":"a","group":"   ","type":"t"}`, wantErr: "group: is required"},
	{name: "missing type", body: `{"id":"a","group":"g"}`, wantErr: "type: is required"},
	{name: "all missing reports every field", body: `{}`, wantErr: "id: is required\ngroup: is required\ntype: is required"},
	{name: "non-string payload value", body: `{"id":"a","group":"g","type":"t","payload":{"n":1}}`, wantErr: "payload values must be strings"},
	{name: "payload not an object", body: `{"id":"a","group":"g","type":"t","payload":"x"}`, wantErr: "payload: want a JSON object of strings, got string"},
	{name: "payload value names its key", body: `{"id":"a","group":"g","type":"t","payload":{"ok":"1","bad":true}}`, wantErr: "payload.bad: payload values must be strings, got JSON bool"},
	{name: "bad time", body: `{"id":"a","group":"g","type":"t","observedAt":"yesterday"}`, wantErr: `observedAt: "yesterday" is not an RFC 3339 time`},
	{name: "expiry before observation", body: `{"id":"a","group":"g","type":"t","observedAt":"2026-05-01T10:00:00Z","expiresAt":"2026-05-01T09:00:00Z"}`, wantErr: "expiresAt: 2026-05-01T09:00:00Z is before observedAt"},
	{name: "space inside id", body: `{"id":"a b","group":"g","type":"t"}`, wantErr: "id: \"a b\" contains spaces"},
	{name: "control char in subject", body: "{\"id\":\"a\",\"group\":\"g\",\"type\":\"t\",\"subject\":\"x\\u0001y\"}", wantErr: "subject: contains control characters"},
	{name: "id too long", body: `{"id":"` + strings.Repeat("x", MaxIDLen+1) + `","group":"g","type":"t"}`, wantErr: "id: is 257 bytes long"},
	{name: "empty payload key", body: `{"id":"a","group":"g","type":"t","payload":{" ":"v"}}`, wantErr: "payload: has an empty key"},
	{name: "trailing data", body: `{"id":"a","group":"g","type":"t"} {}`, wantErr: "data after the event object"},
	{name: "not an object", body: `[1,2]`, wantErr: "event: want a JSON object, got array"},
	{name: "malformed json", body: `{"id":"a",`, wantErr: "invalid event"},
	{name: "empty body", body: ``, wantErr: "empty body"},
	{name: "id a number", body: `{"id":7,"group":"g","type":"t"}`, wantErr: "id: want a JSON string, got number"},
	{name: "too large", body: `{"id":"a","group":"g","type":"t","subject":"` + strings.Repeat("y", MaxBodyBytes) + `"}`, wantErr: "larger than"},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode([]byte(tc.body))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if tc.check != nil {
					tc.check(t, e)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode succeeded, want error containing %q", tc.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestMarshalCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   Event
		want string
	}{
		{
			name: "full event in field order, payload sorted, UTC",
			in: Event{
				ID: "01J", Group: "g", SourceNode: "n", Type: "t", Subject: "s", DedupeKey: "d",
				Payload:    map[string]string{"z": "1", "a": "2"},
				ObservedAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 2*3600)),
				ExpiresAt:  time.Date(2026, 5, 1, 10, 30, 0, 500, time.UTC),
			},
			want: `{"id":"01J","group":"g","sourceNode":"n","type":"t","subject":"s","dedupeKey":"d","payload":{"a":"2","z":"1"},"observedAt":"2026-05-01T10:00:00Z","expiresAt":"2026-05-01T10:30:00.0000005Z"}`,
		},
		{
			name: "optional fields omitted",
			in:   Event{ID: "a", Group: "g", Type: "t"},
			want: `{"id":"a","group":"g","type":"t"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
			// json.Marshal of the value goes through the same method.
			b2, _ := json.Marshal(tc.in)
			if string(b2) != tc.want {
				t.Errorf("json.Marshal differs: %s", b2)
			}
			back, err := Decode(b)
			if err != nil {
				t.Fatalf("decode own output: %v", err)
			}
			b3, _ := back.Marshal()
			if tc.in.DedupeKey != "" && string(b3) != tc.want {
				t.Errorf("round trip changed bytes: %s", b3)
			}
		})
	}
}

func TestNewIDSortable(t *testing.T) {
	const n = 2000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = NewID()
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids generated in sequence are not sorted")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if len(id) != 26 {
			t.Fatalf("id %q: length %d, want 26", id, len(id))
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	early := NewIDAt(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	if early >= ids[0] {
		t.Errorf("id for 2020 %q sorts after a current id %q", early, ids[0])
	}
}

func TestNewAndExpired(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		ttl     time.Duration
		at      time.Time
		expired bool
	}{
		{name: "no ttl never expires", ttl: 0, at: now.Add(1000 * time.Hour), expired: false},
		{name: "before expiry", ttl: 30 * time.Minute, at: now.Add(29 * time.Minute), expired: false},
		{name: "at expiry", ttl: 30 * time.Minute, at: now.Add(30 * time.Minute), expired: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New("g", "t", "n", "s", nil, tc.ttl, now)
			if err := e.Validate(); err != nil {
				t.Fatal(err)
			}
			if e.DedupeKey != e.ID {
				t.Errorf("dedupeKey %q != id %q", e.DedupeKey, e.ID)
			}
			if got := e.Expired(tc.at); got != tc.expired {
				t.Errorf("Expired = %v, want %v", got, tc.expired)
			}
		})
	}
}

func TestTypedAccessors(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		ev      Event
		get     func(Event) (any, error)
		want    any
		wantErr string
	}{
		{
			name: "client ipv4 from payload with defaults",
			ev:   Event{Type: TypeClientIPv4Observed, Payload: map[string]string{"address": "10.88.60.9", "domain": "lab"}},
			get:  func(e Event) (any, error) { return e.ClientIPv4Observed() },
			want: ClientIPv4Observed{Address: "10.88.60.9", OwnerSide: "onprem", Domain: "lab"},
		},
		{
			name: "client ipv4 address falls back to subject",
			ev:   Event{Type: TypeClientIPv4Observed, Subject: "10.0.0.7/32", Payload: map[string]string{"address": "  ", "ownerSide": "cloud"}},
			get:  func(e Event) (any, error) { return e.ClientIPv4Observed() },
			want: ClientIPv4Observed{Address: "10.0.0.7/32", OwnerSide: "cloud"},
		},
		{
			name:    "client ipv4 rejects ipv6",
			ev:      Event{Type: TypeClientIPv4Observed, Subject: "2001:db8::1"},
			get:     func(e Event) (any, error) { return e.ClientIPv4Observed() },
			wantErr: "not an IPv4 address",
		},
		{
			name:    "client ipv4 bad owner side",
			ev:      Event{Type: TypeClientIPv4Observed, Subject: "10.0.0.1", Payload: map[string]string{"ownerSide": "mars"}},
			get:     func(e Event) (any, error) { return e.ClientIPv4Observed() },
			wantErr: "want onprem or cloud",
		},
		{
			name:    "wrong type",
			ev:      Event{ID: "x", Type: TypeNeighborMoved},
			get:     func(e Event) (any, error) { return e.ClientIPv4Observed() },
			wantErr: "event has another type",
		},
		{
			name: "address observed",
			ev:   Event{Type: TypeAddressObserved, Payload: map[string]string{"address": "2001:db8::5", "interface": "eth1", "mac": "02:00:00:00:00:01"}},
			get:  func(e Event) (any, error) { return e.AddressObserved() },
			want: AddressObserved{Address: "2001:db8::5", Interface: "eth1", MAC: "02:00:00:00:00:01"},
		},
		{
			name:    "address observed without address",
			ev:      Event{Type: TypeAddressObserved},
			get:     func(e Event) (any, error) { return e.AddressObserved() },
			wantErr: "payload.address: is required",
		},
		{
			name: "neighbor moved",
			ev:   NewTyped("g", "n", "", NeighborMoved{Address: "10.1.1.1", MAC: "02:00:00:00:00:02", PreviousMAC: "02:00:00:00:00:01", Interface: "eth0"}, time.Minute, now),
			get:  func(e Event) (any, error) { return e.NeighborMoved() },
			want: NeighborMoved{Address: "10.1.1.1", Interface: "eth0", MAC: "02:00:00:00:00:02", PreviousMAC: "02:00:00:00:00:01"},
		},
		{
			name:    "neighbor moved bad address",
			ev:      Event{Type: TypeNeighborMoved, Subject: "host-7"},
			get:     func(e Event) (any, error) { return e.NeighborMoved() },
			wantErr: `"host-7" is not an IP address`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get(tc.ev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewTypedSubjectAndRoundTrip(t *testing.T) {
	now := time.Now()
	e := NewTyped("cloudedge", "onprem-router", "", ClientIPv4Observed{Address: "10.88.60.9", Domain: "lab"}, 30*time.Minute, now)
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if e.Subject != "10.88.60.9" || e.Type != TypeClientIPv4Observed {
		t.Fatalf("event %+v", e)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := back.ClientIPv4Observed()
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != "10.88.60.9" || c.Domain != "lab" || c.OwnerSide != "onprem" {
		t.Errorf("payload %+v", c)
	}
	if !back.ObservedAt.Equal(e.ObservedAt) || !back.ExpiresAt.Equal(e.ExpiresAt) {
		t.Errorf("times changed: %v %v", back.ObservedAt, back.ExpiresAt)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		if len(tc.body) < 4096 {
			f.Add([]byte(tc.body))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// A decoded event re-encodes canonically and decodes to the same bytes again.
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("marshal valid event: %v", err)
		}
		e2, err := Decode(b)
		if err != nil {
			t.Fatalf("decode canonical form %s: %v", b, err)
		}
		b2, err := e2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(b2) {
			t.Fatalf("canonical form not stable:\n%s\n%s", b, b2)
		}
	})
}

func TestCheckTyped(t *testing.T) {
	tests := []struct {
		name    string
		ev      Event
		wantErr string
	}{
		{name: "valid client ipv4", ev: Event{Type: TypeClientIPv4Observed, Subject: "10.0.0.1"}},
		{name: "client ipv4 without address", ev: Event{Type: TypeClientIPv4Observed}, wantErr: "payload.address: is required"},
		{name: "address observed bad address", ev: Event{Type: TypeAddressObserved, Payload: map[string]string{"address": "x"}}, wantErr: `"x" is not an IP address`},
		{name: "neighbor moved ok", ev: Event{Type: TypeNeighborMoved, Subject: "fe80::1%eth0"}},
		{name: "other types pass", ev: Event{Type: "custom.thing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev.CheckTyped()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want %q wrapping ErrInvalid", err, tc.wantErr)
			}
		})
	}
}
