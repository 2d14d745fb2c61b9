package jetstream

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure an in-process nats-server.
type EmbeddedOptions struct {
	// Listen is host:port of the client listener (port 0 or -1: a free port).
	Listen string
	// StoreDir holds the JetStream files (required: streams survive a restart).
	StoreDir string
	// Name is the server name (default routerd).
	Name string
	// Logger gets the server's notices at debug level (nil: none).
	Logger *slog.Logger
}

// Embedded is a nats-server with JetStream running in this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a nats-server with JetStream on o.Listen and waits until it
// accepts connections (at most 10s).
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	host, portText, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("jetstream: embedded server: listen %q: want host:port like 127.0.0.1:4222", o.Listen)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("jetstream: embedded server: listen %q: port is not a number", o.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if o.StoreDir == "" {
		return nil, errors.New("jetstream: embedded server: no store directory (spec.transport.embedded.storeDir)")
	}
	if o.Name == "" {
		o.Name = "routerd"
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      o.Logger == nil,
		// No HTTP monitoring, cluster, gateway or leafnode listener.
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: embedded server: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(slogLogger{o.Logger}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("jetstream: embedded server on %s: not ready within 10s (port in use? see the debug log)", o.Listen)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL (nats://host:port) of the server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Port is the bound client port.
func (e *Embedded) Port() int { return e.srv.Addr().(*net.TCPAddr).Port }

// Shutdown stops the server and waits until it has (its files are then closed).
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// slogLogger adapts slog to the nats-server logger (everything at debug level but errors).
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Noticef(format string, v ...any) {
	s.l.Debug(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (s slogLogger) Warnf(format string, v ...any) {
	s.l.Debug(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (s slogLogger) Fatalf(format string, v ...any) {
	s.l.Error(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (s slogLogger) Errorf(format string, v ...any) {
	s.l.Warn(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (s slogLogger) Debugf(format string, v ...any) {
	s.l.Debug(fmt.Sprintf(format, v...), "component", "nats-server")
}
func (s slogLogger) Tracef(format string, v ...any) {}
