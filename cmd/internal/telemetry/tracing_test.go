package telemetry

import "testing"

func TestTracesURL(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "base URL", in: "http://127.0.0.1:4318", want: "http://127.0.0.1:4318/v1/traces"},
		{name: "base URL with slash", in: "https://collector:4318/", want: "https://collector:4318/v1/traces"},
		{name: "full path kept", in: "http://c:4318/otlp/v1/traces", want: "http://c:4318/otlp/v1/traces"},
		{name: "host:port only", in: "127.0.0.1:4318", wantErr: true},
		{name: "grpc scheme", in: "grpc://c:4317", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TracesURL(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("TracesURL(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestStartTracingOff: no endpoint, no provider (the global no-op one stays).
func TestStartTracingOff(t *testing.T) {
	tr, err := StartTracing("", "routerd", "a")
	if tr != nil || err != nil {
		t.Fatalf("StartTracing(\"\") = %v, %v; want nil, nil", tr, err)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
