package abi

import (
	"errors"
	"strconv"
	"strings"
)

// Version strings and numbers of the ABI implemented by this package.
const (
	// Family is the prefix of every ABI version string.
	Family = "routerd.plugin"
	// Major is the ABI major version. Host and plugin must agree on it exactly.
	Major = 1
	// Minor is the ABI minor version. A newer minor only adds optional fields, so a
	// receiver accepts any minor of its own major and ignores fields it does not know.
	Minor = 0
	// ManifestVersion is the value of Manifest.ABI declared by v1 plugins.
	ManifestVersion = "routerd.plugin/v1"
	// RequestVersion is the value of Request.ABI sent by this host ("major.minor").
	RequestVersion = "routerd.plugin/v1.0"
)

// Errors returned by ParseVersion and CheckCompatible. Test with errors.Is.
var (
	// ErrMalformedVersion means an ABI version string is not "routerd.plugin/vMAJOR[.MINOR]".
	ErrMalformedVersion = errors.New("malformed ABI version")
	// ErrIncompatibleVersion means the ABI major version differs from Major.
	ErrIncompatibleVersion = errors.New("incompatible ABI major version")
)

// wrapError is an error with a message that wraps a sentinel. The version functions use it
// instead of fmt.Errorf because guests call them, and fmt would add reflection and about
// half a megabyte to every plugin module.
type wrapError struct {
	msg string
	err error
}

// Error returns the message followed by the sentinel's text.
func (e *wrapError) Error() string { return e.msg + ": " + e.err.Error() }

// Unwrap returns the sentinel, for errors.Is.
func (e *wrapError) Unwrap() error { return e.err }

// Version is a parsed ABI version.
type Version struct {
	// Major is the major version; different majors are incompatible.
	Major int
	// Minor is the minor version; 0 when the string gave only a major.
	Minor int
}

// Current is the ABI version implemented by this package.
var Current = Version{Major: Major, Minor: Minor}

// String returns the version in its long "routerd.plugin/vMAJOR.MINOR" form.
func (v Version) String() string {
	return Family + "/v" + strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor)
}

// ParseVersion parses "routerd.plugin/v1" or "routerd.plugin/v1.2". Leading and trailing
// spaces are ignored; numbers must be decimal without leading zeros or signs.
//
// # Errors
//
// The error wraps ErrMalformedVersion and quotes the offending string.
func ParseVersion(s string) (Version, error) {
	t := strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(t, Family+"/v")
	if !ok {
		return Version{}, &wrapError{"abi: parse version " + strconv.Quote(s) + ": want " + strconv.Quote(ManifestVersion) +
			" or " + strconv.Quote(RequestVersion), ErrMalformedVersion}
	}
	majorText, minorText, hasMinor := strings.Cut(rest, ".")
	major, err := parseVersionNumber(majorText)
	if err != nil {
		return Version{}, &wrapError{"abi: parse version " + strconv.Quote(s) + ": major", err}
	}
	v := Version{Major: major}
	if hasMinor {
		minor, err := parseVersionNumber(minorText)
		if err != nil {
			return Version{}, &wrapError{"abi: parse version " + strconv.Quote(s) + ": minor", err}
		}
		v.Minor = minor
	}
	return v, nil
}

// parseVersionNumber accepts a non-negative decimal without sign or leading zeros.
func parseVersionNumber(s string) (int, error) {
	if s == "" || len(s) > 6 {
		return 0, &wrapError{strconv.Quote(s) + " is not a version number", ErrMalformedVersion}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, &wrapError{strconv.Quote(s) + " has a leading zero", ErrMalformedVersion}
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, &wrapError{strconv.Quote(s) + " is not a version number", ErrMalformedVersion}
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// CheckCompatible parses s and reports whether this ABI can talk to it: the major version
// must equal Major; any minor is accepted (unknown fields of a newer minor are ignored).
//
// # Errors
//
// ErrMalformedVersion when s does not parse; ErrIncompatibleVersion, naming both versions,
// when the major differs.
func CheckCompatible(s string) (Version, error) {
	v, err := ParseVersion(s)
	if err != nil {
		return Version{}, err
	}
	if v.Major != Major {
		return v, &wrapError{"abi: plugin speaks " + Family + "/v" + strconv.Itoa(v.Major) + " but this host speaks " +
			ManifestVersion + " (major versions must match)", ErrIncompatibleVersion}
	}
	return v, nil
}
