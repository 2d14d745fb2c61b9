// Package event defines the federation event envelope that routers observe, store and push
// to the other routers of an event group.
//
// The JSON form is byte-compatible with routerd v1alpha1 peers: an object with the fields
// id, group, sourceNode, type, subject, dedupeKey, payload (an object of string values),
// observedAt and expiresAt (RFC 3339). Ids this package generates are ULIDs (time-sortable,
// monotonic within a process); ids received from peers are accepted as they come, as long
// as they pass Validate.
//
// Use Decode for untrusted bytes (size limit, strict types, validation), Validate before
// storing an event built in code, and Marshal for the canonical encoding (fixed field
// order, payload keys sorted, times in UTC).
package event

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// Size limits enforced by Decode and Validate.
const (
	// MaxBodyBytes is the largest encoded event accepted (the v1 wire limit).
	MaxBodyBytes = 1 << 20
	// MaxIDLen bounds id and dedupeKey.
	MaxIDLen = 256
	// MaxNameLen bounds group, sourceNode and type.
	MaxNameLen = 253
	// MaxSubjectLen bounds subject.
	MaxSubjectLen = 1024
	// MaxPayloadKeys bounds the number of payload entries.
	MaxPayloadKeys = 256
	// MaxPayloadKeyLen bounds each payload key.
	MaxPayloadKeyLen = 128
	// MaxPayloadValueLen bounds each payload value.
	MaxPayloadValueLen = 64 << 10
)

// Errors. Every validation and decoding failure wraps ErrInvalid, so callers (for example
// the transport receiver answering 400) can test for it with errors.Is.
var (
	// ErrInvalid marks an event that is malformed or fails validation.
	ErrInvalid = errors.New("invalid event")
	// ErrTooLarge marks an encoded event larger than MaxBodyBytes; it also wraps ErrInvalid.
	ErrTooLarge = fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxBodyBytes)
	// ErrWrongType is returned by the typed accessors when the event has another type.
	ErrWrongType = errors.New("event has another type")
)

// FieldError is one validation problem: the JSON field (payload entries as
// "payload.<key>") and what is wrong with it.
type FieldError struct {
	Field   string
	Problem string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Is reports that a FieldError is an ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Event is the federation event envelope.
type Event struct {
	// ID identifies the event uniquely across the federation; a duplicate id is a no-op.
	ID string `json:"id"`
	// Group is the event group the event belongs to.
	Group string `json:"group"`
	// SourceNode is the node that observed the event (only it pushes the event to peers).
	SourceNode string `json:"sourceNode,omitempty"`
	// Type names what happened, e.g. routerd.client.ipv4.observed.
	Type string `json:"type"`
	// Subject is what the event is about, e.g. an address.
	Subject string `json:"subject,omitempty"`
	// DedupeKey groups events about the same fact; it defaults to ID.
	DedupeKey string `json:"dedupeKey,omitempty"`
	// Payload holds the type-specific attributes, all strings.
	Payload map[string]string `json:"payload,omitempty"`
	// ObservedAt is when the source node observed the fact (zero when unknown).
	ObservedAt time.Time `json:"observedAt,omitzero"`
	// ExpiresAt is when the fact stops being true unless refreshed (zero: never).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// wire is the JSON shape of Event with times as strings, so that an empty string is
// accepted as "absent" and encoding is in UTC.
type wire struct {
	ID         string            `json:"id"`
	Group      string            `json:"group"`
	SourceNode string            `json:"sourceNode,omitempty"`
	Type       string            `json:"type"`
	Subject    string            `json:"subject,omitempty"`
	DedupeKey  string            `json:"dedupeKey,omitempty"`
	Payload    map[string]string `json:"payload,omitempty"`
	ObservedAt string            `json:"observedAt,omitempty"`
	ExpiresAt  string            `json:"expiresAt,omitempty"`
}

// FormatTime renders t as the envelope does: RFC 3339 in UTC with the precision t has
// ("" for the zero time).
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ParseTime parses an RFC 3339 time as the envelope does ("" is the zero time).
func ParseTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &FieldError{Field: field, Problem: fmt.Sprintf("%q is not an RFC 3339 time", s)}
	}
	return t, nil
}

// MarshalJSON encodes the canonical form: fields in declaration order, optional fields
// omitted when empty, payload keys sorted, times RFC 3339 in UTC.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(wire{
		ID: e.ID, Group: e.Group, SourceNode: e.SourceNode, Type: e.Type, Subject: e.Subject,
		DedupeKey: e.DedupeKey, Payload: e.Payload,
		ObservedAt: FormatTime(e.ObservedAt), ExpiresAt: FormatTime(e.ExpiresAt),
	})
}

// UnmarshalJSON decodes the JSON form without validating it (use Decode for untrusted
// input). Unknown fields are ignored so that newer peers can add fields.
func (e *Event) UnmarshalJSON(data []byte) error {
	// encoding/json silently replaces invalid UTF-8 and unpaired surrogate escapes with
	// U+FFFD: the decoded event would differ from the bytes the sender signed.
	if err := textError(data); err != nil {
		return err
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		if fe := payloadTypeError(data, err); fe != nil {
			return fe
		}
		return decodeError(err)
	}
	obs, err := ParseTime("observedAt", w.ObservedAt)
	if err != nil {
		return err
	}
	exp, err := ParseTime("expiresAt", w.ExpiresAt)
	if err != nil {
		return err
	}
	*e = Event{
		ID: w.ID, Group: w.Group, SourceNode: w.SourceNode, Type: w.Type, Subject: w.Subject,
		DedupeKey: w.DedupeKey, Payload: w.Payload, ObservedAt: obs, ExpiresAt: exp,
	}
	return nil
}

// textError returns a *FieldError when a JSON string in data is not valid UTF-8 or holds
// an unpaired UTF-16 surrogate escape (\ud800-\udfff), naming the top-level field (or
// payload entry) that holds it; nil when every string is valid text.
func textError(data []byte) error {
	off := badTextOffset(data)
	if off < 0 {
		return nil
	}
	field := "event"
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) == nil {
		keys := slices.Sorted(maps.Keys(raw))
		for _, k := range keys {
			if badTextOffset([]byte(k)) >= 0 || badTextOffset(raw[k]) >= 0 {
				field = strings.ToValidUTF8(k, "?")
				break
			}
		}
		if field == "payload" {
			var p map[string]json.RawMessage
			if json.Unmarshal(raw["payload"], &p) == nil {
				for _, k := range slices.Sorted(maps.Keys(p)) {
					if badTextOffset(p[k]) >= 0 {
						field = "payload." + k
						break
					}
				}
			}
		}
	}
	return &FieldError{Field: field, Problem: fmt.Sprintf("is not valid UTF-8 text (byte %d of the event); the sender must encode strings as UTF-8", off)}
}

// badTextOffset returns the offset of the first invalid UTF-8 byte in data or of the
// first unpaired surrogate escape inside a JSON string, or -1.
func badTextOffset(data []byte) int {
	if !utf8.Valid(data) {
		for i := 0; i < len(data); {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				return i
			}
			i += n
		}
	}
	if !bytes.Contains(data, []byte(`\u`)) {
		return -1
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' || i+1 >= len(data) {
			continue
		}
		if data[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		hi, ok := hex4(data, i+2)
		if !ok {
			i++
			continue
		}
		switch {
		case hi >= 0xd800 && hi < 0xdc00:
			if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
				if lo, ok := hex4(data, i+8); ok && lo >= 0xdc00 && lo < 0xe000 {
					i += 11
					continue
				}
			}
			return i
		case hi >= 0xdc00 && hi < 0xe000:
			return i
		}
		i += 5
	}
	return -1
}

// hex4 parses the four hex digits at data[at:at+4].
func hex4(data []byte, at int) (rune, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// payloadTypeError names the payload key whose value is not a string when err is a
// type error inside payload (encoding/json reports only "payload"); nil otherwise.
func payloadTypeError(data []byte, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || (te.Field != "payload" && !strings.HasPrefix(te.Field, "payload.")) {
		return nil
	}
	var raw struct {
		Payload map[string]json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return nil // payload is not an object: the generic message fits
	}
	keys := make([]string, 0, len(raw.Payload))
	for k, v := range raw.Payload {
		if len(v) == 0 || v[0] != '"' {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return &FieldError{Field: "payload." + keys[0], Problem: fmt.Sprintf("payload values must be strings, got JSON %s", te.Value)}
}

// decodeError turns an encoding/json error into a precise ErrInvalid.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return &FieldError{Field: "event", Problem: fmt.Sprintf("want a JSON object, got %s", te.Value)}
		}
		if field == "payload" && te.Type != nil && te.Type.Kind() == reflect.Map {
			return &FieldError{Field: field, Problem: fmt.Sprintf("want a JSON object of strings, got %s", te.Value)}
		}
		if strings.HasPrefix(field, "payload.") || field == "payload" {
			return &FieldError{Field: field, Problem: fmt.Sprintf("payload values must be strings, got JSON %s", te.Value)}
		}
		return &FieldError{Field: field, Problem: fmt.Sprintf("want a JSON %s, got %s", te.Type, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrInvalid, se.Offset, err)
	}
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// Decode parses and validates one event from untrusted bytes: at most MaxBodyBytes, one
// JSON object and nothing after it, string payload values, valid fields (see Validate).
//
// # Errors
//
// Every error wraps ErrInvalid; a body over the limit is ErrTooLarge; field problems are
// *FieldError values (several are joined with errors.Join).
func Decode(data []byte) (Event, error) {
	if len(data) > MaxBodyBytes {
		return Event{}, ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var e Event
	if err := dec.Decode(&e); err != nil {
		if errors.Is(err, io.EOF) {
			return Event{}, fmt.Errorf("%w: empty body", ErrInvalid)
		}
		return Event{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Event{}, fmt.Errorf("%w: data after the event object", ErrInvalid)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Marshal returns the canonical JSON encoding of e (see MarshalJSON).
func (e Event) Marshal() ([]byte, error) {
	b, err := e.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("event %s: encode: %w", e.ID, err)
	}
	return b, nil
}

// Normalize trims the string fields and payload values, and sets DedupeKey to ID when it
// is empty. Validate calls it.
func (e *Event) Normalize() {
	e.ID = strings.TrimSpace(e.ID)
	e.Group = strings.TrimSpace(e.Group)
	e.SourceNode = strings.TrimSpace(e.SourceNode)
	e.Type = strings.TrimSpace(e.Type)
	e.Subject = strings.TrimSpace(e.Subject)
	e.DedupeKey = strings.TrimSpace(e.DedupeKey)
	if e.DedupeKey == "" {
		e.DedupeKey = e.ID
	}
	for k, v := range e.Payload {
		tk, tv := strings.TrimSpace(k), strings.TrimSpace(v)
		if tk != k {
			delete(e.Payload, k)
		}
		e.Payload[tk] = tv
	}
}

// Validate normalizes e in place (see Normalize) and checks it: id, group and type are
// required; lengths within the Max* limits; names free of spaces and control characters;
// payload keys non-empty; expiresAt not before observedAt; the encoding within
// MaxBodyBytes.
//
// # Errors
//
// A single *FieldError, or several joined with errors.Join; all wrap ErrInvalid.
func (e *Event) Validate() error {
	e.Normalize()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	checkToken := func(field, v string, required bool, max int) {
		switch {
		case v == "":
			if required {
				add(field, "is required")
			}
		case len(v) > max:
			add(field, "is %d bytes long, at most %d allowed", len(v), max)
		case !utf8.ValidString(v):
			add(field, "is not valid UTF-8")
		case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			add(field, "%q contains spaces or control characters", v)
		}
	}
	checkToken("id", e.ID, true, MaxIDLen)
	checkToken("group", e.Group, true, MaxNameLen)
	checkToken("type", e.Type, true, MaxNameLen)
	checkToken("sourceNode", e.SourceNode, false, MaxNameLen)
	checkToken("dedupeKey", e.DedupeKey, false, MaxIDLen)
	switch {
	case len(e.Subject) > MaxSubjectLen:
		add("subject", "is %d bytes long, at most %d allowed", len(e.Subject), MaxSubjectLen)
	case !utf8.ValidString(e.Subject):
		add("subject", "is not valid UTF-8")
	case strings.IndexFunc(e.Subject, unicode.IsControl) >= 0:
		add("subject", "contains control characters")
	}
	if len(e.Payload) > MaxPayloadKeys {
		add("payload", "has %d entries, at most %d allowed", len(e.Payload), MaxPayloadKeys)
	}
	size := 0
	for k, v := range e.Payload {
		size += len(k) + len(v)
		field := "payload." + k
		switch {
		case k == "":
			add("payload", "has an empty key")
		case len(k) > MaxPayloadKeyLen:
			add("payload", "key of %d bytes, at most %d allowed", len(k), MaxPayloadKeyLen)
		case !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0:
			add("payload", "key %q is not valid UTF-8 text", k)
		case len(v) > MaxPayloadValueLen:
			add(field, "is %d bytes long, at most %d allowed", len(v), MaxPayloadValueLen)
		case !utf8.ValidString(v):
			add(field, "is not valid UTF-8")
		}
	}
	if !e.ObservedAt.IsZero() && !e.ExpiresAt.IsZero() && e.ExpiresAt.Before(e.ObservedAt) {
		add("expiresAt", "%s is before observedAt %s", FormatTime(e.ExpiresAt), FormatTime(e.ObservedAt))
	}
	if len(errs) == 0 && size > MaxBodyBytes-1024 {
		// Only encode when the payload alone comes near the limit.
		if b, err := e.MarshalJSON(); err == nil && len(b) > MaxBodyBytes {
			add("event", "encodes to %d bytes, at most %d allowed", len(b), MaxBodyBytes)
		}
	}
	return errors.Join(errs...)
}

// Expired reports whether e has an expiry at or before now.
func (e Event) Expired(now time.Time) bool {
	return !e.ExpiresAt.IsZero() && !e.ExpiresAt.After(now)
}

// Clone returns a copy of e that shares no memory with it.
func (e Event) Clone() Event {
	if e.Payload != nil {
		p := make(map[string]string, len(e.Payload))
		for k, v := range e.Payload {
			p[k] = v
		}
		e.Payload = p
	}
	return e
}

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns a new ULID string: 26 characters, lexically sortable by creation time and
// strictly increasing within this process.
func NewID() string { return NewIDAt(time.Now()) }

// NewIDAt returns a new ULID for the time t (monotonic within the same millisecond).
func NewIDAt(t time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(t), idEntropy).String()
}

// New builds an event with a fresh id, ObservedAt = now and, when ttl > 0,
// ExpiresAt = now + ttl. It does not validate.
func New(group, typ, sourceNode, subject string, payload map[string]string, ttl time.Duration, now time.Time) Event {
	e := Event{
		ID: NewIDAt(now), Group: group, SourceNode: sourceNode, Type: typ, Subject: subject,
		Payload: payload, ObservedAt: now.UTC(),
	}
	if ttl > 0 {
		e.ExpiresAt = now.Add(ttl).UTC()
	}
	return e
}
