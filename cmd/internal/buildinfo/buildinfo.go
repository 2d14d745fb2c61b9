// Package buildinfo reports the version of the routerd binaries.
//
// Version is set at link time by the Makefile
// (-ldflags "-X routerd.net/routerd/cmd/internal/buildinfo.Version=...");
// without it the module version recorded by the Go toolchain is used.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, overridden at link time.
var Version = ""

// String returns a one-line description: program, version, Go version and platform.
func String(program string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", program, Get(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Get returns the version: the link-time value, else the module version, else "devel".
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
