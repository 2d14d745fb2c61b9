// Package schemas defines routerd's resource Kinds: their Go types, defaults, semantic and
// cross-reference validation, the Kind registry, strict loading of multi-document YAML
// config files, and the JSON Schema generated from the registry.
//
// Every Kind is a Kubernetes-style document (apiVersion, kind, metadata, spec) whose field
// names follow routerd v1alpha1 (see COMPAT.md). A Kind type embeds [TypeMeta], holds an
// [ObjectMeta] as Metadata and a Kind-specific Spec, and implements [Object].
//
// Loading happens in one pass per directory: [LoadDir], [LoadFiles] and [Decode] read
// bare resource documents or the original single `kind: Router` document with
// spec.resources[], decode them strictly (unknown fields, wrong types and failed checks
// are errors), apply defaults ([Object.SetDefaults]) and check references between
// resources. Every problem found is returned at once in an [*ErrorList]; each [Problem]
// names the file, line, document, Kind/name, field path and what is expected.
//
// The registry ([Kinds], [Lookup]) is the only list of Kinds: the decoder, the JSON Schema
// generator ([GenerateJSONSchema]) and routerctl enumerate it, so a new Kind cannot be
// forgotten by one of them.
package schemas
