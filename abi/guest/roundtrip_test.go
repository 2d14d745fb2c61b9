//go:build !wasip1

package guest

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/abi"
)

// The guest codec is hand-written (ADR 0003), so a field added to an abi document is
// silently dropped by the guest until someone teaches the codec. TestEveryFieldRoundTrips
// fills every exported field of every document the guest reads or writes by reflection
// and requires the guest's decoder or encoder to keep each one. The codec (codec.go,
// request.go, response.go, host.go) has no build constraints: the wasip1 build compiles
// the same code, so it runs natively here, with host-function calls answered through
// nativeHost; the Wasm transport around it is tested on real modules in wasm_test.go.

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
	fillTime       = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
)

// fill sets every exported field reachable from v to a non-zero value derived from its
// path: strings, true, numbers, one-element slices, one-entry maps, allocated pointers,
// JSON objects for raw messages and a time with nanoseconds.
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch {
	case v.Type() == rawMessageType:
		b, _ := json.Marshal(map[string]string{"path": path})
		v.SetBytes(b)
		return
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(fillTime))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(path + ` "é\n`) // with characters the encoder must escape
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(100 + len(path)))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(path + "\x00\xff"))
			return
		}
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e, path+"[0]")
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), e))
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			t.Fatalf("fill: %s is a map keyed by %s; teach fill", path, v.Type().Key())
		}
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e, path+"{}")
		m.SetMapIndex(reflect.ValueOf(path+".key").Convert(v.Type().Key()), e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(t, v.Field(i), path+"."+f.Name)
			}
		}
	default:
		t.Fatalf("fill: %s has kind %s; teach fill", path, v.Kind())
	}
}

// filled returns a *T with every field filled.
func filled[T any](t *testing.T) *T {
	var v T
	fill(t, reflect.ValueOf(&v).Elem(), reflect.TypeFor[T]().Name())
	return &v
}

// sameJSON fails unless got and want marshal to the same JSON (a field the guest lost is
// zero in got and either missing or different in its JSON).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s lost or changed a field in the guest codec:\n got %s\nwant %s", what, g, w)
	}
}

// answerHost answers every host function with resp (marshalled) and records the request.
func answerHost(t *testing.T, resp any) *[]byte {
	t.Helper()
	body, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var req []byte
	nativeHost = func(_ string, r []byte) ([]byte, error) {
		req = append([]byte(nil), r...)
		return body, nil
	}
	t.Cleanup(func() { nativeHost = nil })
	return &req
}

// decodeInto unmarshals what the guest encoded into a new T.
func decodeInto[T any](t *testing.T, data []byte) *T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("encoding/json cannot read what the guest wrote: %v\n%s", err, data)
	}
	return &v
}

// roundTrips are the documents the guest reads or writes; each case fills one, runs it
// through the guest codec and returns (got, want) to compare.
var roundTrips = []struct {
	name string
	root reflect.Type // the document, for the coverage check
	run  func(t *testing.T) (got, want any)
}{
	{name: "PluginRequest (guest decodes)", root: reflect.TypeFor[abi.Request](), run: func(t *testing.T) (any, any) {
		want := filled[abi.Request](t)
		want.ABI = abi.RequestVersion // the guest refuses other majors
		in, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRequest(in)
		if err != nil {
			t.Fatalf("DecodeRequest: %v\n%s", err, in)
		}
		return got, want
	}},
	{name: "PluginRequest (guest view decoder)", root: reflect.TypeFor[abi.Request](), run: func(t *testing.T) (any, any) {
		want := filled[abi.Request](t)
		want.ABI = abi.RequestVersion
		in, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		v, err := DecodeRequestView(in)
		if err != nil {
			t.Fatalf("DecodeRequestView: %v\n%s", err, in)
		}
		return v.ToRequest(), want
	}},
	{name: "PluginResult (guest encodes)", root: reflect.TypeFor[abi.Result](), run: func(t *testing.T) (any, any) {
		want := filled[abi.Result](t)
		want.APIVersion, want.Kind = abi.PluginAPIVersion, abi.KindPluginResult // written as constants
		return decodeInto[abi.Result](t, AppendResult(nil, want)), want
	}},
	{name: "Manifest (guest encodes)", root: reflect.TypeFor[abi.Manifest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.Manifest](t)
		return decodeInto[abi.Manifest](t, AppendManifest(nil, want)), want
	}},
	{name: "log request", root: reflect.TypeFor[abi.LogRequest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.LogRequest](t)
		req := answerHost(t, abi.Response{})
		if err := Log(want.Level, want.Message, want.Attrs); err != nil {
			t.Fatal(err)
		}
		return decodeInto[abi.LogRequest](t, *req), want
	}},
	{name: "event_emit request and response", root: reflect.TypeFor[abi.EmitRequest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.EmitRequest](t)
		resp := filled[abi.EmitResponse](t)
		resp.Error = nil // see the error cases
		req := answerHost(t, resp)
		id, err := EmitEvent(*want)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "EmitResponse", abi.EmitResponse{ID: id}, resp)
		return decodeInto[abi.EmitRequest](t, *req), want
	}},
	{name: "config_get request and response", root: reflect.TypeFor[abi.ConfigGetRequest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.ConfigGetRequest](t)
		resp := filled[abi.ConfigGetResponse](t)
		resp.Error = nil
		req := answerHost(t, resp)
		res, err := ConfigGet(want.Kind, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "ConfigGetResponse", abi.ConfigGetResponse{Resources: res}, resp)
		return decodeInto[abi.ConfigGetRequest](t, *req), want
	}},
	{name: "kv_get request and response", root: reflect.TypeFor[abi.KVGetRequest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.KVGetRequest](t)
		resp := filled[abi.KVGetResponse](t)
		resp.Error = nil
		req := answerHost(t, resp)
		value, found, err := KVGet(want.Key)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "KVGetResponse", abi.KVGetResponse{Found: found, Value: value}, resp)
		return decodeInto[abi.KVGetRequest](t, *req), want
	}},
	{name: "kv_set request", root: reflect.TypeFor[abi.KVSetRequest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.KVSetRequest](t)
		req := answerHost(t, abi.Response{})
		if err := KVSet(want.Key, want.Value); err != nil {
			t.Fatal(err)
		}
		return decodeInto[abi.KVSetRequest](t, *req), want
	}},
	{name: "now response", root: reflect.TypeFor[abi.NowResponse](), run: func(t *testing.T) (any, any) {
		resp := filled[abi.NowResponse](t)
		resp.Error = nil
		answerHost(t, resp)
		now, err := Now()
		if err != nil {
			t.Fatal(err)
		}
		return abi.NowResponse{Now: now}, resp
	}},
	{name: "provider_request request and response", root: reflect.TypeFor[abi.ProviderRequest](), run: func(t *testing.T) (any, any) {
		want := filled[abi.ProviderRequest](t)
		resp := filled[abi.ProviderResponse](t)
		resp.Error = nil
		req := answerHost(t, resp)
		got, err := ProviderRequest(*want)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "ProviderResponse", got, resp)
		return decodeInto[abi.ProviderRequest](t, *req), want
	}},
}

// hostErrorCalls call every host function wrapper; each must return the response's
// error object whole.
var hostErrorCalls = map[string]func() error{
	abi.FuncLog:       func() error { return Log("info", "m", nil) },
	abi.FuncEventEmit: func() error { _, err := EmitEvent(abi.EmitRequest{Type: "t"}); return err },
	abi.FuncConfigGet: func() error { _, err := ConfigGet("K", ""); return err },
	abi.FuncKVGet:     func() error { _, _, err := KVGet("k"); return err },
	abi.FuncKVSet:     func() error { return KVSet("k", nil) },
	abi.FuncNow:       func() error { _, err := Now(); return err },
	abi.FuncProviderRequest: func() error {
		_, err := ProviderRequest(abi.ProviderRequest{ProfileRef: "p"})
		return err
	},
}

func TestEveryFieldRoundTrips(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			got, want := tt.run(t)
			sameJSON(t, tt.name, got, want)
		})
	}
	for fn, call := range hostErrorCalls {
		t.Run(fn+" error", func(t *testing.T) {
			want := filled[abi.Response](t)
			answerHost(t, want)
			var got *abi.Error
			if err := call(); !errors.As(err, &got) {
				t.Fatalf("%s returned %v, want the host's *abi.Error", fn, err)
			}
			sameJSON(t, "Response.Error", got, want.Error)
		})
	}
}

// TestRoundTripsCoverEveryDocument parses the abi package's document files and requires
// every exported struct type in them to be reached by a round trip above (directly or as
// a field), so a new document cannot be left out of TestEveryFieldRoundTrips either.
func TestRoundTripsCoverEveryDocument(t *testing.T) {
	reached := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		switch rt.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(rt.Elem())
		case reflect.Struct:
			if rt.PkgPath() != "routerd.net/routerd/abi" || reached[rt.Name()] {
				return
			}
			reached[rt.Name()] = true
			for i := range rt.NumField() {
				walk(rt.Field(i).Type)
			}
		}
	}
	for _, tt := range roundTrips {
		walk(tt.root)
	}
	// Responses are decoded in the cases above and in the error cases.
	for _, rt := range []reflect.Type{reflect.TypeFor[abi.Response](), reflect.TypeFor[abi.EmitResponse](),
		reflect.TypeFor[abi.ConfigGetResponse](), reflect.TypeFor[abi.KVGetResponse](), reflect.TypeFor[abi.ProviderResponse]()} {
		walk(rt)
	}
	fset := token.NewFileSet()
	for _, file := range []string{"../documents.go", "../hostfuncs.go", "../errors.go"} {
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			if _, isStruct := ts.Type.(*ast.StructType); isStruct && !reached[ts.Name.Name] {
				t.Errorf("abi.%s (%s) is not covered by TestEveryFieldRoundTrips: add a round trip through the guest codec", ts.Name.Name, strings.TrimPrefix(file, "../"))
			}
			return true
		})
	}
}
