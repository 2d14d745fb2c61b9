package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"routerd.net/routerd/federation/store"
)

// GroupConfig is the runtime configuration of one group's transport, built from the
// EventGroup and its EventPeers (see FromSchemas) with secrets already read.
type GroupConfig struct {
	// Group and LocalNode name the group and this router.
	Group, LocalNode string
	// ListenAddress is host:port of the receiver ("" disables receiving).
	ListenAddress string
	// TLS, when set, serves HTTPS with CertFile/KeyFile and verifies peers with CAFile.
	TLS *TLSFiles
	// ReplayWindow bounds timestamp skew (default 5m).
	ReplayWindow time.Duration
	// ReceiveKeys are every secret accepted, each with the nodes that may use it.
	ReceiveKeys []Key
	// Peers are the push targets.
	Peers []Peer
	// Delivery tuning; zero values take the SenderOptions defaults.
	BatchSize                                        int
	RetryBase, RetryMax, FailAfter, TTLRefreshBefore time.Duration
	PruneMaxAge                                      time.Duration
	// RetentionMaxEvents and RetentionMaxAge are the EventGroup's event retention, applied
	// by the pruner (both zero: events are not pruned here).
	RetentionMaxEvents int64
	RetentionMaxAge    time.Duration
	// JetStream, when set, carries the group's events through NATS JetStream
	// (spec.transport type nats-jetstream; see federation/transport/jetstream). Peers are
	// then the push peers this router bridges the group to.
	JetStream *JetStreamConfig
}

// JetStreamConfig is spec.transport of a nats-jetstream group, with paths resolved.
type JetStreamConfig struct {
	// Servers are the NATS URLs (with Embedded, its listener when empty).
	Servers []string
	// CredentialsFile is the NATS .creds file ("" for none).
	CredentialsFile string
	// Stream is the group's stream; SubjectPrefix starts every subject.
	Stream, SubjectPrefix string
	// MaxAge is the stream's message retention (the group's retention.maxAge).
	MaxAge time.Duration
	// SignKey signs published events (the group's newest key); GroupKeys verify received
	// ones, from any node of the group but this one.
	SignKey   Key
	GroupKeys []Key
	// Embedded, when set, runs a nats-server in this process.
	Embedded *EmbeddedNATS
}

// EmbeddedNATS is an in-process nats-server: Listen is host:port, StoreDir the JetStream
// directory ("": chosen by the caller; routerd-eventd uses <state-dir>/nats/<group>).
type EmbeddedNATS struct {
	Listen, StoreDir string
}

// TLSFiles are PEM files for the receiver and the sender.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

// DaemonOptions are the process-level dependencies of a Daemon.
type DaemonOptions struct {
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
	// PollInterval overrides how often the store is polled for new local events.
	PollInterval time.Duration
	// PruneInterval overrides how often old delivery rows are pruned (default 1m).
	PruneInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MetricsHandler, when set, is also served at /metrics on the receiver's listener.
	MetricsHandler http.Handler
	// ReadTimeout bounds reading one whole request, headers and body, so a peer that
	// sends slowly cannot hold a connection (default DefaultReadTimeout; routerd-eventd
	// --read-timeout).
	ReadTimeout time.Duration
	// Broker is the message broker of a group with GroupConfig.JetStream (built by
	// federation/transport/jetstream); required for such a group, unused otherwise.
	Broker Broker
}

// Broker is a message-broker transport run by the Daemon besides the HTTP push: the
// sender publishes through its Peer (delivery rows under that peer's name), and it
// delivers what it receives to a Receiver that verifies every message as the HTTP
// receiver does.
type Broker interface {
	// Peer is the sender's peer that publishes into the broker (Publisher set).
	Peer() Peer
	// Start begins receiving into recv; it must not block on the broker being reachable.
	Start(ctx context.Context, recv *Receiver) error
	// Shutdown stops receiving and disconnects, within ctx.
	Shutdown(ctx context.Context) error
}

// DefaultReadTimeout is how long the receiver waits for one request's headers and body.
// A full batch (16 MiB) needs about 27 Mbit/s to arrive in time; raise it for slow links.
const DefaultReadTimeout = 5 * time.Second

// Daemon is one group's transport: the receiver's HTTP server, the sender and, for a
// nats-jetstream group, the broker.
type Daemon struct {
	cfg      GroupConfig
	readTO   time.Duration
	log      *slog.Logger
	handler  http.Handler
	receiver *Receiver
	sender   *Sender
	broker   Broker
	brokerRx *Receiver
	server   *http.Server
	ln       net.Listener
	serveErr chan error

	mu     sync.Mutex
	closed bool
}

// NewDaemon builds the receiver and the sender of cfg over st.
func NewDaemon(cfg GroupConfig, st *store.Store, opts DaemonOptions) (*Daemon, error) {
	if len(cfg.ReceiveKeys) == 0 {
		return nil, &NoAuthError{Group: cfg.Group}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := NewMetrics(opts.MeterProvider)
	if err != nil {
		return nil, err
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	d := &Daemon{cfg: cfg, readTO: opts.ReadTimeout, log: opts.Logger, serveErr: make(chan error, 1)}
	client := &http.Client{Timeout: 10 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	if cfg.TLS != nil && cfg.TLS.CAFile != "" {
		pool, err := loadCAPool(cfg.TLS.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client.Transport = tr
	if cfg.ListenAddress != "" {
		d.receiver, err = NewReceiver(ReceiverOptions{
			Group: cfg.Group, LocalNode: cfg.LocalNode, Keys: cfg.ReceiveKeys,
			ReplayWindow: cfg.ReplayWindow, Store: st, Logger: opts.Logger, Metrics: m, Now: opts.Now,
		})
		if err != nil {
			return nil, err
		}
		d.handler = d.receiver
		if opts.MetricsHandler != nil {
			mux := http.NewServeMux()
			mux.Handle("/metrics", opts.MetricsHandler)
			mux.Handle("/", d.receiver)
			d.handler = mux
		}
	}
	var retention *store.PruneOptions
	if cfg.RetentionMaxEvents > 0 || cfg.RetentionMaxAge > 0 {
		r := store.GroupRetention(cfg.Group, cfg.RetentionMaxAge, cfg.RetentionMaxEvents)
		retention = &r
	}
	peers := cfg.Peers
	if cfg.JetStream != nil {
		if peers, err = d.withBroker(cfg, st, opts, m); err != nil {
			return nil, err
		}
	}
	d.sender, err = NewSender(SenderOptions{
		EventRetention: retention,
		Group:          cfg.Group, LocalNode: cfg.LocalNode, Peers: peers, Outbox: st, HTTP: client,
		BatchSize: cfg.BatchSize, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax, FailAfter: cfg.FailAfter,
		TTLRefreshBefore: cfg.TTLRefreshBefore, PruneMaxAge: cfg.PruneMaxAge, PollInterval: opts.PollInterval, PruneInterval: opts.PruneInterval,
		Logger: opts.Logger, Metrics: m, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// withBroker sets up the broker of a nats-jetstream group: its receiver (the group's
// keys, valid for any node; timestamps as old as the stream's retention) and the
// sender's peers. A router with push peers bridges: what its push peers (every node a
// push key names) originate is published into the broker, and what the other nodes
// originate (received from the broker) is pushed to the push peers. Nothing goes back
// where it came from, and receivers drop what they already have by event id.
func (d *Daemon) withBroker(cfg GroupConfig, st *store.Store, opts DaemonOptions, m *Metrics) ([]Peer, error) {
	if opts.Broker == nil {
		return nil, fmt.Errorf("transport: group %s uses spec.transport.type nats-jetstream but no broker was built (federation/transport/jetstream.NewBroker)", cfg.Group)
	}
	var err error
	d.broker = opts.Broker
	d.brokerRx, err = NewReceiver(ReceiverOptions{
		Group: cfg.Group, LocalNode: cfg.LocalNode, Keys: cfg.JetStream.GroupKeys,
		ReplayWindow: cfg.ReplayWindow, MaxMessageAge: cfg.JetStream.MaxAge, MaxBatchEvents: -1,
		Store: st, Logger: opts.Logger, Metrics: m, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	pushSources := map[string]bool{}
	for _, k := range cfg.ReceiveKeys {
		if !k.AnyNode {
			for _, n := range k.Nodes {
				pushSources[n] = true
			}
		}
	}
	for _, p := range cfg.Peers {
		pushSources[p.NodeName] = true
	}
	peers := make([]Peer, 0, len(cfg.Peers)+1)
	for _, p := range cfg.Peers {
		p.Relay = func(src string) bool { return !pushSources[src] }
		peers = append(peers, p)
	}
	bp := opts.Broker.Peer()
	if len(pushSources) > 0 {
		bp.Relay = func(src string) bool { return pushSources[src] }
	}
	return append(peers, bp), nil
}

func loadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("transport: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("transport: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Start listens (when ListenAddress is set) and starts the sender.
func (d *Daemon) Start(ctx context.Context) error {
	if d.receiver != nil {
		ln, err := net.Listen("tcp", d.cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("transport: group %s: listen %s: %w", d.cfg.Group, d.cfg.ListenAddress, err)
		}
		d.ln = ln
		d.server = &http.Server{
			Handler:           d.handler,
			ReadHeaderTimeout: d.readTO,
			ReadTimeout:       d.readTO,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
		}
		serve := func() error { return d.server.Serve(ln) }
		useTLS := false
		if d.cfg.TLS != nil && d.cfg.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(d.cfg.TLS.CertFile, d.cfg.TLS.KeyFile)
			if err != nil {
				ln.Close()
				return fmt.Errorf("transport: group %s: load TLS certificate: %w", d.cfg.Group, err)
			}
			d.server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			serve = func() error { return d.server.ServeTLS(ln, "", "") }
			useTLS = true
		}
		go func() {
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.serveErr <- fmt.Errorf("transport: group %s: serve: %w", d.cfg.Group, err)
			}
		}()
		d.log.Info("receiver listening", "group", d.cfg.Group, "address", ln.Addr().String(), "tls", useTLS)
	}
	if d.broker != nil {
		if err := d.broker.Start(ctx, d.brokerRx); err != nil {
			if d.ln != nil {
				_ = d.server.Close()
			}
			return fmt.Errorf("transport: group %s: start broker: %w", d.cfg.Group, err)
		}
	}
	if err := d.sender.Start(ctx); err != nil {
		if d.ln != nil {
			_ = d.server.Close()
		}
		if d.broker != nil {
			_ = d.broker.Shutdown(context.Background())
		}
		return err
	}
	return nil
}

// Addr is the receiver's bound address ("" when not listening).
func (d *Daemon) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Errors reports a receiver that stopped serving on its own.
func (d *Daemon) Errors() <-chan error { return d.serveErr }

// Receiver returns the receiver (nil when not listening).
func (d *Daemon) Receiver() *Receiver { return d.receiver }

// Sender returns the sender.
func (d *Daemon) Sender() *Sender { return d.sender }

// BrokerReceiver returns the receiver of the broker's messages (nil without a broker).
func (d *Daemon) BrokerReceiver() *Receiver { return d.brokerRx }

// Shutdown stops accepting requests and lets in-flight ones finish (receiver), stops the
// sender after its in-flight pushes are recorded, within ctx. Safe to call twice.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	var errs []error
	if d.server != nil {
		if err := d.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("transport: group %s: stop receiver: %w", d.cfg.Group, err))
		}
	}
	errs = append(errs, d.sender.Shutdown(ctx))
	if d.broker != nil {
		// After the sender: its last publishes are acknowledged and recorded first.
		errs = append(errs, d.broker.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Close is Shutdown with a 15s limit.
func (d *Daemon) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return d.Shutdown(ctx)
}
