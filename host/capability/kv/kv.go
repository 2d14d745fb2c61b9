// Package kv provides host functions "kv_get" and "kv_set": a small key/value space
// private to each plugin (a plugin can never read another plugin's keys). Granted by
// grants.kv. Storage is behind Store; the federation store implements it on SQLite and
// Memory serves tests and dry-runs.
package kv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// Limits of keys and values.
const (
	DefaultMaxKeyBytes   = 256
	DefaultMaxValueBytes = 64 << 10
)

// ErrNotFound is returned by Memory.KVGet for a missing key.
var ErrNotFound = errors.New("kv: key not found")

// Store keeps the plugins' keys. The host passes the plugin's name, so a plugin only
// ever reaches its own keys.
type Store interface {
	// KVGet returns the value of key, or an error that IsNotFound recognises.
	KVGet(ctx context.Context, plugin, key string) ([]byte, error)
	// KVSet stores value under key.
	KVSet(ctx context.Context, plugin, key string, value []byte) error
}

// Options configure the kv functions.
type Options struct {
	// Store keeps the values (required).
	Store Store
	// IsNotFound recognises the store's "missing key" error (default: errors.Is with
	// ErrNotFound).
	IsNotFound func(error) bool
	// MaxKeyBytes and MaxValueBytes bound requests (defaults above).
	MaxKeyBytes, MaxValueBytes int
}

// New returns the host functions of this package: kv_get and kv_set.
func New(opts Options) []capability.Function {
	if opts.IsNotFound == nil {
		opts.IsNotFound = func(err error) bool { return errors.Is(err, ErrNotFound) }
	}
	if opts.MaxKeyBytes <= 0 {
		opts.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if opts.MaxValueBytes <= 0 {
		opts.MaxValueBytes = DefaultMaxValueBytes
	}
	granted := func(g *capability.Grants) bool { return g.KV }
	checkKey := func(fn, key string) error {
		if key == "" {
			return capability.Invalid(fn, "key is empty")
		}
		if len(key) > opts.MaxKeyBytes {
			return abi.NewError(abi.ErrCodeLimitExceeded, fmt.Sprintf("%s: key is %d bytes, limit %d", fn, len(key), opts.MaxKeyBytes))
		}
		return nil
	}
	unavailable := func(fn string) error {
		return abi.NewError(abi.ErrCodeUnavailable, fn+": store unavailable")
	}
	return []capability.Function{
		{
			Name:    abi.FuncKVGet,
			Granted: granted,
			Handle: func(ctx context.Context, c *capability.Call, req []byte) (any, error) {
				r, ok := quickGet(req)
				if !ok {
					if err := capability.Decode(abi.FuncKVGet, req, &r); err != nil {
						return abi.KVGetResponse{}, err
					}
				}
				if err := checkKey(abi.FuncKVGet, r.Key); err != nil {
					return abi.KVGetResponse{}, err
				}
				if opts.Store == nil {
					return abi.KVGetResponse{}, unavailable(abi.FuncKVGet)
				}
				v, err := opts.Store.KVGet(ctx, c.Plugin, r.Key)
				switch {
				case err == nil:
					return getResponse(true, v), nil
				case opts.IsNotFound(err):
					return getResponse(false, nil), nil
				}
				return abi.KVGetResponse{}, unavailable(abi.FuncKVGet)
			},
			Describe: describeKey[abi.KVGetRequest](func(r abi.KVGetRequest) string { return r.Key }),
		},
		{
			Name:    abi.FuncKVSet,
			Granted: granted,
			Handle: func(ctx context.Context, c *capability.Call, req []byte) (any, error) {
				var r abi.KVSetRequest
				if err := capability.Decode(abi.FuncKVSet, req, &r); err != nil {
					return abi.Response{}, err
				}
				if err := checkKey(abi.FuncKVSet, r.Key); err != nil {
					return abi.Response{}, err
				}
				if len(r.Value) > opts.MaxValueBytes {
					return abi.Response{}, abi.NewError(abi.ErrCodeLimitExceeded,
						fmt.Sprintf("%s: value is %d bytes, limit %d", abi.FuncKVSet, len(r.Value), opts.MaxValueBytes))
				}
				if c.DryRun {
					return abi.Response{}, nil
				}
				if opts.Store == nil {
					return abi.Response{}, unavailable(abi.FuncKVSet)
				}
				if err := opts.Store.KVSet(ctx, c.Plugin, r.Key, r.Value); err != nil {
					return abi.Response{}, unavailable(abi.FuncKVSet)
				}
				return abi.Response{}, nil
			},
			Describe: describeKey[abi.KVSetRequest](func(r abi.KVSetRequest) string { return r.Key }),
		},
	}
}

// quickGet decodes the request form the guest SDK sends, {"key":"<key>"} with a key of
// printable ASCII needing no escape, without encoding/json's reflection; ok is false for
// anything else, which the caller decodes with encoding/json.
func quickGet(req []byte) (r abi.KVGetRequest, ok bool) {
	const prefix, suffix = `{"key":"`, `"}`
	if len(req) < len(prefix)+len(suffix) || string(req[:len(prefix)]) != prefix || string(req[len(req)-len(suffix):]) != suffix {
		return r, false
	}
	key := req[len(prefix) : len(req)-len(suffix)]
	for _, c := range key {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return r, false
		}
	}
	r.Key = string(key)
	return r, true
}

// getResponse encodes abi.KVGetResponse{Found: found, Value: v} without reflection (see
// capability.RawResponse).
func getResponse(found bool, v []byte) capability.RawResponse {
	if !found {
		return capability.RawResponse(`{"found":false}`)
	}
	if len(v) == 0 {
		return capability.RawResponse(`{"found":true}`)
	}
	b := make([]byte, 0, len(`{"found":true,"value":""}`)+base64.StdEncoding.EncodedLen(len(v)))
	b = append(b, `{"found":true,"value":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, `"}`...)
}

// describeKey names the key of a request (never its value).
func describeKey[R any](key func(R) string) func([]byte) string {
	return func(req []byte) string {
		var r R
		if capability.Decode("", req, &r) != nil {
			return ""
		}
		return "key=" + key(r)
	}
}

// Memory is an in-memory Store for tests and dry-runs. The zero value is ready to use.
type Memory struct {
	mu sync.Mutex
	m  map[[2]string][]byte
}

// KVGet implements Store; a missing key returns ErrNotFound.
func (s *Memory) KVGet(_ context.Context, plugin, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[[2]string{plugin, key}]
	if !ok {
		return nil, fmt.Errorf("kv: get %s/%s: %w", plugin, key, ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// KVSet implements Store.
func (s *Memory) KVSet(_ context.Context, plugin, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[2]string][]byte)
	}
	s.m[[2]string{plugin, key}] = append([]byte(nil), value...)
	return nil
}
