package host

import (
	"fmt"
	"strconv"
	"strings"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/internal/wasmbin"
)

// A plugin built for another host, or against a newer routerd, imports functions routerd
// does not link. wazero refuses to instantiate it in its own words ("module[env] not
// instantiated", "\"f\" is not exported in module \"routerd\""), which name neither the
// import nor what to do; the host names the import instead.

// providedModules names the import modules routerd links, for error messages.
var providedModules = []string{abi.HostModule, abi.HostModuleDirect, "extism:host/env", "wasi_snapshot_preview1"}

// moduleImports returns the imports of module (nil when it has none or cannot be
// parsed: the compiler then reports what is wrong).
func moduleImports(module []byte) []wasmbin.Import {
	secs, err := wasmbin.Sections(module)
	if err != nil {
		return nil
	}
	for _, s := range secs {
		if s.ID == 2 { // import section
			imports, err := wasmbin.Imports(s.Payload)
			if err != nil {
				return nil
			}
			return imports
		}
	}
	return nil
}

// importProblem explains an instantiation error about an unresolved import of imports,
// naming the module and function; ok is false when err is about something else.
func importProblem(imports []wasmbin.Import, err error) (detail string, ok bool) {
	msg := err.Error()
	missing := func(im wasmbin.Import) string {
		return fmt.Sprintf("imports %s.%s, which routerd does not provide (routerd links modules %s; was the plugin built for another host or a newer routerd?)",
			im.Module, im.Name, strings.Join(providedModules, ", "))
	}
	for _, im := range imports {
		switch {
		case strings.Contains(msg, "module["+im.Module+"] not instantiated"):
			return missing(im), true
		case strings.Contains(msg, strconv.Quote(im.Name)+" is not exported in module "+strconv.Quote(im.Module)):
			return missing(im), true
		}
		for _, kind := range []string{"func", "table", "memory", "global", "tag"} {
			prefix := "import " + kind + "[" + im.Module + "." + im.Name + "]: "
			if _, reason, found := strings.Cut(msg, prefix); found {
				reason, _, _ = strings.Cut(reason, "\n")
				return fmt.Sprintf("imports %s.%s with a type routerd does not provide it with (%s)", im.Module, im.Name, reason), true
			}
		}
	}
	return "", false
}

// instantiateDetail describes why instantiating the version's module failed.
func (v *version) instantiateDetail(err error) string {
	if d, ok := importProblem(v.imports, err); ok {
		return d
	}
	return "instantiate: " + cleanWazeroError(err)
}
