package jsonvalid

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

func TestValid(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // substring of the error; "" for valid
		offset  int
	}{
		{in: `{}`},
		{in: ` [ ] `},
		{in: `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`},
		{in: `"plain string of more than eight bytes"`},
		{in: `"esc \" \\ \/ \b \f \n \r \t \u00e9 \uABCD end"`},
		{in: `"utf-8 é ✓ 😀 passes through"`},
		{in: `[0,-0,1.5,-2e10,3E+2,4e-3,123456789012345678901234567890]`},
		{in: "\t\r\n 7 \n"},
		{in: `[[[[[[[[[["deep"]]]]]]]]]]`},
		{in: ``, wantErr: "unexpected end", offset: 0},
		{in: `   `, wantErr: "unexpected end", offset: 3},
		{in: `{"a":1,}`, wantErr: "want a string key", offset: 7},
		{in: `[1,]`, wantErr: "want a value", offset: 3},
		{in: `[1 2]`, wantErr: `unexpected '2' after an element`, offset: 3},
		{in: `{"a" 1}`, wantErr: "want ':'", offset: 5},
		{in: `{1:2}`, wantErr: "want a string key", offset: 1},
		{in: `{"a":1]`, wantErr: `unexpected ']' after an element`, offset: 6},
		{in: `[1}`, wantErr: `unexpected '}' after an element`, offset: 2},
		{in: `[1`, wantErr: "unexpected end inside", offset: 2},
		{in: `"abc`, wantErr: "unterminated string", offset: 4},
		{in: `"a long string without its closing quote`, wantErr: "unterminated string"},
		{in: "\"tab\tinside\"", wantErr: "control character 0x09", offset: 4},
		{in: "\"0123456789\x01\"", wantErr: "control character 0x01", offset: 11},
		{in: `"bad \x escape"`, wantErr: `invalid escape \x`, offset: 5},
		{in: `"\u12G4"`, wantErr: "four hex digits", offset: 1},
		{in: `"\u12"`, wantErr: "unterminated string", offset: 1},
		{in: `"\u12" `, wantErr: "four hex digits", offset: 1},
		{in: `01`, wantErr: `unexpected '1' after the value`, offset: 1},
		{in: `-`, wantErr: "invalid number", offset: 0},
		{in: `1.`, wantErr: "no digits after '.'", offset: 0},
		{in: `1e`, wantErr: "no digits in the exponent", offset: 0},
		{in: `+1`, wantErr: "want a value", offset: 0},
		{in: `.5`, wantErr: "want a value", offset: 0},
		{in: `tru`, wantErr: "want true", offset: 0},
		{in: `nul`, wantErr: "want null", offset: 0},
		{in: `NaN`, wantErr: "want a value", offset: 0},
		{in: `{} {}`, wantErr: "after the value", offset: 3},
		{in: `// comment`, wantErr: "want a value", offset: 0},
		{in: strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)},
		{in: strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), wantErr: "nested deeper", offset: MaxDepth},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			err := Valid([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Valid: %v", err)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Valid = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.offset != 0 && se.Offset != tt.offset {
				t.Errorf("offset %d, want %d (%v)", se.Offset, tt.offset, err)
			}
			if json.Valid([]byte(tt.in)) && !strings.Contains(tt.wantErr, "nested deeper") {
				t.Error("encoding/json accepts it")
			}
		})
	}
}

// FuzzValid checks that Valid agrees with encoding/json.Valid (apart from nesting
// beyond MaxDepth, which Valid refuses and encoding/json accepts up to 10,000 levels).
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginResult","status":"ok"}`,
		`[1,-2.5e3,"a\"b\\c\u00e9",true,false,null,{},[]]`,
		"\"0123456789abcdef\x1f\"", `"\ud800"`, `{"a":}`, `[01]`, "\xff", `"\xff\xfe"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Valid(data)
		want := json.Valid(data)
		if err != nil && strings.Contains(err.Error(), "nested deeper") {
			return
		}
		if (err == nil) != want {
			t.Fatalf("Valid(%q) = %v, encoding/json.Valid = %v", data, err, want)
		}
	})
}

// BenchmarkValid compares Valid with fastjson and encoding/json on a plugin-like result.
func BenchmarkValid(b *testing.B) {
	var sb bytes.Buffer
	sb.WriteString(`{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginResult","status":"ok","resources":[`)
	for i := range 10 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"apiVersion":"net.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":"onprem-10-88-60-9","annotations":{"routerd.net/event-id":"01M846YGWNEMPYYZAZJ37M2CTC"}},"spec":{"address":"10.88.60.9","ownerSide":"onprem","ttl":"30m"}}`)
	}
	sb.WriteString(`]}`)
	data := sb.Bytes()
	b.Run("jsonvalid", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if Valid(data) != nil {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("fastjson", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if fastjson.ValidateBytes(data) != nil {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if !json.Valid(data) {
				b.Fatal("invalid")
			}
		}
	})
}
