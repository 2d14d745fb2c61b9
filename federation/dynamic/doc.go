// Package dynamic turns the output of subscription plugins into DynamicConfigParts and
// merges them into the desired state.
//
// For each resource a plugin proposes, the Manager (the subscription engine's Handler):
//
//  1. decodes it strictly, like a config document (schemas.DecodeObject);
//  2. refuses a Kind outside the subscription's output.allowedKinds;
//  3. refuses a resource that would override a static one (unless the policy says
//     dynamic-wins);
//  4. asks the DynamicOverridePolicy rules whether the source (EventSubscription/<name>)
//     may create or update that target and set those fields — deny by default;
//  5. stamps the resource with the annotations routerd.net/dynamic-source,
//     routerd.net/event-group, routerd.net/event-id and routerd.net/event-subject, wraps it
//     in a DynamicConfigPart with source, generation, TTL, expiresAt, mask and origin
//     event ids, and stores it in the dynamic_parts table.
//
// A refused resource is written to the audit log, counted
// (routerd_dynamic_parts_rejected_total{reason}) and logged; it is never stored. Parts are
// withdrawn when they expire (Run arms a timer for the earliest expiry), on a delete
// directive from the same source, or by an operator (Withdraw, `routerctl dynamic
// withdraw`). Merge combines the static resources with the live parts into the desired
// state the dataplane reconciles.
package dynamic
