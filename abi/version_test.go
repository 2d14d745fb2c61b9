package abi

import (
	"errors"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Version
		wantErr error
	}{
		{name: "manifest form", in: "routerd.plugin/v1", want: Version{1, 0}},
		{name: "request form", in: "routerd.plugin/v1.0", want: Version{1, 0}},
		{name: "newer minor", in: "routerd.plugin/v1.7", want: Version{1, 7}},
		{name: "spaces trimmed", in: "  routerd.plugin/v2.3 ", want: Version{2, 3}},
		{name: "major two", in: "routerd.plugin/v2", want: Version{2, 0}},
		{name: "empty", in: "", wantErr: ErrMalformedVersion},
		{name: "wrong family", in: "extism/v1", wantErr: ErrMalformedVersion},
		{name: "missing v", in: "routerd.plugin/1", wantErr: ErrMalformedVersion},
		{name: "no major", in: "routerd.plugin/v", wantErr: ErrMalformedVersion},
		{name: "empty minor", in: "routerd.plugin/v1.", wantErr: ErrMalformedVersion},
		{name: "leading zero", in: "routerd.plugin/v01", wantErr: ErrMalformedVersion},
		{name: "sign", in: "routerd.plugin/v-1", wantErr: ErrMalformedVersion},
		{name: "patch", in: "routerd.plugin/v1.0.1", wantErr: ErrMalformedVersion},
		{name: "huge", in: "routerd.plugin/v99999999999", wantErr: ErrMalformedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseVersion(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersion(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCheckCompatible(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "same", in: ManifestVersion},
		{name: "request constant", in: RequestVersion},
		{name: "newer minor accepted", in: "routerd.plugin/v1.9"},
		{name: "v2 refused", in: "routerd.plugin/v2", wantErr: ErrIncompatibleVersion},
		{name: "v0 refused", in: "routerd.plugin/v0.9", wantErr: ErrIncompatibleVersion},
		{name: "garbage", in: "v1", wantErr: ErrMalformedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckCompatible(tt.in)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("CheckCompatible(%q) = %v, want nil", tt.in, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckCompatible(%q) = %v, want %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestVersionStringRoundTrip(t *testing.T) {
	for _, v := range []Version{Current, {1, 12}, {3, 0}} {
		got, err := ParseVersion(v.String())
		if err != nil || got != v {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", v.String(), got, err, v)
		}
	}
	if Current.String() != RequestVersion {
		t.Errorf("Current.String() = %q, want %q", Current.String(), RequestVersion)
	}
}

func TestHookIDs(t *testing.T) {
	for _, h := range Hooks() {
		id, ok := h.ID()
		if !ok {
			t.Fatalf("%s has no id", h)
		}
		back, ok := id.Hook()
		if !ok || back != h || id.String() != string(h) {
			t.Errorf("hook %s -> id %d -> %q/%q", h, id, back, id.String())
		}
	}
	if _, ok := HookIDManifest.Hook(); ok {
		t.Error("HookIDManifest must not map to a hook")
	}
	if HookIDManifest.String() != ExportManifest {
		t.Errorf("HookIDManifest.String() = %q", HookIDManifest.String())
	}
	if Hook("start").Valid() || HookID(9).String() != "HookID(9)" {
		t.Error("unknown hooks must be invalid")
	}
}

func TestCallResult(t *testing.T) {
	tests := []struct {
		name   string
		ptr, n uint32
		failed bool
		wantP  uint32
	}{
		{name: "ok", ptr: 0x10000, n: 3072, wantP: 0x10000},
		{name: "ok largest pointer", ptr: MaxCallPointer, n: 1, wantP: MaxCallPointer},
		{name: "bit 31 dropped", ptr: 0x80000010, n: 1, wantP: 0x10},
		{name: "empty", ptr: 0, n: 0, wantP: 0},
		{name: "error", ptr: 0x2345, n: 17, failed: true, wantP: 0x2345},
		{name: "error masks bit 31", ptr: 0x80000010, n: 5, failed: true, wantP: 0x10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := EncodeCallResult(tt.ptr, tt.n, tt.failed)
			if tt.failed != (r&CallErrorBit != 0) {
				t.Fatalf("error bit = %v, want %v", r&CallErrorBit != 0, tt.failed)
			}
			p, n, f := DecodeCallResult(r)
			if p != tt.wantP || n != tt.n || f != tt.failed {
				t.Fatalf("DecodeCallResult(%#x) = %#x, %d, %v", r, p, n, f)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	for _, fn := range HostFunctions() {
		c, ok := HostFunctionCapability(fn)
		if !ok || !c.Known() {
			t.Errorf("host function %s has no known capability (%q)", fn, c)
		}
	}
	if _, ok := HostFunctionCapability("exec"); ok {
		t.Error("unknown host function must have no capability")
	}
	if Capability("root").Known() {
		t.Error("unknown capability reported known")
	}
	e := NewError(ErrCodeCapabilityDenied, "event_emit: type x not granted")
	if !errors.Is(e, &Error{Code: ErrCodeCapabilityDenied}) || errors.Is(e, &Error{Code: ErrCodeInternal}) {
		t.Error("Error.Is must compare codes")
	}
	if e.Error() != "capability_denied: event_emit: type x not granted" {
		t.Errorf("Error() = %q", e.Error())
	}
}
