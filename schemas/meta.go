package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// TypeMeta names the Kind of a document: its API group and version, and the Kind.
type TypeMeta struct {
	// APIVersion is the API group and version of the Kind, for example
	// federation.routerd.net/v1alpha1.
	APIVersion string `json:"apiVersion" jsonschema:"required"`
	// Kind is the resource Kind, for example EventGroup.
	Kind string `json:"kind" jsonschema:"required"`
}

// GetAPIVersion returns the document's apiVersion.
func (t *TypeMeta) GetAPIVersion() string { return t.APIVersion }

// GetKind returns the document's kind.
func (t *TypeMeta) GetKind() string { return t.Kind }

// ObjectMeta is the metadata every resource carries.
type ObjectMeta struct {
	// Name identifies the resource among the resources of its Kind: lowercase letters,
	// digits, '-' and '.', starting and ending with a letter or digit, at most 253
	// characters.
	Name string `json:"name" jsonschema:"required"`
	// Labels are free-form key/value pairs for selection and display.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are free-form key/value pairs for tools, for example
	// routerd.net/dynamic-source on resources produced by plugins.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Object is implemented by every resource Kind.
type Object interface {
	// GetAPIVersion returns the document's apiVersion.
	GetAPIVersion() string
	// GetKind returns the document's kind.
	GetKind() string
	// GetName returns metadata.name.
	GetName() string
	// GetMeta returns the metadata for reading and changing.
	GetMeta() *ObjectMeta
	// SetDefaults fills every unset field that has a default. It is idempotent.
	SetDefaults()
	// validate records the semantic problems of this resource alone (no references).
	validate(c *checker)
}

// Duration is a time.Duration written as a Go duration string such as 200ms, 30s, 5m or
// 1h30m in YAML and JSON.
type Duration struct {
	time.Duration
}

// Dur returns d as a Duration.
func Dur(d time.Duration) Duration { return Duration{d} }

// String returns the duration in Go syntax, for example 5m0s.
func (d Duration) String() string { return d.Duration.String() }

// IsZero reports whether the duration is unset (zero); used by omitzero.
func (d Duration) IsZero() bool { return d.Duration == 0 }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(formatDuration(d.Duration)) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like 30s or 5m: %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// JSONSchema describes Duration in the generated JSON Schema.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     durationPattern,
		Description: "A duration such as 200ms, 30s, 5m or 1h30m (Go duration syntax).",
	}
}

// durationPattern matches what ParseDuration accepts (unsigned Go durations).
const durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`

// ParseDuration parses an unsigned Go duration string such as 30s or 1h30m.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("duration %q: want an unsigned duration like 30s or 5m", s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a duration like 200ms, 30s, 5m or 1h30m", s)
	}
	return v, nil
}

// formatDuration writes d compactly: 5m rather than 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// CommandLine is a command to run: the string form of routerd v1alpha1
// (command: "/usr/local/bin/cred --profile lab") or a list of the program and its
// arguments (command: [/usr/local/bin/cred, --profile, lab]). It encodes in the form it
// was written in.
type CommandLine struct {
	// Line is the string form ("" when the list form is used).
	Line string
	// Argv is the list form (nil when the string form is used).
	Argv []string
}

// IsList reports whether the command was written as a list.
func (c CommandLine) IsList() bool { return c.Argv != nil }

// String returns the command for messages: the string form, or the list joined by
// spaces.
func (c CommandLine) String() string {
	if c.IsList() {
		return strings.Join(c.Argv, " ")
	}
	return c.Line
}

// MarshalJSON writes the command in the form it was written in.
func (c CommandLine) MarshalJSON() ([]byte, error) {
	if c.IsList() {
		return json.Marshal(c.Argv)
	}
	return json.Marshal(c.Line)
}

// UnmarshalJSON reads a string or a list of strings.
func (c *CommandLine) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var argv []string
		if err := json.Unmarshal(b, &argv); err != nil {
			return fmt.Errorf("command: want a string or a list of strings: %w", err)
		}
		*c = CommandLine{Argv: append([]string{}, argv...)}
		return nil
	}
	var line string
	if err := json.Unmarshal(b, &line); err != nil {
		return fmt.Errorf("command: want a string or a list of strings: %w", err)
	}
	*c = CommandLine{Line: line}
	return nil
}

// JSONSchema describes CommandLine in the generated JSON Schema: a string or a list.
func (CommandLine) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "string", MinLength: ptrUint64(1)},
			{Type: "array", Items: &jsonschema.Schema{Type: "string", MinLength: ptrUint64(1)}, MinItems: ptrUint64(1)},
		},
		Description: "A command: a string (as routerd v1alpha1 writes it) or a list of the program and its arguments.",
	}
}

func ptrUint64(v uint64) *uint64 { return &v }

// ResourceRef names one resource by apiVersion, kind and name.
type ResourceRef struct {
	// APIVersion of the referenced resource.
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the referenced resource.
	Kind string `json:"kind" jsonschema:"required"`
	// Name of the referenced resource; empty means every resource of the Kind.
	Name string `json:"name,omitempty"`
}

// String returns apiVersion/kind/name, leaving out empty parts.
func (r ResourceRef) String() string {
	var parts []string
	for _, p := range []string{r.APIVersion, r.Kind, r.Name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

// Resource is a complete resource document embedded in another one (for example the
// resources of a DynamicConfigPart). It holds the decoded Kind.
type Resource struct {
	// Object is the decoded resource; nil for an empty Resource.
	Object Object
}

// MarshalJSON writes the embedded document.
func (r Resource) MarshalJSON() ([]byte, error) {
	if r.Object == nil {
		return []byte("null"), nil
	}
	return json.Marshal(r.Object)
}

// UnmarshalJSON decodes the embedded document strictly with DecodeObject.
func (r *Resource) UnmarshalJSON(b []byte) error {
	obj, err := DecodeObject(b)
	if err != nil {
		return err
	}
	r.Object = obj
	return nil
}

// JSONSchema refers to the Resource definition: any registered Kind.
func (Resource) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Ref: "#/$defs/" + resourceDef}
}

// resourceDef is the JSON Schema definition of "any registered Kind".
const resourceDef = "Resource"
