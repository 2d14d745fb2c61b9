package routerd_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFuzzTargetsInMakefile finds every fuzz target (func FuzzX(*testing.F) in a _test.go
// file) in the repository and requires the Makefile's FUZZ_TARGETS to list each as
// package:FuzzX, and nothing else, so `make fuzz` (part of `make test`) cannot forget one.
func TestFuzzTargetsInMakefile(t *testing.T) {
	var found []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Fuzz") && ast.IsExported(fn.Name.Name) {
				found = append(found, filepath.ToSlash(filepath.Dir(path))+":"+fn.Name.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^FUZZ_TARGETS\s*:=\s*(.*)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("Makefile has no FUZZ_TARGETS := line")
	}
	listed := strings.Fields(string(m[1]))
	for _, target := range found {
		if !slices.Contains(listed, target) {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS: add it there so make fuzz runs it", target)
		}
	}
	for _, target := range listed {
		if !slices.Contains(found, target) {
			t.Errorf("the Makefile's FUZZ_TARGETS lists %s, which does not exist: remove or rename it", target)
		}
	}
	if len(found) == 0 {
		t.Fatal("found no fuzz targets: is the test running at the repository root?")
	}
}
