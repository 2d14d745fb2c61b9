package guest

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unsafe"

	"routerd.net/routerd/abi"
)

// Host-function responses are small objects; they are decoded with the request scanner.
// A response that is not valid JSON, or has fields of the wrong type, is the host's fault
// and is reported with code internal.

// response decodes the response of host function fn: "error" becomes the returned
// *abi.Error, every other member is offered to field (which consumes the value and
// reports whether it knew the member; unknown members are skipped).
//
// Strings that field keeps are copied into an arena allocated on first use; values that
// do not outlive the call (times, base64 bytes) are decoded straight from data, so a
// response like now's or kv_get's costs no allocation beyond the value returned.
func (d *decoder) response(fn string, data []byte, field func(s *scanner, key []byte) (bool, error)) error {
	d.arena, d.lazyArena = nil, len(data)
	s := &d.rs
	*s = scanner{d: d, data: data, key: d.key[:0]}
	defer func() {
		d.arena, d.lazyArena = nil, 0
		d.key = s.key[:0]
		s.data = nil
	}()
	var herr *abi.Error
	if s.peek() != '{' {
		return internal(fn, "response is not a JSON object")
	}
	_, err := s.members(fn, func(key []byte) error {
		if string(key) == "error" {
			if null, err := s.null(); null || err != nil {
				return err
			}
			herr = &abi.Error{}
			_, err := s.members(fn+".error", func(key []byte) (err error) {
				switch string(key) {
				case "code":
					var code string
					code, err = s.str(fn + ".error.code")
					herr.Code = abi.ErrorCode(code)
				case "message":
					herr.Message, err = s.str(fn + ".error.message")
				default:
					err = s.skip()
				}
				return err
			})
			return err
		}
		if field != nil {
			known, err := field(s, key)
			if known || err != nil {
				return err
			}
		}
		return s.skip()
	})
	if err == nil {
		if s.ws(); s.i != len(data) {
			err = s.syntaxError("data after the response object")
		}
	}
	if err != nil {
		return internal(fn, "malformed response: "+err.Error())
	}
	if herr != nil {
		if herr.Code == "" {
			herr.Code = abi.ErrCodeInternal
		}
		return herr
	}
	return nil
}

func internal(fn, msg string) error {
	return abi.NewError(abi.ErrCodeInternal, "host function "+fn+": "+msg)
}

// bytesValue consumes a base64 string (null or "" gives nil) into a new slice.
func (s *scanner) bytesValue(path string) ([]byte, error) {
	raw, err := s.rawString(path)
	if err != nil || len(raw) == 0 {
		return nil, err
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(b, raw)
	if err != nil {
		return nil, abi.NewError(abi.ErrCodeInternal, path+": not base64: "+err.Error())
	}
	return b[:n], nil
}

// rawString consumes a string (null gives nil) and returns its unescaped bytes:
// unescaped strings alias the input (do not keep them), escaped ones are unescaped into
// a new slice.
func (s *scanner) rawString(path string) ([]byte, error) {
	switch s.peek() {
	case '"':
	case 'n':
		return nil, s.literal("null")
	default:
		return nil, s.typeError(path, "string")
	}
	raw, escaped, err := s.scanString()
	if err != nil || !escaped {
		return raw, err
	}
	return s.appendUnescaped(nil, raw)
}

// boolValue consumes true, false or null (false).
func (s *scanner) boolValue(path string) (bool, error) {
	switch s.peek() {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	case 'n':
		return false, s.literal("null")
	}
	return false, s.typeError(path, "bool")
}

// intValue consumes an integer (null gives 0).
func (s *scanner) intValue(path string) (int, error) {
	switch c := s.peek(); {
	case c == 'n':
		return 0, s.literal("null")
	case c != '-' && (c < '0' || c > '9'):
		return 0, s.typeError(path, "number")
	}
	start := s.i
	if err := s.number(); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(s.data[start:s.i]))
	if err != nil {
		return 0, abi.NewError(abi.ErrCodeInvalidArgument, path+": not an integer")
	}
	return n, nil
}

// timeValue consumes an RFC 3339 string (null or "" gives the zero time).
func (s *scanner) timeValue(path string) (time.Time, error) {
	raw, err := s.rawString(path)
	if err != nil || len(raw) == 0 {
		return time.Time{}, err
	}
	// The parsed time keeps nothing of the string (RFC 3339 has no zone names), so it
	// may alias raw.
	t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(raw), len(raw)))
	if err != nil {
		return time.Time{}, abi.NewError(abi.ErrCodeInvalidArgument, path+": "+strconv.Quote(string(raw))+" is not an RFC 3339 time")
	}
	return t, nil
}

// rawList consumes an array of any values, returned raw (null gives nil).
func (s *scanner) rawList(path string) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	present, err := s.elements(path, func(int) error {
		v, err := s.raw()
		out = append(out, v)
		return err
	})
	if !present {
		out = nil
	}
	return out, err
}
