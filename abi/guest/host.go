package guest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unsafe"

	"routerd.net/routerd/abi"
)

// Typed wrappers for the host functions of module "routerd". Each needs the matching
// grant in the Plugin resource; a denied call returns an *abi.Error with code
// capability_denied (test with errors.Is(err, &abi.Error{Code: abi.ErrCodeCapabilityDenied})).

// Log writes a log line through the host (grant: log).
func Log(level, message string, attrs map[string]string) error {
	out, err := callLog(encodeLog(&abi.LogRequest{Level: level, Message: message, Attrs: attrs}))
	if err != nil {
		return err
	}
	return registry.dec.response(abi.FuncLog, out, nil)
}

// Logf writes an info line formatted with fmt.Sprintf, ignoring failures (for debugging;
// using it links package fmt into the plugin).
func Logf(format string, args ...any) {
	_ = Log(abi.LogInfo, fmt.Sprintf(format, args...), nil)
}

// EmitEvent emits a federation event and returns its id (grant: eventEmit.types).
func EmitEvent(r abi.EmitRequest) (string, error) {
	out, err := callEventEmit(encodeEmit(&r))
	if err != nil {
		return "", err
	}
	var id string
	err = registry.dec.response(abi.FuncEventEmit, out, func(s *scanner, key []byte) (bool, error) {
		if string(key) != "id" {
			return false, nil
		}
		var err error
		id, err = s.str("event_emit.id")
		return true, err
	})
	return id, err
}

// ConfigGet returns the resource documents of kind (all, or the one named name)
// (grant: configGet.kinds).
func ConfigGet(kind, name string) ([]json.RawMessage, error) {
	out, err := callConfigGet(encodeConfigGet(&abi.ConfigGetRequest{Kind: kind, Name: name}))
	if err != nil {
		return nil, err
	}
	var res []json.RawMessage
	err = registry.dec.response(abi.FuncConfigGet, out, func(s *scanner, key []byte) (bool, error) {
		if string(key) != "resources" {
			return false, nil
		}
		var err error
		res, err = s.rawList("config_get.resources")
		return true, err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// KVGet reads a plugin-private key; found is false when it does not exist (grant: kv).
func KVGet(key string) (value []byte, found bool, err error) {
	out, err := callKVGet(encodeKV(key, nil, false))
	if err != nil {
		return nil, false, err
	}
	return decodeKVGet(out)
}

// decodeKVGet decodes the response of kv_get.
func decodeKVGet(out []byte) (value []byte, found bool, err error) {
	if value, found, ok := quickKVGet(out); ok {
		return value, found, nil
	}
	return decodeKVGetGeneral(out)
}

// quickKVGet decodes the forms the host answers kv_get with, {"found":false},
// {"found":true} and {"found":true,"value":"<base64>"}, without the general decoder (a
// Wasm guest pays for every call it makes); ok is false for anything else.
func quickKVGet(out []byte) (value []byte, found, ok bool) {
	switch v, isValue := bytes.CutPrefix(out, []byte(`{"found":true,"value":"`)); {
	case string(out) == `{"found":false}`:
		return nil, false, true
	case string(out) == `{"found":true}`:
		return nil, true, true
	case isValue:
		v, ok := bytes.CutSuffix(v, []byte(`"}`))
		if !ok || len(v) == 0 || bytes.IndexByte(v, '\r') >= 0 || bytes.IndexByte(v, '\n') >= 0 { // Decode would skip newlines
			return nil, false, false
		}
		b := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		n, err := base64.StdEncoding.Decode(b, v)
		if err != nil {
			return nil, false, false
		}
		return b[:n], true, true
	}
	return nil, false, false
}

// decodeKVGetGeneral decodes any response of kv_get.
func decodeKVGetGeneral(out []byte) (value []byte, found bool, err error) {
	err = registry.dec.response(abi.FuncKVGet, out, func(s *scanner, key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "found":
			found, err = s.boolValue("kv_get.found")
		case "value":
			value, err = s.bytesValue("kv_get.value")
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, false, err
	}
	return value, found, nil
}

// KVSet writes a plugin-private key (grant: kv).
func KVSet(key string, value []byte) error {
	out, err := callKVSet(encodeKV(key, value, true))
	if err != nil {
		return err
	}
	return registry.dec.response(abi.FuncKVSet, out, nil)
}

// Now returns the host's clock (grant: now). Handlers should prefer Request.Spec.Now,
// which keeps dry-runs and replays deterministic.
func Now() (time.Time, error) {
	out, err := callNow(nowRequest)
	if err != nil {
		return time.Time{}, err
	}
	return decodeNow(out)
}

// nowRequest is the request body of now (the host reads it, never writes it).
var nowRequest = []byte("{}")

// decodeNow decodes the response of now.
func decodeNow(out []byte) (time.Time, error) {
	if t, ok := quickNow(out); ok {
		return t, nil
	}
	return decodeNowGeneral(out)
}

// quickNow decodes the form the host answers now with, {"now":"<RFC 3339>"}, without the
// general decoder; ok is false for anything else.
func quickNow(out []byte) (time.Time, bool) {
	v, ok := bytes.CutPrefix(out, []byte(`{"now":"`))
	if !ok {
		return time.Time{}, false
	}
	v, ok = bytes.CutSuffix(v, []byte(`"}`))
	if !ok || len(v) == 0 {
		return time.Time{}, false
	}
	if t, ok := parseUTC(v); ok {
		return t, true
	}
	if bytes.ContainsAny(v, `"\`) {
		return time.Time{}, false
	}
	// The parsed time keeps nothing of the string (RFC 3339 has no zone names).
	t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(v), len(v)))
	return t, err == nil
}

// parseUTC parses the form the host writes its clock in, "2006-01-02T15:04:05Z" with an
// optional fraction of 1 to 9 digits, as time.Parse(time.RFC3339Nano) would; ok is false
// for anything else (which time.Parse then handles). Inside a Wasm guest time.Parse and
// time.Date cost more than the rest of a host call.
func parseUTC(b []byte) (time.Time, bool) {
	const layout = "2006-01-02T15:04:05"
	if len(b) < len(layout)+1 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	digits := func(s []byte) int { // -1 unless all digits
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := digits(b[0:4]), digits(b[5:7]), digits(b[8:10])
	hour, minute, sec := digits(b[11:13]), digits(b[14:16]), digits(b[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[len(layout) : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		if nsec = digits(frac[1:]); nsec < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	// Days since 1970-01-01 of the civil date (H. Hinnant's days_from_civil).
	y := year
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 { // floor division
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (month + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := int64(era)*146097 + int64(doe) - 719468
	return time.Unix(days*86400+int64(hour*3600+minute*60+sec), int64(nsec)).UTC(), true
}

// daysIn returns the number of days of month (1-12) in year.
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// decodeNowGeneral decodes any response of now.
func decodeNowGeneral(out []byte) (time.Time, error) {
	var now time.Time
	err := registry.dec.response(abi.FuncNow, out, func(s *scanner, key []byte) (bool, error) {
		if string(key) != "now" {
			return false, nil
		}
		var err error
		now, err = s.timeValue("now.now")
		return true, err
	})
	if err != nil {
		return time.Time{}, err
	}
	return now, nil
}

// ProviderRequest sends a provider API request that the host signs with the credentials
// of r.ProfileRef (grant: providerRequest.hosts / profileRefs).
func ProviderRequest(r abi.ProviderRequest) (*abi.ProviderResponse, error) {
	out, err := callProviderRequest(encodeProvider(&r))
	if err != nil {
		return nil, err
	}
	resp := &abi.ProviderResponse{}
	err = registry.dec.response(abi.FuncProviderRequest, out, func(s *scanner, key []byte) (bool, error) {
		var err error
		switch string(key) {
		case "statusCode":
			resp.StatusCode, err = s.intValue("provider_request.statusCode")
		case "headers":
			resp.Headers, err = s.stringMap(func() string { return "provider_request.headers" })
		case "body":
			resp.Body, err = s.bytesValue("provider_request.body")
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
