package schemas

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity of a Problem.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Codes of warnings: a short stable name per kind of warning, for filtering and counting.
const (
	// WarnSkippedKind: a document of a Kind this routerd does not provide was skipped
	// (LoadOptions.SkipUnknownKinds).
	WarnSkippedKind = "skipped-kind"
	// WarnIgnoredField: a field this routerd does not know was ignored, in a file written
	// in the kind: Router form of routerd v1alpha1.
	WarnIgnoredField = "ignored-field"
	// WarnGroupWithoutAuth: an EventGroup has no secret (spec.auth); routerd-eventd does
	// not start transport for it.
	WarnGroupWithoutAuth = "group-without-auth"
)

// Problem is one thing wrong (or, as a warning, accepted but worth fixing) in a config
// file. Errors and warnings share this type; Severity tells them apart, and a warning
// has a Code.
type Problem struct {
	// File is the file the problem is in ("" for objects built in memory).
	File string `json:"file,omitempty"`
	// Line is the 1-based line of the offending value (0 when unknown).
	Line int `json:"line,omitempty"`
	// Document is the 1-based YAML document number in File (0 when unknown).
	Document int `json:"document,omitempty"`
	// Kind of the resource, when known.
	Kind string `json:"kind,omitempty"`
	// Name of the resource, when known.
	Name string `json:"name,omitempty"`
	// Path is the field path inside the resource, for example spec.listen.port.
	Path string `json:"path,omitempty"`
	// Message says what is wrong and what is expected.
	Message string `json:"message"`
	// Severity is error or warning.
	Severity string `json:"severity"`
	// Code names the kind of a warning (WarnSkippedKind, WarnIgnoredField,
	// WarnGroupWithoutAuth); empty for errors.
	Code string `json:"code,omitempty"`
}

// String formats the problem as file:line: Kind/name: path: message.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		switch {
		case p.Line > 0:
			fmt.Fprintf(&b, ":%d", p.Line)
		case p.Document > 0:
			fmt.Fprintf(&b, ": document %d", p.Document)
		}
		b.WriteString(": ")
	}
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if p.Kind != "" {
		b.WriteString(p.Kind)
		if p.Name != "" {
			b.WriteString("/" + p.Name)
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ErrorList is the error of a failed load: every problem found, sorted by file and line.
// Use errors.As to get it from an error returned by this package.
type ErrorList struct {
	// Problems are the errors found (never warnings).
	Problems []Problem
	// Warnings are the warnings found alongside the errors, so that a failed load still
	// reports them.
	Warnings []Problem
}

// Error lists every problem, one per line.
func (e *ErrorList) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by file, line, document and message.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			strings.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Document, b.Document),
		)
	})
}
