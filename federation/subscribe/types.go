package subscribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"routerd.net/routerd/abi"
)

// Spec is one subscription as the engine runs it, built from an EventSubscription resource.
type Spec struct {
	// Name is the EventSubscription's name; it names the cursor and the batch ids.
	Name string
	// Group is the event group whose events are selected.
	Group string
	// Types are the event types selected (at least one).
	Types []string
	// SubjectPrefixes, when not empty, select events whose subject starts with one of them.
	SubjectPrefixes []string
	// Payload, when not empty, selects events whose payload holds every key with exactly
	// this value.
	Payload map[string]string
	// SourceNodes, when not empty, select events from these source nodes only.
	SourceNodes []string
	// ExcludeSourceNodes drop events from these source nodes.
	ExcludeSourceNodes []string
	// Plugin is the name of the plugin whose on_events hook receives the batches.
	Plugin string
	// BatchWindow is the longest a batch is held after its first event (0: no window).
	BatchWindow time.Duration
	// Debounce dispatches a batch once no new event arrived for this long (0: off).
	Debounce time.Duration
	// MaxBatchEvents caps the events in one batch (0: DefaultMaxBatchEvents).
	MaxBatchEvents int
	// Context are the resource documents sent in every request's spec.context.resources
	// (the plugin's allowlisted resources; see host.ContextResources).
	Context []json.RawMessage
}

// DefaultMaxBatchEvents is the batch size cap when Spec.MaxBatchEvents is 0.
const DefaultMaxBatchEvents = 256

// Validate reports what is wrong with s.
func (s Spec) Validate() error {
	var errs []error
	if strings.TrimSpace(s.Name) == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if s.Group == "" {
		errs = append(errs, errors.New("group is empty"))
	}
	if len(s.Types) == 0 {
		errs = append(errs, errors.New("match.types is empty"))
	}
	if s.Plugin == "" {
		errs = append(errs, errors.New("trigger.pluginRef is empty"))
	}
	if s.BatchWindow < 0 || s.Debounce < 0 || s.MaxBatchEvents < 0 {
		errs = append(errs, errors.New("batchWindow, debounce and maxBatchEvents must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("subscribe: subscription %q: %w", s.Name, err)
	}
	return nil
}

func (s Spec) maxBatch() int {
	if s.MaxBatchEvents > 0 {
		return s.MaxBatchEvents
	}
	return DefaultMaxBatchEvents
}

// Matches reports whether r is selected by s (group, type, subject prefix, source node
// include and exclude lists, payload equality).
func (s Spec) Matches(r Record) bool {
	if r.Group != s.Group || !contains(s.Types, r.Type) {
		return false
	}
	if len(s.SourceNodes) > 0 && !contains(s.SourceNodes, r.SourceNode) {
		return false
	}
	if contains(s.ExcludeSourceNodes, r.SourceNode) {
		return false
	}
	if len(s.SubjectPrefixes) > 0 {
		ok := false
		for _, p := range s.SubjectPrefixes {
			if strings.HasPrefix(r.Subject, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, want := range s.Payload {
		got, ok := r.Payload[k]
		if !ok || got != want {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Record is one stored event as the engine sees it.
type Record struct {
	// Seq is the local insert order in the store (the cursor position).
	Seq int64
	// ID, Group, Type, SourceNode, Subject and Payload are the envelope fields used for
	// matching and stamping.
	ID         string
	Group      string
	Type       string
	SourceNode string
	Subject    string
	Payload    map[string]string
	// JSON is the event envelope as sent to the plugin.
	JSON json.RawMessage
	// ReceivedAt is when the store received the event.
	ReceivedAt time.Time
	// ExpiresAt is when the event stops being live (zero: never). Events already
	// expired when the engine reads them are skipped.
	ExpiresAt time.Time
	// TraceParent is the trace context stored with the event ("" without tracing): the
	// batch's spans continue or link to it.
	TraceParent string
}

// Source reads stored events.
type Source interface {
	// Events returns up to limit events of group with one of types and Seq > after, in
	// ascending Seq order.
	Events(ctx context.Context, group string, types []string, after int64, limit int) ([]Record, error)
	// MaxSeq returns the highest Seq in the store (0 when empty).
	MaxSeq(ctx context.Context) (int64, error)
}

// Cursors persist per-subscription cursors.
type Cursors interface {
	// GetCursor returns the saved cursor of name (0 when none).
	GetCursor(ctx context.Context, name string) (int64, error)
	// SetCursor saves the cursor of name.
	SetCursor(ctx context.Context, name string, seq int64) error
}

// Invoker calls a plugin hook with a JSON request and returns the JSON result.
type Invoker interface {
	Invoke(ctx context.Context, plugin, hook string, request []byte) ([]byte, error)
}

// DecodingInvoker is an Invoker that can hand the plugin's output to decode in place of
// its own output check, so the result is scanned once (host.Host implements it; a
// decode error then counts as the plugin's bad output, breaker included).
type DecodingInvoker interface {
	InvokeDecode(ctx context.Context, plugin, hook string, request []byte, decode func(out []byte) error) error
}

// Batch is a set of events dispatched together.
type Batch struct {
	// ID is "<subscription>/<firstSeq>-<lastSeq>", stable across retries and restarts.
	ID string
	// Subscription and Group name where the batch comes from.
	Subscription string
	Group        string
	// Plugin is the plugin called.
	Plugin string
	// Context are the resources sent in the request's spec.context.
	Context []json.RawMessage
	// Events are the batch's events in Seq order.
	Events []Record
	// Attempt counts dispatches of this batch, starting at 1.
	Attempt int
}

// FirstSeq is the Seq of the batch's first event.
func (b Batch) FirstSeq() int64 { return b.Events[0].Seq }

// LastSeq is the Seq of the batch's last event.
func (b Batch) LastSeq() int64 { return b.Events[len(b.Events)-1].Seq }

// Result is a decoded PluginResult.
type Result struct {
	// TTL is status.ttl parsed (0 when absent).
	TTL time.Duration
	// Resources are the proposed resource documents, undecoded (status.resources).
	Resources []json.RawMessage
	// Doc is the whole document (directives, action plans, events).
	Doc *abi.Result
}

// Handler consumes the result of a successful plugin call. An error makes the engine retry
// the batch (it should mean a transient failure such as the store being unavailable;
// rejected resources are the handler's own business and not an error).
type Handler interface {
	HandleResult(ctx context.Context, b Batch, r Result) error
}

// Run is one dispatch of a batch, for the subscription_runs history.
type Run struct {
	// Subscription and BatchID name the batch; FirstSeq, LastSeq and Events describe it.
	Subscription string
	BatchID      string
	FirstSeq     int64
	LastSeq      int64
	Events       int
	// Attempt counts the dispatches of this batch (1 for the first).
	Attempt int
	// StartedAt and FinishedAt bound the dispatch (plugin call and result handling).
	StartedAt  time.Time
	FinishedAt time.Time
	// Outcome is "ok" or "error".
	Outcome string
	Error   string
	// Resources is the number of resources the plugin returned.
	Resources int
}

// RunRecorder stores the run history.
type RunRecorder interface {
	RecordRun(ctx context.Context, r Run) error
}

// State of a subscription.
const (
	StateStarting = "starting" // loading its cursor
	StateIdle     = "idle"     // nothing pending
	StateWaiting  = "waiting"  // holding a batch for batchWindow/debounce
	StateRunning  = "running"  // plugin call in progress
	StateRetrying = "retrying" // last call failed; waiting for the retry timer
	StateStopped  = "stopped"
)

// Status is a subscription's state as shown by `routerctl subscription list`.
type Status struct {
	// Name, Group and Plugin identify the subscription.
	Name   string `json:"name"`
	Group  string `json:"group"`
	Plugin string `json:"plugin"`
	// State is one of the State* constants.
	State string `json:"state"`
	// Cursor is the durable cursor: every matching event up to it has been handled.
	Cursor int64 `json:"cursor"`
	// Pending is the number of matching events not yet handled.
	Pending int `json:"pending"`
	// LagSeconds is how long the oldest pending event has waited (0 when none).
	LagSeconds float64 `json:"lagSeconds"`
	// Batches and Failures count dispatches since start.
	Batches  int64 `json:"batches"`
	Failures int64 `json:"failures"`
	// Attempts is the number of failed attempts of the current batch.
	Attempts int `json:"attempts,omitempty"`
	// LastBatchID, LastRunAt and LastError describe the latest dispatch (LastError is
	// cleared by a success).
	LastBatchID string     `json:"lastBatchID,omitempty"`
	LastRunAt   *time.Time `json:"lastRunAt,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	// NextRetryAt is when a failed batch is tried again.
	NextRetryAt *time.Time `json:"nextRetryAt,omitempty"`
}
