package events

import "testing"

func TestTypeAllowed(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		typ     string
		want    bool
	}{
		{name: "exact", allowed: []string{"routerd.a.b"}, typ: "routerd.a.b", want: true},
		{name: "not listed", allowed: []string{"routerd.a.b"}, typ: "routerd.a.c", want: false},
		{name: "prefix wildcard", allowed: []string{"routerd.plugin.*"}, typ: "routerd.plugin.claims.x", want: true},
		{name: "wildcard needs the dot", allowed: []string{"routerd.plugin.*"}, typ: "routerd.pluginx", want: false},
		{name: "bare star is not a wildcard", allowed: []string{"*"}, typ: "anything", want: false},
		{name: "empty grant", allowed: nil, typ: "routerd.a", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TypeAllowed(tt.allowed, tt.typ); got != tt.want {
				t.Fatalf("TypeAllowed(%v, %q) = %v, want %v", tt.allowed, tt.typ, got, tt.want)
			}
		})
	}
}
