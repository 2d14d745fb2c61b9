package schemas

import "time"

// DynamicConfigPart is a piece of desired config proposed at run time (by a subscription
// plugin or the CLI), with an owner (source), a TTL and a mask saying which fields it may
// touch.
type DynamicConfigPart struct {
	TypeMeta `json:",inline"`
	// Metadata names the part.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the part.
	Spec DynamicConfigPartSpec `json:"spec" jsonschema:"required"`
}

// DynamicConfigPartSpec is one dynamic config part.
type DynamicConfigPartSpec struct {
	// Source is the owner of the part, Kind/name, for example EventSubscription/claims.
	Source string `json:"source" jsonschema:"required"`
	// Generation increases each time the owner replaces the part.
	Generation int64 `json:"generation,omitempty" jsonschema:"minimum=0"`
	// TTL is how long the part stays valid after it was produced.
	TTL Duration `json:"ttl,omitzero"`
	// ExpiresAt is when the part stops applying (RFC 3339).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Resources are the proposed resources, complete Kind documents.
	Resources []Resource `json:"resources,omitempty"`
	// Mask lists the field paths the part may set.
	Mask *PartMask `json:"mask,omitempty"`
	// Events are the ids of the events the part was produced from.
	Events []string `json:"events,omitempty"`
}

// PartMask lists the field paths a dynamic part may touch.
type PartMask struct {
	// Fields are field paths such as spec.address or spec.delivery.peerRef; a trailing
	// .* covers a whole subtree.
	Fields []string `json:"fields,omitempty"`
}

// DynamicOverridePolicy says which owners may propose which Kinds, resources and fields,
// and how conflicts between static config and dynamic parts resolve.
type DynamicOverridePolicy struct {
	TypeMeta `json:",inline"`
	// Metadata names the policy.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the policy.
	Spec DynamicOverridePolicySpec `json:"spec" jsonschema:"required"`
}

// DynamicOverridePolicySpec configures the override policy.
type DynamicOverridePolicySpec struct {
	// Allow lists what each source may do; anything not allowed is refused.
	Allow []OverrideAllow `json:"allow,omitempty"`
	// ConflictResolution decides between a static resource and a dynamic part of the
	// same Kind and name: static-wins or dynamic-wins (default static-wins).
	ConflictResolution string `json:"conflictResolution,omitempty" jsonschema:"enum=static-wins,enum=dynamic-wins"`
}

// OverrideAllow allows one source some operations on some targets.
type OverrideAllow struct {
	// Source is the owner, Kind/name, for example EventSubscription/claims;
	// EventSubscription/* matches every subscription.
	Source string `json:"source" jsonschema:"required"`
	// Operations are create, update, delete (default create and update).
	Operations []string `json:"operations,omitempty" jsonschema:"enum=create,enum=update,enum=delete"`
	// Targets are the resources the source may touch; an empty name means every resource
	// of the Kind.
	Targets []ResourceRef `json:"targets" jsonschema:"required,minItems=1"`
	// Fields are the field paths the source may set (empty: the whole spec).
	Fields []string `json:"fields,omitempty"`
}
