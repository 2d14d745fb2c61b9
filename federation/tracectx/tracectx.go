// Package tracectx carries an event's W3C trace context (the traceparent header value)
// through the federation: from the span that stored the event on its source router, in
// the store (events.trace_parent), on the wire (the optional traceparent header of a
// push; a v1 peer ignores it) and into the spans of the receiving router that work on the
// event later (subscription, plugin call, dynamic config, dataplane apply).
//
// Spans are made with the global OpenTelemetry tracer provider, which is a no-op until
// the process sets one (cmd/internal/telemetry, when an OTLP endpoint is configured):
// with tracing off every function here returns at once and nothing is stored or sent.
package tracectx

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Header is the W3C trace context header.
const Header = "traceparent"

// ScopeName is the instrumentation scope of routerd's spans.
const ScopeName = "routerd.net/routerd"

var propagator = propagation.TraceContext{}

// Tracer returns routerd's tracer from the global provider.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(ScopeName) }

// Format returns the traceparent of the span in ctx, or "" when there is no sampled,
// valid span (tracing off).
func Format(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c[Header]
}

// Parse returns the span context of a traceparent value (invalid when tp is empty or
// malformed).
func Parse(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), propagation.MapCarrier{Header: tp}))
}

// Inject sets the traceparent header of h from the span in ctx (nothing when none).
func Inject(ctx context.Context, h propagation.TextMapCarrier) { propagator.Inject(ctx, h) }

// Extract returns ctx with the remote span context of the traceparent header of h, if
// it carries a valid one.
func Extract(ctx context.Context, h propagation.TextMapCarrier) context.Context {
	return propagator.Extract(ctx, h)
}

// Start starts span name for work on events whose stored trace contexts are parents:
// the first valid one becomes the parent (so a single event's trace continues as one
// chain) and every valid one is linked (a batch of events from several traces). With
// none valid the span is a child of ctx's span, if any.
func Start(ctx context.Context, name string, parents []string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	t := Tracer()
	opts := []trace.SpanStartOption{trace.WithAttributes(attrs...)}
	if len(parents) > 0 {
		var links []trace.Link
		var first trace.SpanContext
		for _, tp := range parents {
			sc := Parse(tp)
			if !sc.IsValid() {
				continue
			}
			if !first.IsValid() {
				first = sc
			}
			links = append(links, trace.Link{SpanContext: sc})
		}
		if first.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, first)
			opts = append(opts, trace.WithLinks(links...))
		}
	}
	return t.Start(ctx, name, opts...)
}
