package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReceiverCutsOffSlowRequests sends the start of a request over real TCP and then
// nothing more: the receiver must give up after its read timeout, not after a minute.
func TestReceiverCutsOffSlowRequests(t *testing.T) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	tests := []struct {
		name string
		// send is written at once; the client then sends nothing more and reads.
		send string
		// wantPrefix is the start of what the receiver answers ("" when it just closes).
		wantPrefix string
		wantReason Reason
	}{
		{
			name:       "headers never finish",
			send:       "POST /v1/events HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n",
			wantPrefix: "",
		},
		{
			name: "body never finishes",
			send: "POST /v1/events HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n" +
				HeaderTimestamp + ": " + ts + "\r\n\r\n" + `{"id":"e1",`,
			wantPrefix: "HTTP/1.1 400",
			wantReason: ReasonReadBody,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, "a")
			cfg := GroupConfig{Group: "lab", LocalNode: "a", ListenAddress: "127.0.0.1:0",
				ReceiveKeys: []Key{{Secret: secretGroup, Nodes: []string{"b"}}}}
			d, err := NewDaemon(cfg, st, DaemonOptions{ReadTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })

			conn, err := net.Dial("tcp", d.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// The bound of this test: far above the receiver's timeout, far below the
			// minute a slow peer could hold a connection before.
			if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, tt.send); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(conn)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("receiver still held the connection after 5s (read %q)", got)
			}
			if !strings.HasPrefix(string(got), tt.wantPrefix) || (tt.wantPrefix == "" && len(got) != 0) {
				t.Errorf("receiver answered %q, want %q…", got, tt.wantPrefix)
			}
			if tt.wantReason != "" {
				if n := d.Receiver().Rejected(tt.wantReason); n != 1 {
					t.Errorf("rejected[%s] = %d, want 1", tt.wantReason, n)
				}
			}
		})
	}
}

func TestDaemonReadTimeoutDefault(t *testing.T) {
	tests := []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{name: "default", want: DefaultReadTimeout},
		{name: "set", set: 2 * time.Second, want: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := GroupConfig{Group: "lab", LocalNode: "a", ListenAddress: "127.0.0.1:0",
				ReceiveKeys: []Key{{Secret: secretGroup, Nodes: []string{"b"}}}}
			d, err := NewDaemon(cfg, openStore(t, "a"), DaemonOptions{ReadTimeout: tt.set})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			if d.server.ReadTimeout != tt.want || d.server.ReadHeaderTimeout != tt.want {
				t.Errorf("server timeouts = %v/%v, want %v", d.server.ReadHeaderTimeout, d.server.ReadTimeout, tt.want)
			}
		})
	}
	if DefaultReadTimeout > 10*time.Second {
		t.Errorf("DefaultReadTimeout = %v, want a few seconds", DefaultReadTimeout)
	}
}

func TestSenderRetryPolicyDefaults(t *testing.T) {
	s, err := NewSender(SenderOptions{Group: "lab", LocalNode: "a", Outbox: openStore(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	p := s.opts.retryPolicy()
	// COMPAT.md: the original sender's base 200 ms and max 5 s; ±25% jitter.
	if p.Base != 200*time.Millisecond || p.Max != 5*time.Second || p.Jitter != 0.25 || p.Multiplier != 0 {
		t.Errorf("sender retry policy = %+v", p)
	}
	p.Rand = func() float64 { return 0.5 }
	for attempts, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second} {
		if got := p.Delay(attempts); got != want {
			t.Errorf("delay after %d attempts = %v, want %v", attempts, got, want)
		}
	}
}
