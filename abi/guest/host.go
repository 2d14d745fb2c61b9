package guest

import (
	"encoding/json"
	"fmt"
	"time"

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
	err = registry.dec.response(abi.FuncEventEmit, out, func(s *scanner, key string) (bool, error) {
		if key != "id" {
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
	err = registry.dec.response(abi.FuncConfigGet, out, func(s *scanner, key string) (bool, error) {
		if key != "resources" {
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
	err = registry.dec.response(abi.FuncKVGet, out, func(s *scanner, key string) (bool, error) {
		var err error
		switch key {
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
	out, err := callNow([]byte("{}"))
	if err != nil {
		return time.Time{}, err
	}
	var now time.Time
	err = registry.dec.response(abi.FuncNow, out, func(s *scanner, key string) (bool, error) {
		if key != "now" {
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
	err = registry.dec.response(abi.FuncProviderRequest, out, func(s *scanner, key string) (bool, error) {
		var err error
		switch key {
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
