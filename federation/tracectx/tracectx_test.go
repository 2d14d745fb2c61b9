package tracectx

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func spanContext(t *testing.T, tid, sid string) trace.SpanContext {
	t.Helper()
	tr, err := trace.TraceIDFromHex(tid)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := trace.SpanIDFromHex(sid)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tr, SpanID: sp, TraceFlags: trace.FlagsSampled, Remote: true})
}

func TestFormatParse(t *testing.T) {
	sc := spanContext(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{name: "no span (tracing off)", ctx: context.Background(), want: ""},
		{name: "a span", ctx: trace.ContextWithSpanContext(context.Background(), sc), want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Format(tt.ctx)
			if got != tt.want {
				t.Fatalf("Format = %q, want %q", got, tt.want)
			}
			if p := Parse(got); p.IsValid() != (tt.want != "") || (p.IsValid() && p.SpanID() != sc.SpanID()) {
				t.Fatalf("Parse(%q) = %v", got, p)
			}
		})
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if Parse(bad).IsValid() {
			t.Errorf("Parse(%q) is valid", bad)
		}
	}
	h := propagation.HeaderCarrier{}
	Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	if got := trace.SpanContextFromContext(Extract(context.Background(), h)); got.SpanID() != sc.SpanID() || h.Get(Header) == "" {
		t.Fatalf("header round trip: %v (%v)", got, h)
	}
	h = propagation.HeaderCarrier{}
	Inject(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("Inject without a span set %v", h)
	}
}

// TestStartParentAndLinks: a span over several events continues the first event's trace
// and links every event; without stored contexts it is a child of ctx's span.
func TestStartParentAndLinks(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	a := spanContext(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
	b := spanContext(t, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
	fmtOf := func(sc trace.SpanContext) string {
		return Format(trace.ContextWithSpanContext(context.Background(), sc))
	}
	outer, outerSpan := Tracer().Start(context.Background(), "outer")
	tests := []struct {
		name       string
		ctx        context.Context
		parents    []string
		wantParent trace.SpanContext
		wantLinks  int
	}{
		{name: "one event", ctx: context.Background(), parents: []string{fmtOf(a)}, wantParent: a, wantLinks: 1},
		{name: "a batch of two traces", ctx: context.Background(), parents: []string{fmtOf(b), "", fmtOf(a)}, wantParent: b, wantLinks: 2},
		{name: "no stored context", ctx: outer, parents: []string{"", "garbage"}, wantParent: outerSpan.SpanContext(), wantLinks: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, span := Start(tt.ctx, tt.name, tt.parents)
			span.End()
			ended := rec.Ended()
			got := ended[len(ended)-1]
			if got.Parent().SpanID() != tt.wantParent.SpanID() || got.SpanContext().TraceID() != tt.wantParent.TraceID() || len(got.Links()) != tt.wantLinks {
				t.Fatalf("span %s: parent %v trace %v links %d; want parent %v links %d", tt.name, got.Parent().SpanID(), got.SpanContext().TraceID(), len(got.Links()), tt.wantParent.SpanID(), tt.wantLinks)
			}
		})
	}
	outerSpan.End()
}
