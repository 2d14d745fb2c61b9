package transport

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// MetricPrefix starts every transport metric name.
const MetricPrefix = "routerd_eventd_"

// Metrics holds the 14 transport instruments of COMPAT.md. Attributes are limited to
// group, peer, event_type, status and reason; event ids never become attributes.
type Metrics struct {
	deliveries     metric.Int64Counter
	attempts       metric.Int64Counter
	repush         metric.Int64Counter
	staleTTL       metric.Int64Counter
	lag            metric.Float64Histogram
	rejects        metric.Int64Counter
	accepted       metric.Int64Counter
	duplicates     metric.Int64Counter
	outboxTicks    metric.Int64Counter
	outboxTickErrs metric.Int64Counter
	outboxTickDur  metric.Float64Histogram
	prunerTicks    metric.Int64Counter
	prunerPruned   metric.Int64Counter
	prunerTickErrs metric.Int64Counter
}

// NewMetrics creates the instruments on mp (nil means the no-op provider).
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("routerd.net/routerd/federation/transport")
	var (
		x    Metrics
		errs []error
	)
	counter := func(dst *metric.Int64Counter, name, desc string) {
		c, err := m.Int64Counter(MetricPrefix+name, metric.WithDescription(desc))
		errs = append(errs, err)
		*dst = c
	}
	counter(&x.deliveries, "outbox_delivery_total", "Deliveries that reached a final or retry state, by status (delivered, retrying, failed).")
	counter(&x.attempts, "outbox_delivery_attempts_total", "Push attempts per event, by status (ok, error).")
	counter(&x.repush, "outbox_repush_total", "Delivered events queued again because their expiresAt was extended (TTL refresh).")
	counter(&x.staleTTL, "outbox_stale_ttl_delivery_total", "TTL refreshes pushed while the peer's copy was close to expiry or already expired.")
	counter(&x.rejects, "receiver_reject_total", "Pushed requests rejected by the receiver, by reason.")
	counter(&x.accepted, "receiver_accepted_total", "Events stored by the receiver.")
	counter(&x.duplicates, "receiver_duplicate_total", "Events acknowledged by the receiver as already stored.")
	counter(&x.outboxTicks, "outbox_tick_total", "Outbox passes.")
	counter(&x.outboxTickErrs, "outbox_tick_errors_total", "Outbox passes that failed.")
	counter(&x.prunerTicks, "pruner_tick_total", "Pruner passes.")
	counter(&x.prunerPruned, "pruner_pruned_total", "Delivery rows removed by the pruner.")
	counter(&x.prunerTickErrs, "pruner_tick_errors_total", "Pruner passes that failed.")
	var err error
	x.lag, err = m.Float64Histogram(MetricPrefix+"outbox_delivery_lag_seconds",
		metric.WithDescription("Time from an event's creation at the origin to its delivery at a peer."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600))
	errs = append(errs, err)
	x.outboxTickDur, err = m.Float64Histogram(MetricPrefix+"outbox_tick_duration_seconds",
		metric.WithDescription("Duration of one outbox pass."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
	errs = append(errs, err)
	for _, e := range errs {
		if e != nil {
			return nil, fmt.Errorf("transport: create metrics: %w", e)
		}
	}
	return &x, nil
}

func attrs(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(kv...))
}

func (m *Metrics) reject(group string, r Reason) {
	m.rejects.Add(context.Background(), 1, attrs(attribute.String("group", group), attribute.String("reason", string(r))))
}
