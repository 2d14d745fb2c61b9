package schemas

import (
	"fmt"
	"path"
	"strings"
)

// This file is the one name-pattern matcher of routerd: DynamicOverridePolicy sources and
// targets are matched with MatchName (package federation/dynamic), and validation accepts
// exactly the patterns it can use (CheckNamePattern).

// MatchName reports whether name matches pattern. An empty pattern matches nothing; "*"
// matches everything; otherwise the syntax is that of path.Match: '*' matches any run of
// characters other than '/', '?' one such character, '[...]' a character class ('[^...]'
// negated, ranges like a-z) and '\' escapes the next character. Anything without those
// characters matches only itself.
func MatchName(pattern, name string) bool {
	if pattern == "" {
		return false
	}
	if pattern == "*" || pattern == name {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// IsNamePattern reports whether s uses pattern syntax ('*', '?', '[' or '\'), that is
// whether MatchName treats it as more than a literal.
func IsNamePattern(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// CheckNamePattern returns an error saying what is wrong when MatchName cannot use
// pattern: it is empty or its syntax is malformed (an unclosed '[', a trailing '\', an
// empty class '[]').
func CheckNamePattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("empty pattern")
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%q is not a valid pattern: want *, ? and [...] classes like onprem-* or router-[ab] (an unclosed [, an empty [] or a trailing \\ is malformed)", pattern)
	}
	return nil
}
