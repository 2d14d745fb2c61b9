package abi

import (
	"errors"
	"fmt"
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
		return Version{}, fmt.Errorf("abi: parse version %q: want %q or %q: %w", s, ManifestVersion, RequestVersion, ErrMalformedVersion)
	}
	majorText, minorText, hasMinor := strings.Cut(rest, ".")
	major, err := parseVersionNumber(majorText)
	if err != nil {
		return Version{}, fmt.Errorf("abi: parse version %q: major: %w", s, err)
	}
	v := Version{Major: major}
	if hasMinor {
		minor, err := parseVersionNumber(minorText)
		if err != nil {
			return Version{}, fmt.Errorf("abi: parse version %q: minor: %w", s, err)
		}
		v.Minor = minor
	}
	return v, nil
}

// parseVersionNumber accepts a non-negative decimal without sign or leading zeros.
func parseVersionNumber(s string) (int, error) {
	if s == "" || len(s) > 6 {
		return 0, fmt.Errorf("%q is not a version number: %w", s, ErrMalformedVersion)
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero: %w", s, ErrMalformedVersion)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a version number: %w", s, ErrMalformedVersion)
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
		return v, fmt.Errorf("abi: plugin speaks %s/v%d but this host speaks %s (major versions must match): %w",
			Family, v.Major, ManifestVersion, ErrIncompatibleVersion)
	}
	return v, nil
}
