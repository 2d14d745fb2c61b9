//go:build !unix

package wasmbuild

// lockFile is a no-op where flock is unavailable: concurrent builds then race, which is
// still safe (atomic rename), only wasteful.
func lockFile(string) (func(), error) { return func() {}, nil }
