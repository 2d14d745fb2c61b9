// Package jetstream carries a federation group's events through NATS JetStream instead
// of (or besides) the HMAC push mesh: the same envelope, store, subscriptions and plugins,
// with a broker in the middle (spec.transport.type nats-jetstream of the EventGroup).
//
// # Messages
//
// Every event the router originates is published as one message on
//
//	<subjectPrefix>.<group>.<type>.<source-node>
//
// (group and source node escaped into one token each, see Subject) into the group's
// stream (default ROUTERD_<GROUP>, retention MaxAge = the group's retention.maxAge). The
// body is the event's JSON and the headers are those of a v1 POST: X-Routerd-Timestamp,
// X-Routerd-Signature (HMAC-SHA256 with the group's key over timestamp + "\n" + body) and
// X-Routerd-Key-Id when the key has an id. Nats-Msg-Id is the event id, plus "@" and the
// expiresAt in unix nanoseconds when the event has one, so a TTL refresh (same id, later
// expiresAt) is a new message while a retried publish is dropped by the stream.
//
// # Receiving
//
// Each router reads the stream through one durable pull consumer named after its node
// (DurableName). Messages are verified by transport.Receiver.AcceptMessages, the
// verification of the HTTP receiver (a broker cannot forge events without the group key),
// stored in one transaction per batch (duplicates by event id are dropped, refreshes
// extend the stored expiresAt) and only then acknowledged; a store failure asks for
// redelivery. The router's own messages are acknowledged and ignored. Rejected messages
// are terminated and counted under the receiver's reasons.
//
// # Delivery state
//
// Publishing goes through the transport's outbox: the broker is the pseudo-peer
// "jetstream:<stream>" (PeerName) of event_deliveries, delivered once the stream
// acknowledged the message, retrying while the broker is unreachable, so `routerctl
// federation deliveries` and doctor see pending and failed publishes.
//
// # Metrics
//
// With Options.MeterProvider set (routerd-eventd: the provider of its /metrics) the
// broker exports routerd_eventd_jetstream_* (MetricPrefix): connected and
// consumer_pending (gauges read at scrape time; the consumer's info is asked for at most
// every PendingInterval, bounded to 0.5s), reconnects_total, disconnects_total,
// redeliveries_total{reason}, terminated_total, own_ignored_total and
// publish_errors_total{reason}. Attributes are the group and a bounded reason only.
package jetstream
