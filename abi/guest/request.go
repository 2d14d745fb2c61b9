package guest

import (
	"encoding/json"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"routerd.net/routerd/abi"
)

// The PluginRequest decoder: a single-pass scanner written for the one document every call
// decodes. It replaces a generic parse-then-walk (fastjson) on the hot path because, in a
// Go Wasm guest run with wazero's close-on-context-done (which the host needs for
// deadlines), every loop iteration and function entry pays a termination check: building
// and then revisiting a value tree cost about twice as much as scanning once, and string
// contents are scanned eight bytes per iteration here. The tests and a fuzz target check
// it against encoding/json.

// scanner reads one JSON document. Offsets in errors are byte offsets into the request.
type scanner struct {
	d    *decoder
	data []byte
	i    int
	key  []byte // scratch for escaped member names
}

// syntaxError reports malformed JSON at the current offset.
func (s *scanner) syntaxError(what string) error {
	return abi.NewError(abi.ErrCodeInvalidArgument, "request: malformed JSON at offset "+strconv.Itoa(s.i)+": "+what)
}

// typeError reports a value of the wrong JSON type for a field.
func (s *scanner) typeError(path, want string) error {
	got := "end of input"
	if s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '{':
			got = "object"
		case c == '[':
			got = "array"
		case c == '"':
			got = "string"
		case c == 't' || c == 'f':
			got = "bool"
		case c == 'n':
			got = "null"
		default:
			got = "number"
		}
	}
	return abi.NewError(abi.ErrCodeInvalidArgument, "request: "+path+": got "+got+", want "+want)
}

// ws skips white space.
func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\n', '\t', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it (0 at the end). The host
// sends compact JSON, so the first check almost always answers without calling ws.
func (s *scanner) peek() byte {
	if s.i < len(s.data) && s.data[s.i] > ' ' {
		return s.data[s.i]
	}
	s.ws()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// null consumes a null literal if one is next and reports whether it did.
func (s *scanner) null() (bool, error) {
	if s.peek() != 'n' {
		return false, nil
	}
	return true, s.literal("null")
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return s.syntaxError("invalid literal")
	}
	s.i += len(lit)
	return nil
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanString consumes a string token and returns its raw contents (between the quotes)
// and whether it contains escapes.
func (s *scanner) scanString() (raw []byte, escaped bool, err error) {
	data := s.data
	start := s.i + 1
	i := start
	for {
		if i = nextSpecial(data, i); i >= len(data) {
			s.i = len(data)
			return nil, false, s.syntaxError("unterminated string")
		}
		switch c := data[i]; {
		case c == '"':
			s.i = i + 1
			return data[start:i], escaped, nil
		case c == '\\':
			escaped = true
			i += 2
		default: // a control character
			s.i = i
			return nil, false, s.syntaxError("control character in string")
		}
	}
}

// appendUnescaped appends the unescaped form of raw (string contents with escapes) to dst.
// A lone surrogate becomes U+FFFD, as encoding/json does.
func (s *scanner) appendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return nil, s.syntaxError("truncated escape")
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return nil, s.syntaxError("invalid \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, ok = hex4(raw[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return nil, s.syntaxError("invalid escape")
		}
		i += 2
	}
	return dst, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// str consumes a string (or null, giving "") and returns it interned.
func (s *scanner) str(path string) (string, error) {
	switch s.peek() {
	case '"':
	case 'n':
		return "", s.literal("null")
	default:
		return "", s.typeError(path, "string")
	}
	raw, escaped, err := s.scanString()
	if err != nil {
		return "", err
	}
	if !escaped {
		return s.d.intern(raw), nil
	}
	s.d.reserve()
	a := s.d.arena
	start := len(a)
	a, err = s.appendUnescaped(a, raw)
	if err != nil {
		return "", err
	}
	if cap(a) != cap(s.d.arena) { // cannot happen: unescaping only shrinks
		return string(a[start:]), nil
	}
	s.d.arena = a
	if len(a) == start {
		return "", nil
	}
	return unsafe.String(&a[start], len(a)-start), nil
}

// members iterates over an object's members; each call of f must consume the value. A
// null object calls f never and reports present == false.
func (s *scanner) members(path string, f func(key []byte) error) (present bool, err error) {
	switch s.peek() {
	case '{':
	case 'n':
		return false, s.literal("null")
	default:
		return false, s.typeError(path, "object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true, nil
	}
	for {
		if s.peek() != '"' {
			return true, s.syntaxError("want a member name")
		}
		raw, escaped, err := s.scanString()
		if err != nil {
			return true, err
		}
		key := raw
		if escaped {
			if s.key, err = s.appendUnescaped(s.key[:0], raw); err != nil {
				return true, err
			}
			key = s.key
		}
		if s.peek() != ':' {
			return true, s.syntaxError("want ':' after a member name")
		}
		s.i++
		s.ws()
		if err := f(key); err != nil {
			return true, err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true, nil
		default:
			return true, s.syntaxError("want ',' or '}' in an object")
		}
	}
}

// elements iterates over an array's elements; each call of f must consume the element.
// A null array calls f never and reports present == false.
func (s *scanner) elements(path string, f func(i int) error) (present bool, err error) {
	switch s.peek() {
	case '[':
	case 'n':
		return false, s.literal("null")
	default:
		return false, s.typeError(path, "array")
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true, nil
	}
	for n := 0; ; n++ {
		s.ws()
		if err := f(n); err != nil {
			return true, err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true, nil
		default:
			return true, s.syntaxError("want ',' or ']' in an array")
		}
	}
}

// skip consumes any JSON value, checking its syntax.
func (s *scanner) skip() error {
	return s.skipDepth(0)
}

const maxDepth = 10000

func (s *scanner) skipDepth(depth int) error {
	if depth > maxDepth {
		return s.syntaxError("nested too deeply")
	}
	switch c := s.peek(); {
	case c == '"':
		raw, escaped, err := s.scanString()
		if err == nil && escaped {
			_, err = s.appendUnescaped(s.key[:0], raw) // validate the escapes
		}
		return err
	case c == '{':
		_, err := s.members("", func([]byte) error { return s.skipDepth(depth + 1) })
		return err
	case c == '[':
		_, err := s.elements("", func(int) error { return s.skipDepth(depth + 1) })
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 0:
		return s.syntaxError("unexpected end of input")
	default:
		return s.syntaxError("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

// number consumes a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	data, i := s.data, s.i
	digits := func() bool {
		start := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case !digits():
		s.i = i
		return s.syntaxError("invalid number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			s.i = i
			return s.syntaxError("invalid number")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			s.i = i
			return s.syntaxError("invalid number")
		}
	}
	s.i = i
	return nil
}

// raw consumes any value and returns a copy of its bytes in the arena.
func (s *scanner) raw() (json.RawMessage, error) {
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	s.d.reserve()
	a := s.d.arena
	at := len(a)
	if at+s.i-start > cap(a) {
		return append(json.RawMessage(nil), s.data[start:s.i]...), nil
	}
	a = append(a, s.data[start:s.i]...)
	s.d.arena = a
	return a[at:len(a):len(a)], nil
}

// stringMap consumes an object of strings (null gives nil). path is only called to name a
// field in an error, keeping the success path free of string building.
func (s *scanner) stringMap(path func() string) (map[string]string, error) {
	var m map[string]string
	if c := s.peek(); c != '{' && c != 'n' {
		return nil, s.typeError(path(), "object")
	}
	present, err := s.members("", func(key []byte) error {
		if m == nil {
			m = make(map[string]string, 8)
		}
		if c := s.peek(); c != '"' && c != 'n' {
			return s.typeError(path()+"."+string(key), "string")
		}
		k := s.d.intern(key) // before the value: key may be scratch space
		v, err := s.str("")
		m[k] = v
		return err
	})
	if present && m == nil && err == nil {
		m = map[string]string{}
	}
	return m, err
}

// fieldList consumes an object of strings like stringMap, appending its members to the
// decoder's field list, and reports whether it was an object (not null).
func (s *scanner) fieldList(path func() string) (bool, error) {
	if c := s.peek(); c != '{' && c != 'n' {
		return false, s.typeError(path(), "object")
	}
	return s.members("", func(key []byte) error {
		if c := s.peek(); c != '"' && c != 'n' {
			return s.typeError(path()+"."+string(key), "string")
		}
		k := s.d.intern(key) // before the value: key may be scratch space
		v, err := s.str("")
		s.d.fields = append(s.d.fields, Field{Key: k, Value: v})
		return err
	})
}

// stringList consumes an array of strings (null gives nil).
func (s *scanner) stringList(path string) ([]string, error) {
	out := []string{}
	present, err := s.elements(path, func(i int) error {
		if c := s.peek(); c != '"' && c != 'n' {
			return s.typeError(path+"["+strconv.Itoa(i)+"]", "string")
		}
		v, err := s.str("")
		out = append(out, v)
		return err
	})
	if !present {
		out = nil
	}
	return out, err
}

// request decodes a PluginRequest.
func (d *decoder) request(data []byte) (*abi.Request, error) {
	r := &abi.Request{}
	if err := d.decodeRequest(data, make([]byte, 0, len(data)), r); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeRequest decodes a PluginRequest into r, copying strings into arena (which must
// have room for len(data) bytes). In view mode events go to d.view.Events instead.
func (d *decoder) decodeRequest(data, arena []byte, r *abi.Request) error {
	d.arena = arena
	defer func() { d.arena = nil }()
	d.eventsPresent = false
	s := &scanner{d: d, data: data, key: d.key[:0]}
	defer func() { d.key = s.key[:0] }()
	if s.peek() != '{' {
		return s.typeError("request", "object")
	}
	_, err := s.members("request", func(key []byte) (err error) {
		switch string(key) {
		case "apiVersion":
			r.APIVersion, err = s.str("apiVersion")
		case "kind":
			r.Kind, err = s.str("kind")
		case "abi":
			r.ABI, err = s.str("abi")
		case "batchID":
			r.BatchID, err = s.str("batchID")
		case "spec":
			err = s.spec(&r.Spec)
		default:
			err = s.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if s.ws(); s.i != len(data) {
		return s.syntaxError("data after the request object")
	}
	if _, err := abi.CheckCompatible(r.ABI); err != nil {
		return abi.NewError(abi.ErrCodeABIMismatch, err.Error())
	}
	return nil
}

func (s *scanner) spec(sp *abi.RequestSpec) error {
	_, err := s.members("spec", func(key []byte) (err error) {
		switch string(key) {
		case "trigger":
			_, err = s.members("spec.trigger", func(key []byte) (err error) {
				switch string(key) {
				case "type":
					sp.Trigger.Type, err = s.str("spec.trigger.type")
				case "topic":
					sp.Trigger.Topic, err = s.str("spec.trigger.topic")
				default:
					err = s.skip()
				}
				return err
			})
		case "now":
			var t string
			if t, err = s.str("spec.now"); err == nil && t != "" {
				if sp.Now, err = time.Parse(time.RFC3339Nano, t); err != nil {
					err = abi.NewError(abi.ErrCodeInvalidArgument, "request: spec.now: "+strconv.Quote(t)+" is not an RFC 3339 time")
				}
			}
		case "events":
			if s.d.viewMode {
				return s.eventViews()
			}
			events := make([]abi.Event, 0, 16)
			var present bool
			present, err = s.elements("spec.events", func(i int) error {
				events = append(events, abi.Event{})
				return s.event(&events[len(events)-1], i)
			})
			if present {
				sp.Events = events
			}
		case "context":
			_, err = s.members("spec.context", func(key []byte) (err error) {
				if string(key) != "resources" {
					return s.skip()
				}
				res := []json.RawMessage{}
				present, err := s.elements("spec.context.resources", func(int) error {
					v, err := s.raw()
					res = append(res, v)
					return err
				})
				if present {
					sp.Context.Resources = res
				}
				return err
			})
		case "actionPlan":
			if null, err := s.null(); null || err != nil {
				sp.ActionPlan = nil
				return err
			}
			sp.ActionPlan = &abi.ActionPlan{}
			err = s.actionPlan(sp.ActionPlan, "spec.actionPlan")
		case "dryRun":
			switch s.peek() {
			case 't':
				sp.DryRun, err = true, s.literal("true")
			case 'f':
				sp.DryRun, err = false, s.literal("false")
			case 'n':
				err = s.literal("null")
			default:
				err = s.typeError("spec.dryRun", "bool")
			}
		default:
			err = s.skip()
		}
		return err
	})
	return err
}

// eventViews consumes spec.events into the decoder's view (a repeated member replaces
// the earlier list, as encoding/json does).
func (s *scanner) eventViews() error {
	d := s.d
	events := d.view.Events[:0]
	if events == nil {
		events = make([]EventView, 0, 16) // kept for later calls; [] must not decode as nil
	}
	d.fields = d.fields[:0]
	present, err := s.elements("spec.events", func(i int) error {
		if len(events) < cap(events) {
			events = events[:len(events)+1]
			events[len(events)-1] = EventView{}
		} else {
			events = append(events, EventView{})
		}
		v := &events[len(events)-1]
		if s.eventFast(v) {
			return nil
		}
		*v = EventView{}
		v.lo = len(d.fields)
		err := s.eventInto(&v.Event, v, i)
		v.hi = len(d.fields)
		return err
	})
	d.view.Events = events
	d.eventsPresent = present
	return err
}

// specialMask is special as a mask: the high bit of each byte of x that is '"', '\\' or a
// control character. Bits above the lowest set one may be spurious (borrows), so only
// the lowest is meaningful.
func specialMask(x uint64) uint64 {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x) & highs
}

// nextSpecial returns the offset of the first '"', '\\' or control character in data at
// or after i (len(data) if none), eight bytes per iteration: inside a Wasm guest every
// loop iteration and call costs more than the arithmetic.
func nextSpecial(data []byte, i int) int {
	for i+8 <= len(data) {
		if m := specialMask(*(*uint64)(unsafe.Pointer(&data[i]))); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(data) && data[i] != '"' && data[i] != '\\' && data[i] >= 0x20 {
		i++
	}
	return i
}

// plainString reads the string token at data[i] if it has no escapes (and no control
// characters) and returns its contents without copying, and the offset after it.
func plainString(data []byte, i int) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", i, false
	}
	start := i + 1
	i = start
	// nextSpecial, inline (one call per string instead of two).
	for i+8 <= len(data) {
		if m := specialMask(*(*uint64)(unsafe.Pointer(&data[i]))); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			goto found
		}
		i += 8
	}
	for i < len(data) && data[i] != '"' && data[i] != '\\' && data[i] >= 0x20 {
		i++
	}
found:
	if i >= len(data) || data[i] != '"' {
		return "", i, false
	}
	if i == start {
		return "", i + 1, true
	}
	return unsafe.String(&data[start], i-start), i + 1, true
}

// eventFast decodes one event in the form the host writes it (compact JSON, strings
// without escapes, no nulls) into v in one function, the strings pointing into the
// request bytes, and reports whether it could. Inside a Go Wasm guest function calls are
// what the general path mostly spends its time on. On false nothing is consumed and the
// caller decodes the event with the general path, which accepts and refuses exactly as
// before; so does this path, for the inputs it takes.
// The member names of an event as little-endian words of their first (up to) eight
// bytes, for eventFast.
const (
	nameID       = 'i' | 'd'<<8
	nameType     = 't' | 'y'<<8 | 'p'<<16 | 'e'<<24
	nameGroup    = 'g' | 'r'<<8 | 'o'<<16 | 'u'<<24 | 'p'<<32
	nameSubject  = 's' | 'u'<<8 | 'b'<<16 | 'j'<<24 | 'e'<<32 | 'c'<<40 | 't'<<48
	namePayload  = 'p' | 'a'<<8 | 'y'<<16 | 'l'<<24 | 'o'<<32 | 'a'<<40 | 'd'<<48
	nameSourceNo = 's' | 'o'<<8 | 'u'<<16 | 'r'<<24 | 'c'<<32 | 'e'<<40 | 'N'<<48 | 'o'<<56
	nameDedupeKe = 'd' | 'e'<<8 | 'd'<<16 | 'u'<<24 | 'p'<<32 | 'e'<<40 | 'K'<<48 | 'e'<<56
	nameObserved = 'o' | 'b'<<8 | 's'<<16 | 'e'<<24 | 'r'<<32 | 'v'<<40 | 'e'<<48 | 'd'<<56
	nameExpiresA = 'e' | 'x'<<8 | 'p'<<16 | 'i'<<24 | 'r'<<32 | 'e'<<40 | 's'<<48 | 'A'<<56
)

func (s *scanner) eventFast(v *EventView) bool {
	data, i := s.data, s.i
	fields := s.d.fields
	start := len(fields)
	e := &v.Event
	if i+1 >= len(data) || data[i] != '{' {
		return false
	}
	i++
	if data[i] == '}' {
		s.i = i + 1
		v.lo, v.hi = start, start
		return true
	}
	lo := start
	present := false
	for {
		if i >= len(data) || data[i] != '"' {
			return false
		}
		j := nextSpecial(data, i+1)
		if j+1 >= len(data) || data[j] != '"' || data[j+1] != ':' {
			return false
		}
		// Compare the name as a little-endian word (plus the tail of the longer names):
		// a string switch costs calls inside a Wasm guest, an integer switch does not.
		n, k := j-i-1, i+1
		if k+8 > len(data) {
			return false
		}
		w := *(*uint64)(unsafe.Pointer(&data[k]))
		if n < 8 {
			w &= 1<<(8*n) - 1
		}
		i = j + 2
		var dst *string
		isPayload := false
		switch {
		case n == 2 && w == nameID:
			dst = &e.ID
		case n == 5 && w == nameGroup:
			dst = &e.Group
		case n == 10 && w == nameSourceNo && data[k+8] == 'd' && data[k+9] == 'e':
			dst = &e.SourceNode
		case n == 4 && w == nameType:
			dst = &e.Type
		case n == 7 && w == nameSubject:
			dst = &e.Subject
		case n == 9 && w == nameDedupeKe && data[k+8] == 'y':
			dst = &e.DedupeKey
		case n == 10 && w == nameObserved && data[k+8] == 'A' && data[k+9] == 't':
			dst = &e.ObservedAt
		case n == 9 && w == nameExpiresA && data[k+8] == 't':
			dst = &e.ExpiresAt
		case n == 7 && w == namePayload:
			isPayload = true
		default:
			return false
		}
		if isPayload {
			if i+1 >= len(data) || data[i] != '{' {
				return false
			}
			i++
			lo, present = len(fields), true // a repeated payload replaces the earlier one
			if data[i] != '}' {
				for {
					if i >= len(data) || data[i] != '"' {
						return false
					}
					j := nextSpecial(data, i+1)
					if j+1 >= len(data) || data[j] != '"' || data[j+1] != ':' {
						return false
					}
					k := ""
					if j > i+1 {
						k = unsafe.String(&data[i+1], j-i-1)
					}
					val, j, ok := plainString(data, j+2)
					if !ok || j >= len(data) {
						return false
					}
					fields = append(fields, Field{Key: k, Value: val})
					i = j
					if data[j] == '}' {
						break
					}
					if data[j] != ',' {
						return false
					}
					i++
				}
			}
			i++ // past the payload's '}'
		}
		if dst != nil {
			val, j, ok := plainString(data, i)
			if !ok {
				return false
			}
			*dst, i = val, j
		}
		if i >= len(data) {
			return false
		}
		c := data[i]
		i++
		if c == '}' {
			break
		}
		if c != ',' {
			return false
		}
	}
	s.i = i
	s.d.fields = fields
	v.lo, v.hi, v.payloadPresent = lo, len(fields), present
	return true
}

func (s *scanner) event(e *abi.Event, i int) error {
	return s.eventInto(e, nil, i)
}

// eventInto decodes one event into e; with a view, the payload goes to the decoder's
// field list instead of a map.
func (s *scanner) eventInto(e *abi.Event, v *EventView, i int) error {
	path := func() string { return "spec.events[" + strconv.Itoa(i) + "]" }
	if c := s.peek(); c != '{' && c != 'n' {
		return s.typeError(path(), "object")
	}
	_, err := s.members("", func(key []byte) (err error) {
		var dst *string
		switch string(key) {
		case "id":
			dst = &e.ID
		case "group":
			dst = &e.Group
		case "sourceNode":
			dst = &e.SourceNode
		case "type":
			dst = &e.Type
		case "subject":
			dst = &e.Subject
		case "dedupeKey":
			dst = &e.DedupeKey
		case "observedAt":
			dst = &e.ObservedAt
		case "expiresAt":
			dst = &e.ExpiresAt
		case "payload":
			if v != nil {
				v.lo = len(s.d.fields) // a repeated payload member replaces the earlier one
				v.payloadPresent, err = s.fieldList(func() string { return path() + ".payload" })
				return err
			}
			e.Payload, err = s.stringMap(func() string { return path() + ".payload" })
			return err
		default:
			return s.skip()
		}
		if c := s.peek(); c != '"' && c != 'n' {
			return s.typeError(path()+"."+string(key), "string")
		}
		*dst, err = s.str("")
		return err
	})
	return err
}

func (s *scanner) actionPlan(p *abi.ActionPlan, path string) error {
	_, err := s.members(path, func(key []byte) (err error) {
		switch string(key) {
		case "name":
			p.Name, err = s.str(path + ".name")
		case "provider":
			p.Provider, err = s.str(path + ".provider")
		case "action":
			p.Action, err = s.str(path + ".action")
		case "providerRef":
			p.ProviderRef, err = s.str(path + ".providerRef")
		case "mode":
			p.Mode, err = s.str(path + ".mode")
		case "description":
			p.Description, err = s.str(path + ".description")
		case "riskLevel":
			p.RiskLevel, err = s.str(path + ".riskLevel")
		case "idempotencyKey":
			p.IdempotencyKey, err = s.str(path + ".idempotencyKey")
		case "target":
			p.Target, err = s.stringMap(func() string { return path + ".target" })
		case "parameters":
			p.Parameters, err = s.stringMap(func() string { return path + ".parameters" })
		case "expectedEffects":
			p.ExpectedEffects, err = s.stringList(path + ".expectedEffects")
		case "preconditions":
			pcs := []abi.Precondition{}
			var present bool
			present, err = s.elements(path+".preconditions", func(int) error {
				pcs = append(pcs, abi.Precondition{})
				c := &pcs[len(pcs)-1]
				_, err := s.members(path+".preconditions[]", func(key []byte) (err error) {
					switch string(key) {
					case "name":
						c.Name, err = s.str(path + ".preconditions[].name")
					case "expect":
						c.Expect, err = s.str(path + ".preconditions[].expect")
					case "detail":
						c.Detail, err = s.str(path + ".preconditions[].detail")
					case "target":
						c.Target, err = s.str(path + ".preconditions[].target")
					default:
						err = s.skip()
					}
					return err
				})
				return err
			})
			if present {
				p.Preconditions = pcs
			}
		case "undo":
			if null, err := s.null(); null || err != nil {
				p.Undo = nil
				return err
			}
			u := &abi.ActionUndo{}
			p.Undo = u
			_, err = s.members(path+".undo", func(key []byte) (err error) {
				switch string(key) {
				case "action":
					u.Action, err = s.str(path + ".undo.action")
				case "parameters":
					u.Parameters, err = s.stringMap(func() string { return path + ".undo.parameters" })
				default:
					err = s.skip()
				}
				return err
			})
		default:
			err = s.skip()
		}
		return err
	})
	return err
}
