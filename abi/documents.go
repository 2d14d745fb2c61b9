package abi

import (
	"encoding/json"
	"time"
)

// API group and kinds of the plugin documents (as in the original routerd).
const (
	// PluginAPIVersion is the apiVersion of PluginRequest and PluginResult documents.
	PluginAPIVersion = "plugin.routerd.net/v1alpha1"
	// KindPluginRequest is the kind of a Request document.
	KindPluginRequest = "PluginRequest"
	// KindPluginResult is the kind of a Result document.
	KindPluginResult = "PluginResult"
)

// Manifest describes a plugin; it is the output of the routerd_manifest export.
type Manifest struct {
	// Name is the plugin name, e.g. "event-to-remote-claim".
	Name string `json:"name"`
	// Version is the plugin's own version, e.g. "1.0.0".
	Version string `json:"version"`
	// ABI is the ABI version the plugin speaks, "routerd.plugin/v1" (a minor may be given).
	ABI string `json:"abi"`
	// Hooks lists the hooks the plugin implements (and exports).
	Hooks []Hook `json:"hooks"`
	// Capabilities lists the capabilities the plugin requests.
	Capabilities []Capability `json:"capabilities,omitempty"`
	// Description is an optional one-line summary.
	Description string `json:"description,omitempty"`
}

// HasHook reports whether the manifest declares h.
func (m *Manifest) HasHook(h Hook) bool {
	for _, x := range m.Hooks {
		if x == h {
			return true
		}
	}
	return false
}

// Request is the PluginRequest document a hook receives.
type Request struct {
	// APIVersion is PluginAPIVersion.
	APIVersion string `json:"apiVersion"`
	// Kind is KindPluginRequest.
	Kind string `json:"kind"`
	// ABI is the host's ABI version, RequestVersion ("routerd.plugin/v1.0").
	ABI string `json:"abi"`
	// BatchID identifies the batch (subscription run) this call belongs to.
	BatchID string `json:"batchID,omitempty"`
	// Spec is the request body.
	Spec RequestSpec `json:"spec"`
}

// RequestSpec is the body of a Request.
type RequestSpec struct {
	// Trigger says why the plugin was called.
	Trigger Trigger `json:"trigger"`
	// Now is the host's time of the call; plugins use it instead of a clock so that
	// replays and dry-runs are deterministic.
	Now time.Time `json:"now,omitzero"`
	// Events are the federation events of the batch (on_events).
	Events []Event `json:"events,omitempty"`
	// Context carries the resources the Plugin resource allowlists (secrets stripped);
	// for plan it is the desired state to plan for.
	Context RequestContext `json:"context"`
	// ActionPlan is the approved plan to run (execute only).
	ActionPlan *ActionPlan `json:"actionPlan,omitempty"`
	// DryRun is true when the host will not apply the output (routerctl plugin dry-run).
	DryRun bool `json:"dryRun,omitempty"`
}

// Trigger identifies what invoked a plugin.
type Trigger struct {
	// Type is the trigger type: "EventSubscription", "Plan", "Execute" or "DryRun".
	Type string `json:"type"`
	// Topic names the trigger source, e.g. the EventSubscription name.
	Topic string `json:"topic,omitempty"`
}

// Trigger types used by the host.
const (
	// TriggerEventSubscription: on_events called for an EventSubscription batch.
	TriggerEventSubscription = "EventSubscription"
	// TriggerPlan: plan called by the planner.
	TriggerPlan = "Plan"
	// TriggerExecute: execute called for an approved plan.
	TriggerExecute = "Execute"
	// TriggerDryRun: any hook called by routerctl plugin dry-run.
	TriggerDryRun = "DryRun"
)

// RequestContext holds resources passed to the plugin.
type RequestContext struct {
	// Resources are complete resource documents (apiVersion, kind, metadata, spec).
	Resources []json.RawMessage `json:"resources,omitempty"`
}

// Event is the federation event envelope as a plugin sees it (the same JSON as the wire
// format). Times are RFC 3339 strings, passed through unchanged.
type Event struct {
	// ID is the unique, sortable event id.
	ID string `json:"id"`
	// Group is the EventGroup name.
	Group string `json:"group"`
	// SourceNode is the node that observed the event.
	SourceNode string `json:"sourceNode,omitempty"`
	// Type is the event type, e.g. "routerd.client.ipv4.observed".
	Type string `json:"type"`
	// Subject is what the event is about, e.g. an address.
	Subject string `json:"subject,omitempty"`
	// DedupeKey defaults to ID.
	DedupeKey string `json:"dedupeKey,omitempty"`
	// Payload holds string attributes.
	Payload map[string]string `json:"payload,omitempty"`
	// ObservedAt is when the event was observed (RFC 3339).
	ObservedAt string `json:"observedAt,omitempty"`
	// ExpiresAt is when the event stops being live (RFC 3339).
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// EventTypeIPv4Observed is the event type of an observed client IPv4 address.
const EventTypeIPv4Observed = "routerd.client.ipv4.observed"

// Result is the PluginResult document a hook returns.
type Result struct {
	// APIVersion is PluginAPIVersion (optional in plugin output).
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind is KindPluginResult (optional in plugin output).
	Kind string `json:"kind,omitempty"`
	// Status is the result body.
	Status ResultStatus `json:"status"`
}

// ResultStatus is the body of a Result.
type ResultStatus struct {
	// ObservedAt is the time the result refers to (usually Request.Spec.Now).
	ObservedAt time.Time `json:"observedAt,omitzero"`
	// TTL is how long the proposed resources stay valid, e.g. "30m".
	TTL string `json:"ttl,omitempty"`
	// Resources are proposed resource documents (they become DynamicConfigParts).
	Resources []json.RawMessage `json:"resources,omitempty"`
	// Directives are operations on existing dynamic resources.
	Directives []Directive `json:"directives,omitempty"`
	// ActionPlans are proposed provider actions (plan).
	ActionPlans []ActionPlan `json:"actionPlans,omitempty"`
	// ActionResults report what execute did.
	ActionResults []ActionResult `json:"actionResults,omitempty"`
	// Events are informational events for logs and audit.
	Events []ResultEvent `json:"events,omitempty"`
}

// Directive is an operation on a dynamic resource, e.g. deleting a claim.
type Directive struct {
	// Op is the operation, e.g. "delete".
	Op string `json:"op"`
	// Target names the resource.
	Target ObjectRef `json:"target"`
	// Reason explains the directive.
	Reason string `json:"reason,omitempty"`
}

// ObjectRef names one resource.
type ObjectRef struct {
	// APIVersion of the resource.
	APIVersion string `json:"apiVersion"`
	// Kind of the resource.
	Kind string `json:"kind"`
	// Name of the resource.
	Name string `json:"name"`
}

// ResultEvent is an informational event emitted in a Result.
type ResultEvent struct {
	// Type classifies the event.
	Type string `json:"type"`
	// Message is human-readable.
	Message string `json:"message"`
	// Attributes carry details.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ActionPlan is a proposed provider operation (display-only until approved).
type ActionPlan struct {
	// Name identifies the plan.
	Name string `json:"name"`
	// Provider is aws, azure, oci or gcp.
	Provider string `json:"provider"`
	// Action is the provider action, e.g. "assign-secondary-ip".
	Action string `json:"action"`
	// Target identifies what the action changes (e.g. nic, address).
	Target map[string]string `json:"target,omitempty"`
	// ProviderRef names the CloudProviderProfile.
	ProviderRef string `json:"providerRef,omitempty"`
	// Mode is e.g. "dry-run" or "execute".
	Mode string `json:"mode,omitempty"`
	// Description is human-readable.
	Description string `json:"description,omitempty"`
	// RiskLevel is low, medium or high.
	RiskLevel string `json:"riskLevel,omitempty"`
	// IdempotencyKey makes repeated execution safe.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Parameters are action arguments.
	Parameters map[string]string `json:"parameters,omitempty"`
	// Preconditions must hold before execution.
	Preconditions []Precondition `json:"preconditions,omitempty"`
	// ExpectedEffects describe the outcome.
	ExpectedEffects []string `json:"expectedEffects,omitempty"`
	// Undo is the inverse action.
	Undo *ActionUndo `json:"undo,omitempty"`
}

// Precondition is a check that must pass before a plan runs.
type Precondition struct {
	// Name of the check.
	Name string `json:"name"`
	// Expect is the expected value or state.
	Expect string `json:"expect,omitempty"`
	// Detail explains the check.
	Detail string `json:"detail,omitempty"`
	// Target is what is checked.
	Target string `json:"target,omitempty"`
}

// ActionUndo is the inverse of an action.
type ActionUndo struct {
	// Action is the inverse provider action.
	Action string `json:"action"`
	// Parameters are its arguments; empty means the plan's own Parameters.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// UndoPlan returns the plan that runs p's undo: its action with its parameters (the
// plan's own when it names none). ok is false when p has no undo.
func (p ActionPlan) UndoPlan() (undo ActionPlan, ok bool) {
	if p.Undo == nil || p.Undo.Action == "" {
		return p, false
	}
	undo = p
	undo.Action = p.Undo.Action
	if len(p.Undo.Parameters) > 0 {
		undo.Parameters = p.Undo.Parameters
	}
	return undo, true
}

// ActionResult reports the outcome of executing one plan.
type ActionResult struct {
	// Name is the plan name.
	Name string `json:"name"`
	// IdempotencyKey echoes the plan's key.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Outcome is ActionSucceeded, ActionFailed or ActionSkipped.
	Outcome string `json:"outcome"`
	// Message explains the outcome.
	Message string `json:"message,omitempty"`
	// Attributes carry details (e.g. provider request ids).
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ActionResult outcomes.
const (
	// ActionSucceeded: the action was applied.
	ActionSucceeded = "succeeded"
	// ActionFailed: the action failed.
	ActionFailed = "failed"
	// ActionSkipped: the action was not needed (preconditions already satisfied).
	ActionSkipped = "skipped"
)
