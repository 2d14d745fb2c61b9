package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing is a process's OTLP trace exporter, installed as the global tracer provider.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// TracesURL turns an --otlp-endpoint value into the URL spans are posted to: a base URL
// (http://collector:4318) gets the OTLP/HTTP traces path /v1/traces; a URL with a path is
// used as it is.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("telemetry: otlp endpoint %q: want an http(s) URL such as http://127.0.0.1:4318 (traces go to its /v1/traces)", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// StartTracing exports the spans of this process (service is routerd or
// routerd-eventd, node the router's name) over OTLP/HTTP to endpoint, batched, and
// installs the provider globally, so that federation/tracectx's spans are recorded. With
// endpoint "" it does nothing and returns nil: the global provider stays the no-op one.
func StartTracing(endpoint, service, node string) (*Tracing, error) {
	if endpoint == "" {
		return nil, nil
	}
	target, err := TracesURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(target))
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter %s: %w", target, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if node != "" {
		attrs = append(attrs, attribute.String("routerd.node", node))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.NewSchemaless(attrs...)))
	otel.SetTracerProvider(tp)
	return &Tracing{provider: tp}, nil
}

// ForceFlush exports every span ended so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// Shutdown flushes the spans still queued and stops the exporter. Safe on nil and twice.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("telemetry: tracing shutdown: %w", err)
	}
	return nil
}
