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
