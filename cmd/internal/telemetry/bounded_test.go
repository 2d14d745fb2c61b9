package telemetry

import (
	"fmt"
	"strings"
	"testing"
)

func TestUnboundedLabels(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("# TYPE routerd_x_total counter\n")
		for i := range n {
			fmt.Fprintf(&b, "routerd_x_total{peer=\"peer-%d\"} 1\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name string
		text string
		want string // substring of the single problem; "" for none
	}{
		{name: "bounded labels", text: "# TYPE routerd_eventd_receiver_reject_total counter\n" +
			`routerd_eventd_receiver_reject_total{group="lab",reason="bad_signature"} 1` + "\n" +
			"# TYPE routerd_x_seconds histogram\n" +
			`routerd_x_seconds_bucket{group="lab",le="0.005"} 1` + "\n" + `routerd_x_seconds_bucket{group="lab",le="+Inf"} 1` + "\n" +
			`routerd_x_seconds_sum{group="lab"} 0.001` + "\n" + `routerd_x_seconds_count{group="lab"} 1` + "\n"},
		{name: "event id", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{event="01JEX8D5CE1NQ2F3K7E9M0A1B2"} 1` + "\n", want: "ULID"},
		{name: "lower-case ulid", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{id="01jdx8d5ce1nq2f3k7e9m0a1b2"} 1` + "\n", want: "ULID"},
		{name: "uuid", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{id="6f1c2a4e-1b2c-4d5e-8f90-123456789abc"} 1` + "\n", want: "UUID"},
		{name: "ipv4", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{peer="10.88.60.9"} 1` + "\n", want: "IP address"},
		{name: "ipv6", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{peer="fd00::1"} 1` + "\n", want: "IP address"},
		{name: "address and port", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{peer="127.0.0.1:9471"} 1` + "\n", want: "address:port"},
		{name: "host and port", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{peer="router-a.lab:9471"} 1` + "\n", want: "host:port"},
		{name: "prefix", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{dst="10.88.60.9/32"} 1` + "\n", want: "prefix"},
		{name: "timestamp", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{at="2026-12-06T03:00:00Z"} 1` + "\n", want: "timestamp"},
		{name: "unix time", text: "# TYPE routerd_x_total counter\n" + `routerd_x_total{at="1796526000"} 1` + "\n", want: "long number"},
		{name: "too many values", text: many(11), want: "11 distinct values"},
		{name: "just enough values", text: many(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fams, err := ParseText(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			got := UnboundedLabels(fams, 10)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Fatalf("problems %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Fatalf("problems %q, want one with %q", got, tt.want)
			}
		})
	}
}
