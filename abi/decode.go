package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidDocument is wrapped by every decoding and validation error of this package.
var ErrInvalidDocument = errors.New("invalid plugin document")

// Validate checks a manifest: name and version set, a compatible ABI, at least one hook,
// only known hooks and capabilities, no duplicates.
//
// # Errors
//
// Errors wrap ErrInvalidDocument, or ErrIncompatibleVersion / ErrMalformedVersion for the
// abi field; all problems are joined into one error.
func (m *Manifest) Validate() error {
	var errs []error
	if strings.TrimSpace(m.Name) == "" {
		errs = append(errs, fmt.Errorf("abi: manifest: name is empty: %w", ErrInvalidDocument))
	}
	if strings.TrimSpace(m.Version) == "" {
		errs = append(errs, fmt.Errorf("abi: manifest %q: version is empty: %w", m.Name, ErrInvalidDocument))
	}
	if _, err := CheckCompatible(m.ABI); err != nil {
		errs = append(errs, fmt.Errorf("abi: manifest %q: field abi: %w", m.Name, err))
	}
	if len(m.Hooks) == 0 {
		errs = append(errs, fmt.Errorf("abi: manifest %q: hooks is empty (want some of %v): %w", m.Name, Hooks(), ErrInvalidDocument))
	}
	seenHook := map[Hook]bool{}
	for i, h := range m.Hooks {
		switch {
		case !h.Valid():
			errs = append(errs, fmt.Errorf("abi: manifest %q: hooks[%d]: unknown hook %q (want one of %v): %w", m.Name, i, h, Hooks(), ErrInvalidDocument))
		case seenHook[h]:
			errs = append(errs, fmt.Errorf("abi: manifest %q: hooks[%d]: duplicate hook %q: %w", m.Name, i, h, ErrInvalidDocument))
		}
		seenHook[h] = true
	}
	seenCap := map[Capability]bool{}
	for i, c := range m.Capabilities {
		switch {
		case !c.Known():
			errs = append(errs, fmt.Errorf("abi: manifest %q: capabilities[%d]: unknown capability %q: %w", m.Name, i, c, ErrInvalidDocument))
		case seenCap[c]:
			errs = append(errs, fmt.Errorf("abi: manifest %q: capabilities[%d]: duplicate capability %q: %w", m.Name, i, c, ErrInvalidDocument))
		}
		seenCap[c] = true
	}
	return errors.Join(errs...)
}

// DecodeManifest decodes and validates the output of routerd_manifest. Unknown fields are
// ignored (a newer minor may add them).
//
// # Errors
//
// See Manifest.Validate; malformed JSON wraps ErrInvalidDocument.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := decodeObject(data, &m); err != nil {
		return nil, fmt.Errorf("abi: decode manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// DecodeRequest decodes a PluginRequest and checks its apiVersion, kind and ABI version.
// Unknown fields are ignored.
//
// # Errors
//
// Malformed JSON or a wrong apiVersion/kind wrap ErrInvalidDocument; the abi field must
// pass CheckCompatible.
func DecodeRequest(data []byte) (*Request, error) {
	var r Request
	if err := decodeObject(data, &r); err != nil {
		return nil, fmt.Errorf("abi: decode request: %w", err)
	}
	if r.APIVersion != PluginAPIVersion || r.Kind != KindPluginRequest {
		return nil, fmt.Errorf("abi: decode request: got apiVersion %q kind %q, want %q %q: %w",
			r.APIVersion, r.Kind, PluginAPIVersion, KindPluginRequest, ErrInvalidDocument)
	}
	if _, err := CheckCompatible(r.ABI); err != nil {
		return nil, fmt.Errorf("abi: decode request: field abi: %w", err)
	}
	return &r, nil
}

// DecodeResult decodes a PluginResult returned by a hook. apiVersion and kind are optional
// but must be the PluginResult ones when present; every resource must be a JSON object
// and every directive, plan and action result must name what it is about. Unknown fields
// are ignored.
//
// # Errors
//
// Every failure wraps ErrInvalidDocument and names the offending field.
func DecodeResult(data []byte) (*Result, error) {
	var r Result
	if err := decodeObject(data, &r); err != nil {
		return nil, fmt.Errorf("abi: decode result: %w", err)
	}
	if r.APIVersion != "" && r.APIVersion != PluginAPIVersion {
		return nil, fmt.Errorf("abi: decode result: apiVersion %q, want %q: %w", r.APIVersion, PluginAPIVersion, ErrInvalidDocument)
	}
	if r.Kind != "" && r.Kind != KindPluginResult {
		return nil, fmt.Errorf("abi: decode result: kind %q, want %q: %w", r.Kind, KindPluginResult, ErrInvalidDocument)
	}
	st := &r.Status
	for i, res := range st.Resources {
		if t := bytes.TrimSpace(res); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("abi: decode result: status.resources[%d]: not a JSON object: %w", i, ErrInvalidDocument)
		}
	}
	for i, d := range st.Directives {
		if d.Op == "" || d.Target.Kind == "" || d.Target.Name == "" {
			return nil, fmt.Errorf("abi: decode result: status.directives[%d]: op, target.kind and target.name are required: %w", i, ErrInvalidDocument)
		}
	}
	for i, p := range st.ActionPlans {
		if p.Name == "" || p.Provider == "" || p.Action == "" {
			return nil, fmt.Errorf("abi: decode result: status.actionPlans[%d]: name, provider and action are required: %w", i, ErrInvalidDocument)
		}
	}
	for i, a := range st.ActionResults {
		switch a.Outcome {
		case ActionSucceeded, ActionFailed, ActionSkipped:
		default:
			return nil, fmt.Errorf("abi: decode result: status.actionResults[%d]: outcome %q, want %s|%s|%s: %w",
				i, a.Outcome, ActionSucceeded, ActionFailed, ActionSkipped, ErrInvalidDocument)
		}
	}
	return &r, nil
}

// decodeObject decodes one JSON object into v; json.Unmarshal rejects trailing data.
func decodeObject(data []byte, v any) error {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("not a JSON object: %w", ErrInvalidDocument)
	}
	if err := json.Unmarshal(t, v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	return nil
}
