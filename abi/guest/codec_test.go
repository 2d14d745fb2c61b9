package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"routerd.net/routerd/abi"
)

// The guest codec must agree with encoding/json on the abi types: decoding the same bytes
// gives the same values, and what it encodes decodes with encoding/json to the original.

var requestDocs = []struct {
	name string
	in   string
	code abi.ErrorCode // expected error code; "" means success
}{
	{name: "full", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","batchID":"b",
"spec":{"trigger":{"type":"EventSubscription","topic":"t"},"now":"2026-11-23T10:00:00.123456789+09:00","dryRun":true,
"events":[{"id":"1","group":"g","sourceNode":"n","type":"x","subject":"s","dedupeKey":"d","payload":{"a":"1","b":"\u00e9\n\"q\""},"observedAt":"o","expiresAt":"e"},{"id":"2","payload":{}}],
"context":{"resources":[{"kind":"A","spec":{"x":[1,2.5,true,null,"s"]}},{"kind":"B"}]},
"actionPlan":{"name":"p","provider":"aws","action":"a","target":{"t":"1"},"providerRef":"r","mode":"m","description":"d","riskLevel":"low",
"idempotencyKey":"k","parameters":{"p":"v"},"preconditions":[{"name":"c","expect":"e","detail":"d","target":"t"}],"expectedEffects":["x","y"],
"undo":{"action":"u","parameters":{"q":"w"}}}}}`},
	{name: "minimal", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1","spec":{"trigger":{"type":"Plan"},"context":{}}}`},
	{name: "no spec", in: `{"abi":"routerd.plugin/v1.0"}`},
	{name: "nulls", in: `{"abi":"routerd.plugin/v1.0","batchID":null,"spec":{"events":null,"context":null,"actionPlan":null,"now":null}}`},
	{name: "empty arrays", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[],"context":{"resources":[]},"actionPlan":{"name":"p","preconditions":[],"expectedEffects":[],"target":{}}}}`},
	{name: "unknown fields ignored", in: `{"abi":"routerd.plugin/v1.9","future":{"deep":[{}]},"spec":{"future":1,"events":[{"id":"x","future":[]}]}}`},
	{name: "abi v2", in: `{"abi":"routerd.plugin/v2.0"}`, code: abi.ErrCodeABIMismatch},
	{name: "abi missing", in: `{"spec":{}}`, code: abi.ErrCodeABIMismatch},
	{name: "truncated", in: `{"abi":"routerd.plugin/v1.0","spec":{`, code: abi.ErrCodeInvalidArgument},
	{name: "array", in: `[1]`, code: abi.ErrCodeInvalidArgument},
	{name: "payload number", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a":1}}]}}`, code: abi.ErrCodeInvalidArgument},
	{name: "events object", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":{}}}`, code: abi.ErrCodeInvalidArgument},
	{name: "event not object", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":["x"]}}`, code: abi.ErrCodeInvalidArgument},
	{name: "bad time", in: `{"abi":"routerd.plugin/v1.0","spec":{"now":"noon"}}`, code: abi.ErrCodeInvalidArgument},
	{name: "dryRun string", in: `{"abi":"routerd.plugin/v1.0","spec":{"dryRun":"yes"}}`, code: abi.ErrCodeInvalidArgument},
	{name: "id number", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":5}]}}`, code: abi.ErrCodeInvalidArgument},
	{name: "trailing garbage", in: `{"abi":"routerd.plugin/v1.0"} x`, code: abi.ErrCodeInvalidArgument},
}

// stdDecode decodes with encoding/json without the apiVersion/kind checks of
// abi.DecodeRequest (the guest does not insist on them).
func stdDecode(data []byte) (*abi.Request, error) {
	var r abi.Request
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if _, err := abi.CheckCompatible(r.ABI); err != nil {
		return nil, err
	}
	return &r, nil
}

// normalize compacts raw resources so both decoders can be compared.
func normalize(t testing.TB, r *abi.Request) {
	for i, res := range r.Spec.Context.Resources {
		var b bytes.Buffer
		if err := json.Compact(&b, res); err != nil {
			t.Fatalf("resource %d: %v", i, err)
		}
		r.Spec.Context.Resources[i] = b.Bytes()
	}
}

func TestDecodeRequestMatchesEncodingJSON(t *testing.T) {
	for _, tt := range requestDocs {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.in))
			if tt.code != "" {
				var e *abi.Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("error = %v, want code %s", err, tt.code)
				}
				if _, err := stdDecode([]byte(tt.in)); err == nil {
					t.Fatalf("encoding/json accepts what the guest refuses")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := stdDecode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			normalize(t, got)
			normalize(t, want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("guest decode differs from encoding/json:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func sampleResult() *abi.Result {
	return &abi.Result{Status: abi.ResultStatus{
		ObservedAt: time.Date(2026, 11, 23, 10, 0, 0, 120, time.FixedZone("JST", 9*3600)),
		TTL:        "30m",
		Resources:  []json.RawMessage{json.RawMessage(`{"kind":"RemoteAddressClaim","metadata":{"name":"a"}}`), json.RawMessage(`{}`)},
		Directives: []abi.Directive{{Op: "delete", Target: abi.ObjectRef{APIVersion: "v", Kind: "K", Name: "n<>&"}, Reason: "gone"}},
		ActionPlans: []abi.ActionPlan{{Name: "p", Provider: "aws", Action: "assign", Target: map[string]string{"nic": "eni", "a": "b"},
			ProviderRef: "r", Mode: "dry-run", Description: "d\u2028", RiskLevel: "low", IdempotencyKey: "k",
			Parameters: map[string]string{"x": "y"}, Preconditions: []abi.Precondition{{Name: "c", Expect: "e", Detail: "d", Target: "t"}, {Name: "only"}},
			ExpectedEffects: []string{"one", "two"}, Undo: &abi.ActionUndo{Action: "u", Parameters: map[string]string{"k": "v"}}},
			{Name: "bare", Provider: "oci", Action: "noop"}},
		ActionResults: []abi.ActionResult{{Name: "p", IdempotencyKey: "k", Outcome: abi.ActionFailed, Message: "m", Attributes: map[string]string{"id": "1"}}},
		Events:        []abi.ResultEvent{{Type: "t", Message: "m\x00", Attributes: map[string]string{"a": "b"}}, {Type: "u", Message: ""}},
	}}
}

func TestAppendResultMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		in   *abi.Result
	}{
		{name: "everything", in: sampleResult()},
		{name: "empty", in: &abi.Result{}},
		{name: "ttl only", in: &abi.Result{Status: abi.ResultStatus{TTL: "5m"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := AppendResult(nil, tt.in)
			got, err := abi.DecodeResult(out)
			if err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			want := *tt.in
			want.APIVersion, want.Kind = abi.PluginAPIVersion, abi.KindPluginResult
			if !got.Status.ObservedAt.Equal(want.Status.ObservedAt) {
				t.Fatalf("observedAt %v, want %v", got.Status.ObservedAt, want.Status.ObservedAt)
			}
			got.Status.ObservedAt, want.Status.ObservedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v\njson %s", *got, want, out)
			}
			// Same JSON value as encoding/json produces.
			std, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			_ = json.Unmarshal(AppendResult(nil, &want), &a)
			_ = json.Unmarshal(std, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("guest JSON %v\nencoding/json %v", a, b)
			}
		})
	}
}

func TestAppendManifest(t *testing.T) {
	m := abi.Manifest{Name: "n", Version: "1", ABI: abi.ManifestVersion, Hooks: []abi.Hook{abi.HookPlan},
		Capabilities: []abi.Capability{abi.CapLog}, Description: "d"}
	got, err := abi.DecodeManifest(AppendManifest(nil, &m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, m) {
		t.Fatalf("got %+v, want %+v", *got, m)
	}
}

func TestHostResponses(t *testing.T) {
	var d decoder
	type got struct {
		id     string
		found  bool
		value  []byte
		status int
		now    time.Time
		res    int
		hdr    map[string]string
	}
	field := func(g *got) func(s *scanner, key []byte) (bool, error) {
		return func(s *scanner, key []byte) (known bool, err error) {
			switch string(key) {
			case "id":
				g.id, err = s.str("id")
			case "found":
				g.found, err = s.boolValue("found")
			case "value":
				g.value, err = s.bytesValue("value")
			case "statusCode":
				g.status, err = s.intValue("statusCode")
			case "now":
				g.now, err = s.timeValue("now")
			case "resources":
				var r []json.RawMessage
				r, err = s.rawList("resources")
				g.res = len(r)
			case "headers":
				g.hdr, err = s.stringMap(func() string { return "headers" })
			default:
				return false, nil
			}
			return true, err
		}
	}
	tests := []struct {
		name     string
		in       string
		want     got
		wantCode abi.ErrorCode
	}{
		{name: "id", in: `{"id":"01JX"}`, want: got{id: "01JX"}},
		{name: "kv", in: `{"found":true,"value":"aGkAdGhlcmU="}`, want: got{found: true, value: []byte("hi\x00there")}},
		{name: "provider", in: `{"statusCode":200,"headers":{"a":"b"},"body":null,"extra":[1,{"x":null}]}`, want: got{status: 200, hdr: map[string]string{"a": "b"}}},
		{name: "now", in: ` {"now":"2030-01-02T03:04:05Z"} `, want: got{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "resources", in: `{"resources":[{"kind":"A"},{"kind":"B"}]}`, want: got{res: 2}},
		{name: "null error", in: `{"error":null,"id":"x"}`, want: got{id: "x"}},
		{name: "denied", in: `{"error":{"code":"capability_denied","message":"no"}}`, wantCode: abi.ErrCodeCapabilityDenied},
		{name: "error without code", in: `{"error":{"message":"?"}}`, wantCode: abi.ErrCodeInternal},
		{name: "garbage", in: `nope`, wantCode: abi.ErrCodeInternal},
		{name: "not object", in: `[]`, wantCode: abi.ErrCodeInternal},
		{name: "trailing data", in: `{} {}`, wantCode: abi.ErrCodeInternal},
		{name: "wrong type", in: `{"found":"yes"}`, wantCode: abi.ErrCodeInternal},
		{name: "bad base64", in: `{"value":"***"}`, wantCode: abi.ErrCodeInternal},
		{name: "bad time", in: `{"now":"soon"}`, wantCode: abi.ErrCodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g got
			err := d.response("f", []byte(tt.in), field(&g))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(g, tt.want) {
					t.Fatalf("got %+v, want %+v", g, tt.want)
				}
				return
			}
			if !errors.Is(err, &abi.Error{Code: tt.wantCode}) {
				t.Fatalf("error = %v, want code %s", err, tt.wantCode)
			}
		})
	}
	// Host-function request bodies decode with encoding/json to what was sent.
	var emit abi.EmitRequest
	in := abi.EmitRequest{Type: "t", Subject: "s", Payload: map[string]string{"a": "\"b\""}, TTL: "1m"}
	if err := json.Unmarshal(encodeEmit(&in), &emit); err != nil || !reflect.DeepEqual(emit, in) {
		t.Fatalf("emit body: %+v, %v", emit, err)
	}
	var kv abi.KVSetRequest
	if err := json.Unmarshal(encodeKV("k", []byte{0, 1, 255}, true), &kv); err != nil || kv.Key != "k" || !bytes.Equal(kv.Value, []byte{0, 1, 255}) {
		t.Fatalf("kv body: %+v, %v", kv, err)
	}
	var pr abi.ProviderRequest
	pin := abi.ProviderRequest{ProfileRef: "p", Method: "GET", Path: "/20160918/privateIps", Query: "vnicId=a&ipAddress=b", URL: "https://x/", Headers: map[string]string{"h": "v"}, Body: []byte("b")}
	if err := json.Unmarshal(encodeProvider(&pin), &pr); err != nil || !reflect.DeepEqual(pr, pin) {
		t.Fatalf("provider body: %+v, %v", pr, err)
	}
	var lr abi.LogRequest
	lin := abi.LogRequest{Level: "warn", Message: "m", Attrs: map[string]string{"a": "b"}}
	if err := json.Unmarshal(encodeLog(&lin), &lr); err != nil || !reflect.DeepEqual(lr, lin) {
		t.Fatalf("log body: %+v, %v", lr, err)
	}
	var cg abi.ConfigGetRequest
	if err := json.Unmarshal(encodeConfigGet(&abi.ConfigGetRequest{Kind: "K", Name: "n"}), &cg); err != nil || cg.Kind != "K" || cg.Name != "n" {
		t.Fatalf("config_get body: %+v, %v", cg, err)
	}
}

func TestHostFunctionsUnsupportedNatively(t *testing.T) {
	_, err := Now()
	if !errors.Is(err, &abi.Error{Code: abi.ErrCodeUnsupported}) {
		t.Fatalf("Now() natively = %v, want unsupported", err)
	}
}

// FuzzDecodeRequest checks the guest decoder against encoding/json: it must never panic,
// and whatever encoding/json accepts, re-encoded the way the host sends it, must decode in
// the guest to exactly the same value. (On raw input the two legitimately differ: the
// guest matches keys case-sensitively and keeps the first of duplicate keys.)
func FuzzDecodeRequest(f *testing.F) {
	for _, tt := range requestDocs {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkViewMatches(t, data)
		_, gerr := DecodeRequest(data)
		if gerr == nil && !json.Valid(data) {
			t.Fatalf("guest accepts invalid JSON %q", data)
		}
		want, err := stdDecode(data)
		if err != nil {
			return
		}
		// encoding/json matches member names case-insensitively ("ABI" sets abi); the
		// guest only takes exact names, as the host sends them.
		if gerr != nil && !errors.Is(gerr, &abi.Error{Code: abi.ErrCodeABIMismatch}) {
			t.Fatalf("guest refuses %q, which encoding/json accepts: %v", data, gerr)
		}
		canonical, err := json.Marshal(want)
		if err != nil {
			return // e.g. a time outside what encoding/json can write
		}
		if want, err = stdDecode(canonical); err != nil {
			t.Fatalf("encoding/json refuses its own %s: %v", canonical, err)
		}
		got, err := DecodeRequest(canonical)
		if err != nil {
			t.Fatalf("guest refuses host-encoded %s: %v", canonical, err)
		}
		normalize(t, got)
		normalize(t, want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoders disagree on %s:\n guest %+v\n  std  %+v", canonical, got, want)
		}
	})
}

// FuzzHostResponse feeds arbitrary bytes to the host-response decoder: it must never
// panic and never accept invalid JSON.
func FuzzHostResponse(f *testing.F) {
	for _, s := range []string{`{"id":"x"}`, `{"found":true,"value":"aGk="}`, `{"error":{"code":"capability_denied","message":"no"}}`,
		`{"statusCode":200,"headers":{"a":"b"}}`, `{"resources":[{"a":[1,2,{"b":null}]}]}`, `{"now":"2030-01-02T03:04:05Z"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d decoder
		err := d.response("f", data, func(s *scanner, key []byte) (bool, error) {
			switch string(key) {
			case "id":
				_, err := s.str("id")
				return true, err
			case "value":
				_, err := s.bytesValue("value")
				return true, err
			case "statusCode":
				_, err := s.intValue("statusCode")
				return true, err
			case "resources":
				_, err := s.rawList("resources")
				return true, err
			case "headers":
				_, err := s.stringMap(func() string { return "headers" })
				return true, err
			}
			return false, nil
		})
		if (err == nil || errors.Is(err, &abi.Error{Code: abi.ErrCodeCapabilityDenied})) && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}

// checkViewMatches decodes data as a view and as a typed request: both must fail with the
// same code, or both succeed with the same request.
func checkViewMatches(t *testing.T, data []byte) {
	t.Helper()
	want, werr := DecodeRequest(data)
	v, err := DecodeRequestView(data)
	if werr != nil || err != nil {
		var we, ge *abi.Error
		if !errors.As(werr, &we) || !errors.As(err, &ge) || we.Code != ge.Code {
			t.Fatalf("view error %v, typed error %v", err, werr)
		}
		return
	}
	for i := range v.Events {
		if v.Events[i].Event.Payload != nil {
			t.Fatalf("event %d of the view has a payload map", i)
		}
	}
	got := v.ToRequest()
	normalize(t, got)
	normalize(t, want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("view differs from the typed decode:\n view  %+v\n typed %+v", got, want)
	}
}

func TestDecodeRequestViewMatchesTyped(t *testing.T) {
	docs := append([]struct {
		name string
		in   string
		code abi.ErrorCode
	}{
		{name: "repeated payload and events", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"x"}],"events":[{"payload":{"a":"1"},"payload":{"b":"2","b":"3"}},{"payload":null},{}]}}`},
		{name: "escaped payload", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"k\"ey":"v\u00e9","n":null}}]}}`},
		// Compact events take the one-function path; anything unusual falls back.
		{name: "compact events", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1","group":"g","sourceNode":"n","type":"t","subject":"s","dedupeKey":"d","payload":{"address":"10.0.0.1/32","domain":""},"observedAt":"o","expiresAt":"e"},{},{"payload":{}},{"id":"","payload":{"a":"1"},"payload":{"b":"2"}}]}}`},
		{name: "compact event then escaped", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1"},{"id":"\u0041","payload":{"a":"\n"}}]}}`},
		{name: "near-miss member names", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"sourceNodX":"1","dedupeKex":"2","observedAx":"3","expiresAx":"4","i":"5","idd":"6","Type":"7","payloads":{"a":"b"},"subjec":"8"}]}}`},
		{name: "member names at the end", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1"},{"type":"2"},{"group":"3"}]}}`},
		{name: "null member", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":null,"payload":null}]}}`},
		{name: "spaces in event", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{ "id" : "1" , "payload" : { "a" : "b" } }]}}`},
		{name: "unknown member", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1","x":[1,{"y":"z"}],"payload":{"a":"b"}}]}}`},
		{name: "payload number", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a":"1","b":2}}]}}`, code: abi.ErrCodeInvalidArgument},
		{name: "trailing comma", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1",}]}}`, code: abi.ErrCodeInvalidArgument},
		{name: "payload trailing comma", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a":"1",}}]}}`, code: abi.ErrCodeInvalidArgument},
		{name: "control character", in: "{\"abi\":\"routerd.plugin/v1.0\",\"spec\":{\"events\":[{\"id\":\"a\tb\"}]}}", code: abi.ErrCodeInvalidArgument},
		{name: "truncated event", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1","payload":{"a":"1"`, code: abi.ErrCodeInvalidArgument},
		{name: "truncated after comma", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"1",`, code: abi.ErrCodeInvalidArgument},
		{name: "truncated after payload comma", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a":"1",`, code: abi.ErrCodeInvalidArgument},
		{name: "truncated in name", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a`, code: abi.ErrCodeInvalidArgument},
		{name: "truncated after brace", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{`, code: abi.ErrCodeInvalidArgument},
		{name: "invalid utf-8 passes through", in: "{\"abi\":\"routerd.plugin/v1.0\",\"spec\":{\"events\":[{\"id\":\"\xff\",\"payload\":{\"\xfe\":\"x\"}}]}}"},
	}, requestDocs...)
	for _, tt := range docs {
		t.Run(tt.name, func(t *testing.T) {
			checkViewMatches(t, []byte(tt.in))
		})
	}
}

func TestEventViewPayload(t *testing.T) {
	v, err := DecodeRequestView([]byte(`{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"a":"1","b":"2","a":"3"}},{"id":"e"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		event  int
		key    string
		want   string
		wantOK bool
	}{
		{name: "last of a repeated key", event: 0, key: "a", want: "3", wantOK: true},
		{name: "present", event: 0, key: "b", want: "2", wantOK: true},
		{name: "absent", event: 0, key: "c"},
		{name: "no payload", event: 1, key: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := v.Events[tt.event].Payload(tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("Payload(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if n := len(v.Events[0].PayloadFields()); n != 3 {
		t.Fatalf("%d payload fields, want 3 (duplicates kept)", n)
	}
}

// TestViewHandlerDispatch runs a view handler through Invoke, the exports' dispatch path.
func TestViewHandlerDispatch(t *testing.T) {
	defer func(saved [4]ViewHandler) { registry.view = saved }(registry.view)
	registry.view[abi.HookIDExecute] = func(req *RequestView) (*abi.Result, error) {
		if len(req.Events) != 1 {
			return nil, abi.NewError(abi.ErrCodeInvalidArgument, "want one event")
		}
		v, _ := req.Events[0].Payload("address")
		return &abi.Result{Status: abi.ResultStatus{TTL: v}}, nil
	}
	out, err := Invoke(abi.HookIDExecute, []byte(`{"abi":"routerd.plugin/v1.0","spec":{"events":[{"payload":{"address":"10.0.0.1"}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginResult","status":{"ttl":"10.0.0.1"}}`; string(out) != want {
		t.Fatalf("output %s, want %s", out, want)
	}
	if _, err := Invoke(abi.HookIDExecute, []byte(`{"abi":"routerd.plugin/v1.0","spec":{}}`)); !errors.Is(err, &abi.Error{Code: abi.ErrCodeInvalidArgument}) {
		t.Fatalf("handler error = %v, want invalid_argument", err)
	}
	if _, err := Invoke(abi.HookIDExecute, []byte(`{"abi":"routerd.plugin/v2"}`)); !errors.Is(err, &abi.Error{Code: abi.ErrCodeABIMismatch}) {
		t.Fatalf("abi v2 error = %v, want abi_mismatch", err)
	}
}

// TestEventFastPathTaken checks that compact events (as the host writes them) take the
// one-function path, whose strings point into the request instead of the arena.
func TestEventFastPathTaken(t *testing.T) {
	tests := []struct {
		name string
		in   string
		fast bool
	}{
		{name: "compact", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"abc","payload":{"k":"v"}}]}}`, fast: true},
		{name: "every member", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"abc","group":"g","sourceNode":"n","type":"t","subject":"s","dedupeKey":"d","payload":{},"observedAt":"o","expiresAt":"e"}]}}`, fast: true},
		{name: "unknown member", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"abc","idx":"1"}]}}`},
		{name: "escaped", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id":"abc","payload":{"k":"\u0076"}}]}}`},
		{name: "spaces", in: `{"abi":"routerd.plugin/v1.0","spec":{"events":[{"id": "abc"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.in)
			v, err := DecodeRequestView(data)
			if err != nil {
				t.Fatal(err)
			}
			p := uintptr(unsafe.Pointer(unsafe.StringData(v.Events[0].Event.ID)))
			start := uintptr(unsafe.Pointer(&data[0]))
			if inInput := p >= start && p < start+uintptr(len(data)); inInput != tt.fast {
				t.Fatalf("id points into the input: %v, want %v", inInput, tt.fast)
			}
		})
	}
}

func TestNextSpecial(t *testing.T) {
	naive := func(data []byte, i int) int {
		for i < len(data) && data[i] != '"' && data[i] != '\\' && data[i] >= 0x20 {
			i++
		}
		return i
	}
	tests := []struct {
		name    string
		special byte // placed at every offset of every length, after plain bytes
		filler  byte
	}{
		{name: "quote", special: '"', filler: 'a'},
		{name: "backslash", special: '\\', filler: 'z'},
		{name: "control", special: '\n', filler: '~'},
		{name: "nul after high bytes", special: 0, filler: 0xff},
		{name: "unit separator", special: 0x1f, filler: ' '},
		{name: "borrow neighbours", special: '"', filler: '#'}, // '#' = '"'+1
		{name: "none", special: 'x', filler: 'x'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n := 0; n <= 24; n++ {
				for at := 0; at < n; at++ {
					data := bytes.Repeat([]byte{tt.filler}, n)
					data[at] = tt.special
					if n > at+1 {
						data[n-1] = '\\' // a later special must not be found first
					}
					for from := 0; from <= n; from++ {
						if got, want := nextSpecial(data, from), naive(data, from); got != want {
							t.Fatalf("nextSpecial(%q, %d) = %d, want %d", data, from, got, want)
						}
					}
				}
			}
		})
	}
}

// FuzzQuickHostResponses requires the direct decoders of now's and kv_get's usual
// responses to agree with the general decoder on everything they accept.
func FuzzQuickHostResponses(f *testing.F) {
	for _, s := range []string{`{"now":"2030-01-02T03:04:05Z"}`, `{"now":"2026-12-06T02:35:10.123456789+09:00"}`,
		`{"found":false}`, `{"found":true}`, `{"found":true,"value":"aGk="}`, `{"found":true,"value":"aGk=","error":{"code":"x"}}`,
		`{"now":"2030-01-02T03:04:05Z","error":{"code":"internal"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, ok := quickNow(data); ok {
			want, err := decodeNowGeneral(data)
			if err != nil || !got.Equal(want) {
				t.Fatalf("quickNow(%q) = %v; general decoder: %v, %v", data, got, want, err)
			}
		}
		if v, found, ok := quickKVGet(data); ok {
			wv, wfound, err := decodeKVGetGeneral(data)
			if err != nil || found != wfound || !bytes.Equal(v, wv) {
				t.Fatalf("quickKVGet(%q) = %q, %v; general decoder: %q, %v, %v", data, v, found, wv, wfound, err)
			}
		}
	})
}

// TestParseUTC compares the guest's parser of the host's clock format with time.Parse.
func TestParseUTC(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool // parseUTC handles it (otherwise time.Parse does)
	}{
		{name: "whole second", in: "2026-11-23T10:00:00Z", ok: true},
		{name: "nanoseconds", in: "2026-12-06T02:35:10.123456789Z", ok: true},
		{name: "one digit", in: "2026-12-06T02:35:10.1Z", ok: true},
		{name: "leap day", in: "2024-02-29T23:59:59Z", ok: true},
		{name: "century leap day", in: "2000-02-29T00:00:00Z", ok: true},
		{name: "year zero", in: "0000-01-01T00:00:00Z", ok: true},
		{name: "before 1970", in: "1969-12-31T23:59:59.999Z", ok: true},
		{name: "year 9999", in: "9999-12-31T23:59:59.999999999Z", ok: true},
		{name: "no leap day", in: "2023-02-29T00:00:00Z"},
		{name: "no leap century", in: "1900-02-29T00:00:00Z"},
		{name: "day 31 of a 30-day month", in: "2026-04-31T00:00:00Z"},
		{name: "hour 24", in: "2026-01-01T24:00:00Z"},
		{name: "second 60", in: "2026-01-01T00:00:60Z"},
		{name: "ten digits", in: "2026-01-01T00:00:00.1234567890Z"},
		{name: "empty fraction", in: "2026-01-01T00:00:00.Z"},
		{name: "offset", in: "2026-01-01T09:00:00+09:00"},
		{name: "comma", in: "2026-01-01T00:00:00,5Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseUTC([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("parseUTC(%q) ok=%v, want %v", tt.in, ok, tt.ok)
			}
			if !ok {
				return
			}
			want, err := time.Parse(time.RFC3339Nano, tt.in)
			if err != nil || !got.Equal(want) || got.Location() != time.UTC {
				t.Fatalf("parseUTC(%q) = %v; time.Parse: %v, %v", tt.in, got, want, err)
			}
		})
	}
}

// FuzzParseUTC requires parseUTC to agree with time.Parse on everything it accepts.
func FuzzParseUTC(f *testing.F) {
	for _, s := range []string{"2026-11-23T10:00:00Z", "2024-02-29T23:59:59.5Z", "0000-01-01T00:00:00Z", "2023-02-29T00:00:00Z"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseUTC(b)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil || !got.Equal(want) {
			t.Fatalf("parseUTC(%q) = %v; time.Parse: %v, %v", b, got, want, err)
		}
	})
}
