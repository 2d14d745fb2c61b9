package kv

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

func TestKVFunctions(t *testing.T) {
	store := &Memory{}
	fns := map[string]capability.Function{}
	for _, f := range New(Options{Store: store, MaxKeyBytes: 8, MaxValueBytes: 4}) {
		fns[f.Name] = f
	}
	grants := &capability.Grants{KV: true}
	call := func(plugin string, dry bool) *capability.Call {
		return &capability.Call{Plugin: plugin, Grants: grants, DryRun: dry}
	}
	tests := []struct {
		name   string
		fn     string
		call   *capability.Call
		req    any
		want   string // JSON of the response, or the error code
		errors bool
	}{
		{name: "set", fn: abi.FuncKVSet, call: call("a", false), req: abi.KVSetRequest{Key: "k", Value: []byte("v")}, want: `{}`},
		{name: "get own", fn: abi.FuncKVGet, call: call("a", false), req: abi.KVGetRequest{Key: "k"}, want: `{"found":true,"value":"dg=="}`},
		{name: "other plugin does not see it", fn: abi.FuncKVGet, call: call("b", false), req: abi.KVGetRequest{Key: "k"}, want: `{"found":false}`},
		{name: "dry-run set stores nothing", fn: abi.FuncKVSet, call: call("a", true), req: abi.KVSetRequest{Key: "d", Value: []byte("x")}, want: `{}`},
		{name: "dry-run key absent", fn: abi.FuncKVGet, call: call("a", false), req: abi.KVGetRequest{Key: "d"}, want: `{"found":false}`},
		{name: "key too long", fn: abi.FuncKVGet, call: call("a", false), req: abi.KVGetRequest{Key: "123456789"}, want: "limit_exceeded", errors: true},
		{name: "value too long", fn: abi.FuncKVSet, call: call("a", false), req: abi.KVSetRequest{Key: "k", Value: []byte("12345")}, want: "limit_exceeded", errors: true},
		{name: "empty key", fn: abi.FuncKVSet, call: call("a", false), req: abi.KVSetRequest{}, want: "invalid_argument", errors: true},
		{name: "not JSON", fn: abi.FuncKVGet, call: call("a", false), req: "raw:{", want: "invalid_argument", errors: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if s, ok := tt.req.(string); ok {
				body = []byte(s[len("raw:"):])
			} else {
				body, _ = json.Marshal(tt.req)
			}
			resp, err := fns[tt.fn].Handle(context.Background(), tt.call, body)
			if tt.errors {
				var ae *abi.Error
				if !errors.As(err, &ae) || string(ae.Code) != tt.want {
					t.Fatalf("err %v, want code %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(resp)
			if string(got) != tt.want {
				t.Fatalf("response %s, want %s", got, tt.want)
			}
		})
	}
}

// TestGetResponseMatchesEncodingJSON checks the reflection-free kv_get response against
// encoding/json on abi.KVGetResponse.
func TestGetResponseMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name  string
		found bool
		value []byte
	}{
		{name: "missing", found: false},
		{name: "empty value", found: true, value: []byte{}},
		{name: "text", found: true, value: []byte("value")},
		{name: "binary", found: true, value: []byte{0, 0xff, '"', '\\', 0x7f, 1, 2}},
		{name: "long", found: true, value: make([]byte, 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(abi.KVGetResponse{Found: tt.found, Value: tt.value})
			if err != nil {
				t.Fatal(err)
			}
			if got := getResponse(tt.found, tt.value); string(got) != string(want) {
				t.Fatalf("getResponse = %s, want %s", got, want)
			}
		})
	}
}

// TestQuickGetMatchesEncodingJSON checks the reflection-free kv_get request decoder
// against encoding/json: whatever it accepts decodes to the same key.
func TestQuickGetMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		req  string
		ok   bool
	}{
		{name: "plain", req: `{"key":"cursor"}`, ok: true},
		{name: "empty key", req: `{"key":""}`, ok: true},
		{name: "punctuation", req: `{"key":"a/b:c d{}"}`, ok: true},
		{name: "escape", req: `{"key":"a\"b"}`},
		{name: "unicode escape", req: `{"key":"\u00e9"}`},
		{name: "utf-8", req: `{"key":"é"}`},
		{name: "whitespace", req: `{ "key":"k"}`},
		{name: "other member", req: `{"key":"k","x":1}`},
		{name: "quote inside", req: `{"key":"a","b":"c"}`},
		{name: "not JSON", req: `{"key":"k"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := quickGet([]byte(tt.req))
			if ok != tt.ok {
				t.Fatalf("quickGet(%s) ok=%v, want %v", tt.req, ok, tt.ok)
			}
			if !ok {
				return
			}
			var want abi.KVGetRequest
			if err := json.Unmarshal([]byte(tt.req), &want); err != nil || got != want {
				t.Fatalf("quickGet(%s) = %+v; encoding/json gives %+v (%v)", tt.req, got, want, err)
			}
		})
	}
}

// FuzzQuickGet requires quickGet to agree with encoding/json on whatever it accepts.
func FuzzQuickGet(f *testing.F) {
	for _, s := range []string{`{"key":"k"}`, `{"key":"a\"b"}`, `{"key":""}`, `{"key":"k","x":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		got, ok := quickGet(req)
		if !ok {
			return
		}
		var want abi.KVGetRequest
		if err := json.Unmarshal(req, &want); err != nil || got != want {
			t.Fatalf("quickGet(%q) = %+v; encoding/json gives %+v (%v)", req, got, want, err)
		}
	})
}
