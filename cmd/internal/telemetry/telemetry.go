// Package telemetry sets up OpenTelemetry metrics for the routerd binaries: one
// MeterProvider per process, exported to Prometheus on /metrics.
//
// Library packages never call this: they take a metric.MeterProvider (or a Meter) in their
// options and fall back to the no-op provider, so tests need no setup.
package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics is a process's meter provider and its Prometheus registry.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	registry *prometheus.Registry

	mu       sync.Mutex
	servers  []*http.Server
	children []Children // served after the registry (see AddChildren)
}

// New creates a meter provider that exports to a fresh Prometheus registry.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	return &Metrics{provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)), registry: reg}, nil
}

// Provider is the meter provider to hand to library packages.
func (m *Metrics) Provider() metric.MeterProvider { return m.provider }

// AddChildren adds the families of other processes' /metrics (see Children) to every
// scrape of Handler. A child family whose name this process exports itself is left out.
func (m *Metrics) AddChildren(c Children) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.children = append(m.children, c)
}

// Handler serves the metrics, uncompressed: the scrape is local or on a LAN, and gzip
// would cost more CPU than the encoding. Without children it is promhttp's handler (text,
// OpenMetrics or protobuf, as the scraper asks); with children it answers in the text
// format: this process's families, then the children's merged by name. A failing part (a
// child that does not answer) leaves its series out; the rest is served.
func (m *Metrics) Handler() http.Handler {
	plain := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, DisableCompression: true})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		children := slices.Clone(m.children)
		m.mu.Unlock()
		if len(children) == 0 {
			plain.ServeHTTP(w, r)
			return
		}
		own, _ := m.registry.Gather() // families gathered despite an error are served
		merged := map[string]*textFamily{}
		for _, c := range children {
			_ = c.scrape(merged) // the children that answered are merged
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range own {
			delete(merged, f.GetName())
			if err := enc.Encode(f); err != nil {
				http.Error(w, "telemetry: encode "+f.GetName()+": "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		for _, name := range slices.Sorted(maps.Keys(merged)) {
			f := merged[name]
			buf.Write(f.help)
			buf.Write(f.typ)
			buf.Write(f.samples)
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		_, _ = w.Write(buf.Bytes())
	})
}

// Serve listens on addr (host:port) and serves /metrics until Shutdown. It returns the
// address actually bound (useful with port 0).
func (m *Metrics) Serve(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("telemetry: listen %s: %w", addr, err)
	}
	m.serve(ln)
	return ln.Addr().String(), nil
}

// ServeUnix listens on the Unix socket path (mode 0600; a stale socket file is replaced)
// and serves /metrics until Shutdown. routerd scrapes its supervised children this way.
func (m *Metrics) ServeUnix(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("telemetry: metrics socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("telemetry: remove stale metrics socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("telemetry: listen on metrics socket %s (a path must be shorter than 108 bytes): %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("telemetry: chmod metrics socket %s: %w", path, err)
	}
	m.serve(ln)
	return nil
}

func (m *Metrics) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.mu.Lock()
	m.servers = append(m.servers, srv)
	m.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed after start; nothing to report it to but the scrape
		}
	}()
}

// Shutdown stops the HTTP servers (if any) and flushes the provider. Safe to call twice.
func (m *Metrics) Shutdown(ctx context.Context) error {
	var errs []error
	m.mu.Lock()
	servers := m.servers
	m.servers = nil
	m.mu.Unlock()
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	if err := m.provider.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
