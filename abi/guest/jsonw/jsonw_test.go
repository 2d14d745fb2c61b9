package jsonw

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var stringCases = []struct {
	name string
	in   string
}{
	{name: "empty", in: ""},
	{name: "plain", in: "onprem-10-88-60-9"},
	{name: "quote and backslash", in: `a"b\c`},
	{name: "controls", in: "\x00\x01\x1f\n\r\t\b\f"},
	{name: "html", in: "<script>&amp;</script>"},
	{name: "unicode", in: "日本語 ünïcödé 🚀"},
	{name: "line separators", in: "a\u2028b\u2029c"},
	{name: "invalid utf8", in: "a\xffb\xc3"},
	{name: "del", in: "\x7f"},
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, tt := range stringCases {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendString(nil, tt.in)
			want, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendString(%q) = %s, encoding/json = %s", tt.in, got, want)
			}
		})
	}
}

// FuzzAppendString checks the escaping against encoding/json: our output must be byte
// for byte what json.Marshal produces, and decode back to the same string.
func FuzzAppendString(f *testing.F) {
	for _, tt := range stringCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString([]byte("x"), s)[1:]
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json = %s", s, got, want)
		}
		var back, wantBack string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("output %s does not decode: %v", got, err)
		}
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("decoded %q, want %q", back, wantBack)
		}
	})
}

func TestWriter(t *testing.T) {
	ts := time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC)
	tests := []struct {
		name  string
		write func(w *Writer)
		want  any
	}{
		{name: "empty object", write: func(w *Writer) { w.BeginObject(); w.EndObject() }, want: map[string]any{}},
		{name: "nested", write: func(w *Writer) {
			w.BeginObject()
			w.StringField("a", "x")
			w.Key("b")
			w.BeginArray()
			w.Int(1)
			w.Bool(true)
			w.Null()
			w.BeginObject()
			w.EndObject()
			w.Raw([]byte(`{"r":[1]}`))
			w.EndArray()
			w.StringFieldOmitEmpty("skip", "")
			w.StringMapFieldOmitEmpty("m", map[string]string{"z": "1", "a": "2"})
			w.StringMapFieldOmitEmpty("none", nil)
			w.BoolField("f", false)
			w.Key("s")
			w.Strings([]string{"p", "q"})
			w.Key("t")
			w.Time(ts)
			w.EndObject()
		}, want: map[string]any{
			"a": "x", "b": []any{1.0, true, nil, map[string]any{}, map[string]any{"r": []any{1.0}}},
			"m": map[string]any{"a": "2", "z": "1"}, "f": false, "s": []any{"p", "q"},
			"t": "2026-11-23T10:00:00.000000005Z",
		}},
		{name: "array of strings", write: func(w *Writer) { w.Strings(nil) }, want: []any{}},
		{name: "raw empty is null", write: func(w *Writer) { w.Raw(nil) }, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter(make([]byte, 0, 8))
			tt.write(w)
			var got any
			if err := json.Unmarshal(w.Bytes(), &got); err != nil {
				t.Fatalf("invalid JSON %s: %v", w.Bytes(), err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v\njson %s", got, tt.want, w.Bytes())
			}
			w.Reset()
			if len(w.Bytes()) != 0 {
				t.Fatal("Reset did not empty the buffer")
			}
		})
	}
}

func TestNewWriterAppends(t *testing.T) {
	w := NewWriter([]byte(`[1,`))
	w.BeginObject()
	w.EndObject()
	if got := string(w.Bytes()); got != `[1,{}` {
		t.Fatalf("got %s, want the prefix kept", got)
	}
}

func TestStringMapSorted(t *testing.T) {
	var w Writer
	w.StringMap(map[string]string{"b": "1", "a": "2", "c": "3"})
	if got := string(w.Bytes()); got != `{"a":"2","b":"1","c":"3"}` {
		t.Fatalf("got %s", got)
	}
	if strings.Contains(string(AppendString(nil, "<")), "<") {
		t.Fatal("< must be escaped")
	}
}

func TestDeepNesting(t *testing.T) {
	for _, depth := range []int{1, 63, 64, 65, 200} {
		w := Wrap(nil)
		w.BeginArray()
		for i := 0; i < depth; i++ {
			w.BeginArray()
			w.Int(int64(i))
		}
		for i := 0; i < depth; i++ {
			w.EndArray()
			w.Int(-1) // a sibling after each closed array
		}
		w.EndArray()
		var v any
		if err := json.Unmarshal(w.Bytes(), &v); err != nil {
			t.Fatalf("depth %d: %v\n%s", depth, err, w.Bytes())
		}
	}
}
