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
	_, err = registry.dec.response(abi.FuncLog, out)
	return err
}

// Logf writes an info line formatted with fmt.Sprintf, ignoring failures (for debugging).
func Logf(format string, args ...any) {
	_ = Log(abi.LogInfo, fmt.Sprintf(format, args...), nil)
}

// EmitEvent emits a federation event and returns its id (grant: eventEmit.types).
func EmitEvent(r abi.EmitRequest) (string, error) {
	out, err := callEventEmit(encodeEmit(&r))
	if err != nil {
		return "", err
	}
	v, err := registry.dec.response(abi.FuncEventEmit, out)
	if err != nil {
		return "", err
	}
	return str(v, "id", abi.FuncEventEmit)
}

// ConfigGet returns the resource documents of kind (all, or the one named name)
// (grant: configGet.kinds).
func ConfigGet(kind, name string) ([]json.RawMessage, error) {
	out, err := callConfigGet(encodeConfigGet(&abi.ConfigGetRequest{Kind: kind, Name: name}))
	if err != nil {
		return nil, err
	}
	v, err := registry.dec.response(abi.FuncConfigGet, out)
	if err != nil {
		return nil, err
	}
	return rawList(v, "resources", abi.FuncConfigGet)
}

// KVGet reads a plugin-private key; found is false when it does not exist (grant: kv).
func KVGet(key string) (value []byte, found bool, err error) {
	out, err := callKVGet(encodeKV(key, nil, false))
	if err != nil {
		return nil, false, err
	}
	v, err := registry.dec.response(abi.FuncKVGet, out)
	if err != nil {
		return nil, false, err
	}
	found = v.GetBool("found")
	value, err = bytesField(v, "value", abi.FuncKVGet)
	return value, found, err
}

// KVSet writes a plugin-private key (grant: kv).
func KVSet(key string, value []byte) error {
	out, err := callKVSet(encodeKV(key, value, true))
	if err != nil {
		return err
	}
	_, err = registry.dec.response(abi.FuncKVSet, out)
	return err
}

// Now returns the host's clock (grant: now). Handlers should prefer Request.Spec.Now,
// which keeps dry-runs and replays deterministic.
func Now() (time.Time, error) {
	out, err := callNow([]byte("{}"))
	if err != nil {
		return time.Time{}, err
	}
	v, err := registry.dec.response(abi.FuncNow, out)
	if err != nil {
		return time.Time{}, err
	}
	return timeField(v, "now", abi.FuncNow)
}

// ProviderRequest sends a provider API request that the host signs with the credentials
// of r.ProfileRef (grant: providerRequest.hosts / profileRefs).
func ProviderRequest(r abi.ProviderRequest) (*abi.ProviderResponse, error) {
	out, err := callProviderRequest(encodeProvider(&r))
	if err != nil {
		return nil, err
	}
	v, err := registry.dec.response(abi.FuncProviderRequest, out)
	if err != nil {
		return nil, err
	}
	resp := &abi.ProviderResponse{StatusCode: v.GetInt("statusCode")}
	if resp.Headers, err = stringMap(v, "headers", abi.FuncProviderRequest); err != nil {
		return nil, err
	}
	if resp.Body, err = bytesField(v, "body", abi.FuncProviderRequest); err != nil {
		return nil, err
	}
	return resp, nil
}
