// Package jsonw is a small reflection-free JSON writer for Wasm guests, where
// encoding/json's reflection is roughly ten times slower than native code. It appends to a
// byte slice, handles commas and nesting itself, and escapes strings exactly as RFC 8259
// requires (invalid UTF-8 becomes U+FFFD, like encoding/json).
//
// The guest SDK encodes every ABI document with it; plugins use it to build the resource
// documents they return:
//
//	var w jsonw.Writer
//	w.BeginObject()
//	w.StringField("kind", "RemoteAddressClaim")
//	w.Key("spec")
//	w.BeginObject()
//	w.StringField("address", addr)
//	w.EndObject()
//	w.EndObject()
//	doc := w.Bytes()
package jsonw

import (
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Writer builds one JSON value. The zero value is ready to use. It does not validate the
// call sequence beyond commas: callers pair Begin/End and put a Key before each object
// member.
type Writer struct {
	buf []byte
	// nonEmpty records, per open container, whether it already holds an element: the
	// first 64 levels in a bit set (no allocation), deeper ones in deep.
	nonEmpty uint64
	depth    int
	deep     []bool
	afterKey bool
}

// Wrap returns a Writer value appending to buf, for use on the stack (no allocation).
func Wrap(buf []byte) Writer { return Writer{buf: buf} }

// push opens a container level.
func (w *Writer) push() {
	if w.depth >= 64 {
		w.deep = append(w.deep, false)
	} else {
		w.nonEmpty &^= 1 << w.depth
	}
	w.depth++
}

// pop closes the innermost container level.
func (w *Writer) pop() {
	w.depth--
	if w.depth >= 64 {
		w.deep = w.deep[:len(w.deep)-1]
	}
}

// NewWriter returns a Writer that appends to buf (pass buf[:0] to reuse a buffer).
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf} }

// Reset empties the writer, keeping its buffer.
func (w *Writer) Reset() {
	w.buf = w.buf[:0]
	w.nonEmpty, w.depth, w.deep = 0, 0, w.deep[:0]
	w.afterKey = false
}

// Bytes returns the JSON written so far. The slice aliases the writer's buffer.
func (w *Writer) Bytes() []byte { return w.buf }

// sep writes the comma before a value when needed.
func (w *Writer) sep() {
	if w.afterKey {
		w.afterKey = false
		return
	}
	switch d := w.depth - 1; {
	case d < 0:
	case d >= 64:
		if w.deep[d-64] {
			w.buf = append(w.buf, ',')
		} else {
			w.deep[d-64] = true
		}
	case w.nonEmpty&(1<<d) != 0:
		w.buf = append(w.buf, ',')
	default:
		w.nonEmpty |= 1 << d
	}
}

// BeginObject opens an object.
func (w *Writer) BeginObject() {
	w.sep()
	w.buf = append(w.buf, '{')
	w.push()
}

// EndObject closes the innermost object.
func (w *Writer) EndObject() {
	w.pop()
	w.buf = append(w.buf, '}')
}

// BeginArray opens an array.
func (w *Writer) BeginArray() {
	w.sep()
	w.buf = append(w.buf, '[')
	w.push()
}

// EndArray closes the innermost array.
func (w *Writer) EndArray() {
	w.pop()
	w.buf = append(w.buf, ']')
}

// Key writes an object member name; the next value written is its value.
func (w *Writer) Key(k string) {
	w.sep()
	w.buf = AppendString(w.buf, k)
	w.buf = append(w.buf, ':')
	w.afterKey = true
}

// String writes a string value.
func (w *Writer) String(s string) {
	w.sep()
	w.buf = AppendString(w.buf, s)
}

// Bool writes true or false.
func (w *Writer) Bool(b bool) {
	w.sep()
	w.buf = strconv.AppendBool(w.buf, b)
}

// Int writes an integer.
func (w *Writer) Int(n int64) {
	w.sep()
	w.buf = strconv.AppendInt(w.buf, n, 10)
}

// Null writes null.
func (w *Writer) Null() {
	w.sep()
	w.buf = append(w.buf, "null"...)
}

// Raw writes an already-encoded JSON value verbatim (null when empty). The caller
// guarantees it is valid JSON.
func (w *Writer) Raw(v []byte) {
	w.sep()
	if len(v) == 0 {
		w.buf = append(w.buf, "null"...)
		return
	}
	w.buf = append(w.buf, v...)
}

// Time writes t as an RFC 3339 string with nanoseconds, as encoding/json does.
func (w *Writer) Time(t time.Time) {
	w.sep()
	w.buf = append(w.buf, '"')
	w.buf = t.AppendFormat(w.buf, time.RFC3339Nano)
	w.buf = append(w.buf, '"')
}

// StringField writes "k": "v".
func (w *Writer) StringField(k, v string) {
	w.Key(k)
	w.String(v)
}

// StringFieldOmitEmpty writes "k": "v" unless v is empty.
func (w *Writer) StringFieldOmitEmpty(k, v string) {
	if v != "" {
		w.StringField(k, v)
	}
}

// BoolField writes "k": b.
func (w *Writer) BoolField(k string, b bool) {
	w.Key(k)
	w.Bool(b)
}

// StringMap writes m as an object with keys in sorted order (deterministic output).
func (w *Writer) StringMap(m map[string]string) {
	w.BeginObject()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.StringField(k, m[k])
	}
	w.EndObject()
}

// StringMapFieldOmitEmpty writes "k": {...} unless m is empty.
func (w *Writer) StringMapFieldOmitEmpty(k string, m map[string]string) {
	if len(m) > 0 {
		w.Key(k)
		w.StringMap(m)
	}
}

// Strings writes a string array.
func (w *Writer) Strings(ss []string) {
	w.BeginArray()
	for _, s := range ss {
		w.String(s)
	}
	w.EndArray()
}

const hexDigits = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasByte reports whether any byte of x equals c.
func hasByte(x uint64, c byte) bool {
	y := x ^ (ones * uint64(c))
	return (y-ones)&^y&highs != 0
}

// needsEscape reports whether any of the 8 bytes in x is not plain: a control character,
// a non-ASCII byte, or one of " \ < > &.
func needsEscape(x uint64) bool {
	return (x-ones*0x20)&^x&highs != 0 || x&highs != 0 ||
		hasByte(x, '"') || hasByte(x, '\\') || hasByte(x, '<') || hasByte(x, '>') || hasByte(x, '&')
}

// plain[c] is true for ASCII bytes copied unchanged into a JSON string.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s as a quoted JSON string. Control characters, '"', '\\', and the
// line separators U+2028/U+2029 are escaped; '<', '>' and '&' are escaped like
// encoding/json does so the output is safe to embed in HTML; invalid UTF-8 bytes become
// U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Fast path: most strings (names, addresses) need no escaping at all. Scan eight bytes
	// per iteration: in a Wasm guest every loop iteration costs a termination check.
	i := 0
	for i+8 <= len(s) && !needsEscape(*(*uint64)(unsafe.Pointer(unsafe.StringData(s[i:])))) {
		i += 8
	}
	for i < len(s) && s[i] < utf8.RuneSelf && plain[s[i]] {
		i++
	}
	if i == len(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
