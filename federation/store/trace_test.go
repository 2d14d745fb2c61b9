package store

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"routerd.net/routerd/federation/event"
)

// TestEventTraceParent: an event is stored with the trace context of the inserting span
// and read back with it (ListEvents, DueDeliveries); without a span it is empty.
func TestEventTraceParent(t *testing.T) {
	s, _ := openTest(t)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	spanCtx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	tests := []struct {
		name string
		ctx  context.Context
		id   string
		want string
	}{
		{name: "traced", ctx: spanCtx, id: "ev-traced", want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "tracing off", ctx: context.Background(), id: "ev-plain", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ev(tt.id, "lab", "t.observed", "10.0.0.1", time.Hour)
			if _, err := s.InsertEvents(tt.ctx, []event.Event{e}); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetEvent(context.Background(), tt.id)
			if err != nil || got.TraceParent != tt.want {
				t.Fatalf("GetEvent: traceParent %q (%v), want %q", got.TraceParent, err, tt.want)
			}
			if _, err := s.EnqueueDeliveries(context.Background(), EnqueueRequest{Group: "lab", Peer: "b", SourceNode: "node-a", Now: t0}); err != nil {
				t.Fatal(err)
			}
			due, err := s.DueDeliveries(context.Background(), "lab", "b", t0.Add(time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, d := range due {
				if d.Event.ID == tt.id {
					found = d.TraceParent == tt.want
				}
			}
			if !found {
				t.Fatalf("DueDeliveries: no %s with traceParent %q in %+v", tt.id, tt.want, due)
			}
		})
	}
}
