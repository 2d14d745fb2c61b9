// Package subscribe runs EventSubscriptions: it selects the events of a group from the
// node's event store, batches them per subscription with real timers (batchWindow and
// debounce), hands each batch to the subscription's plugin (the on_events hook) and passes
// the plugin's result on (to package dynamic, which turns it into DynamicConfigParts).
//
// # Lifecycle
//
// New builds an Engine from its dependencies, all small interfaces defined here so that the
// engine is tested with in-memory fakes and a fake clock: a Source of stored events, the
// Cursors that make dispatch durable, an Invoker that calls a plugin hook, a Handler that
// consumes plugin results and a RunRecorder for the subscription_runs history. Update sets
// the subscriptions (and is called again on every config reload), Notify tells the engine
// that new events were stored, Watch polls the store for events inserted by other processes
// (routerd-eventd), Status reports per-subscription state and Close stops everything.
//
// # Delivery semantics
//
// Each subscription keeps a durable cursor: the store sequence number up to which every
// matching event has been dispatched successfully. After a restart the engine resumes after
// the cursor, so a batch whose result was not yet recorded is dispatched again
// (at-least-once). Each batch carries a stable id, "<subscription>/<firstSeq>-<lastSeq>",
// which plugins may use to be idempotent. A failing batch is retried, unchanged and with the
// same id, after an exponential backoff; later events wait behind it, so order is kept.
// Events that have already expired (expiresAt in the past) when they are read are
// skipped: they describe something no longer true.
//
// # Timers
//
// With neither batchWindow nor debounce a batch is dispatched as soon as its events are
// seen. With batchWindow W the batch is dispatched at most W after its first event was
// seen; with debounce D it is dispatched once no new event arrived for D; with both, at
// whichever comes first. A batch never holds more than MaxBatchEvents events: a full
// batch is dispatched at once, which also bounds a debounce without batchWindow.
package subscribe
