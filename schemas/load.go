package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultMaxFileBytes is the largest config file read by default.
const DefaultMaxFileBytes = 8 << 20

// LoadOptions tune loading. The zero value is the strict default.
type LoadOptions struct {
	// SkipUnknownKinds skips, with a warning in Config.Warnings, documents whose Kind is
	// one routerd does not provide and that does not belong to one of routerd's API groups (for
	// example the original's Interface or BGP). Unknown Kinds in routerd's own API groups
	// are always errors.
	SkipUnknownKinds bool
	// MaxFileBytes is the largest file accepted (default DefaultMaxFileBytes).
	MaxFileBytes int64
}

// LoadDir loads every *.yaml, *.yml and *.json file of dir (not recursive, hidden files
// ignored) with the default options.
func LoadDir(dir string) (*Config, error) { return LoadOptions{}.Load(dir) }

// LoadFiles loads the given files with the default options.
func LoadFiles(paths ...string) (*Config, error) { return LoadOptions{}.Load(paths...) }

// Decode loads one file's content; filename is used in problems only.
func Decode(filename string, data []byte) (*Config, error) {
	return LoadOptions{}.Decode(filename, data)
}

// Load loads files and directories (a directory contributes its *.yaml, *.yml and *.json
// files, sorted) into one Config and checks references across all of them.
//
// # Errors
//
// Every problem of every file is collected: the error is an *ErrorList (use errors.As)
// unless a path cannot be read at all, which is also reported as a Problem of that path.
// The returned Config is nil when there is any error.
func (o LoadOptions) Load(paths ...string) (*Config, error) {
	b := newBuilder(o)
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			b.fileProblem(p, "cannot read: %v", unwrapPathError(err))
			continue
		}
		if !st.IsDir() {
			b.readFile(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			b.fileProblem(p, "cannot read directory: %v", unwrapPathError(err))
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") || !isConfigFile(name) {
				continue
			}
			b.readFile(filepath.Join(p, name))
		}
	}
	return b.finish()
}

// Decode loads one file's content with these options.
func (o LoadOptions) Decode(filename string, data []byte) (*Config, error) {
	b := newBuilder(o)
	b.decodeFile(filename, data)
	return b.finish()
}

func isConfigFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// DecodeObject strictly decodes exactly one JSON or YAML resource document (used for
// plugin outputs), applies defaults and validates it alone (no references). The error is
// an *ErrorList.
func DecodeObject(data []byte) (Object, error) {
	b := newBuilder(LoadOptions{})
	var docs []*yaml.Node
	for _, n := range b.parseDocuments("", data) {
		if n != nil {
			docs = append(docs, n)
		}
	}
	if len(b.problems) == 0 && len(docs) != 1 {
		b.fileProblem("", "want exactly one resource document, got %d", len(docs))
	}
	if len(b.problems) > 0 {
		return nil, &ErrorList{Problems: b.problems}
	}
	d := newDocContext("", 1, b.opts)
	obj := b.decodeTop(d, docs[0])
	if len(d.problems) > 0 || obj == nil {
		if len(d.problems) == 0 {
			d.errorf(docs[0].Line, "", "not a resource document")
		}
		return nil, &ErrorList{Problems: d.problems}
	}
	return obj, nil
}

// entry is one loaded resource and where it came from.
type entry struct {
	obj Object
	ctx *docContext
	ok  bool // decoded and validated without problems
}

// builder accumulates the resources and problems of a load.
type builder struct {
	opts     LoadOptions
	entries  []*entry
	problems []Problem
	warnings []Problem
}

func newBuilder(o LoadOptions) *builder {
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	return &builder{opts: o}
}

func (b *builder) fileProblem(file, format string, args ...any) {
	b.problems = append(b.problems, Problem{File: file, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
}

func (b *builder) readFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		b.fileProblem(path, "cannot read: %v", unwrapPathError(err))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, b.opts.MaxFileBytes+1))
	if err != nil {
		b.fileProblem(path, "cannot read: %v", unwrapPathError(err))
		return
	}
	if int64(len(data)) > b.opts.MaxFileBytes {
		b.fileProblem(path, "file larger than %d bytes", b.opts.MaxFileBytes)
		return
	}
	b.decodeFile(path, data)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// parseDocuments splits data into YAML document nodes (the content of each document),
// skipping empty documents. A syntax error is recorded and ends the file.
func (b *builder) parseDocuments(file string, data []byte) []*yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for n := 1; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			p := Problem{File: file, Document: n, Message: "invalid YAML: " + err.Error(), Severity: SeverityError}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				p.Line, _ = strconv.Atoi(m[1])
				p.Message = "invalid YAML: " + strings.TrimPrefix(err.Error(), m[0])
			}
			p.Message = strings.TrimPrefix(p.Message, "invalid YAML: yaml: ")
			if !strings.HasPrefix(p.Message, "invalid YAML") {
				p.Message = "invalid YAML: " + p.Message
			}
			b.problems = append(b.problems, p)
			return docs
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			docs = append(docs, nil) // keep document numbering
			continue
		}
		docs = append(docs, doc.Content[0])
	}
}

// decodeFile decodes every document of one file.
func (b *builder) decodeFile(file string, data []byte) {
	for i, n := range b.parseDocuments(file, data) {
		if n == nil {
			continue
		}
		d := newDocContext(file, i+1, b.opts)
		if kind, _ := scalarValue(n, "kind"); kind == RouterKind {
			b.decodeRouter(d, n)
			continue
		}
		b.add(d, b.decodeTop(d, n))
	}
}

// decodeTop decodes one resource document, then applies defaults and validates it when
// it decoded cleanly.
func (b *builder) decodeTop(d *docContext, n *yaml.Node) Object {
	obj := d.decodeResource(n, "")
	if obj == nil || len(d.problems) > 0 {
		return obj
	}
	obj.SetDefaults()
	c := newChecker()
	validateObject(obj, c)
	d.report(c)
	return obj
}

// routerDoc is the original whole-router document; only spec.resources is read.
func (b *builder) decodeRouter(d *docContext, n *yaml.Node) {
	d.kind = RouterKind
	d.name, _ = scalarValue(mappingValue(n, "metadata"), "name")
	if av, avNode := scalarValue(n, "apiVersion"); av != RouterAPIVersion {
		d.errorf(lineOr(avNode, n), "apiVersion", "a Router document has apiVersion %s, got %q", RouterAPIVersion, av)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch {
		case seen[k.Value]:
			d.errorf(k.Line, k.Value, "field given twice")
		case k.Value == "metadata":
			var meta ObjectMeta
			d.decodeValue(n.Content[i+1], reflect.ValueOf(&meta).Elem(), "metadata", nil)
		case k.Value == "apiVersion", k.Value == "kind", k.Value == "spec":
		default:
			d.errorf(k.Line, k.Value, "unknown field; want one of: apiVersion, kind, metadata, spec")
		}
		seen[k.Value] = true
	}
	spec := mappingValue(n, "spec")
	var resources *yaml.Node
	switch {
	case spec == nil || isNull(spec):
		d.errorf(n.Line, "spec", "missing required field")
	case spec.Kind != yaml.MappingNode:
		d.errorf(spec.Line, "spec", "want a mapping, got %s", nodeKind(spec))
	default:
		for i := 0; i+1 < len(spec.Content); i += 2 {
			if k := spec.Content[i]; k.Value != "resources" {
				d.errorf(k.Line, "spec."+k.Value, "unknown field; want one of: resources")
			}
		}
		resources = mappingValue(spec, "resources")
		if resources != nil && !isNull(resources) && resources.Kind != yaml.SequenceNode {
			d.errorf(resources.Line, "spec.resources", "want a list, got %s", nodeKind(resources))
			resources = nil
		}
	}
	b.problems = append(b.problems, d.problems...)
	b.warnings = append(b.warnings, d.warnings...)
	if resources == nil {
		return
	}
	for _, r := range resources.Content {
		rd := newDocContext(d.file, d.doc, b.opts)
		rd.routerForm = true
		b.add(rd, b.decodeTop(rd, r))
	}
}

// add records the outcome of one resource document.
func (b *builder) add(d *docContext, obj Object) {
	b.problems = append(b.problems, d.problems...)
	b.warnings = append(b.warnings, d.warnings...)
	if obj != nil {
		b.entries = append(b.entries, &entry{obj: obj, ctx: d, ok: len(d.problems) == 0})
	}
}

// finish checks duplicates and references and returns the Config or the problems.
func (b *builder) finish() (*Config, error) {
	cfg := newConfig()
	cfg.Warnings = b.warnings
	for _, e := range b.entries {
		kind, name := e.obj.GetKind(), e.obj.GetName()
		if name == "" {
			continue
		}
		if prev, dup := cfg.byKind[kind][name]; dup {
			pe := cfg.entries[prev]
			e.ctx.errorf(e.ctx.lineOf("metadata.name"), "metadata.name", "duplicate %s %q: first defined at %s", kind, name, pe.ctx.position("metadata.name"))
			b.problems = append(b.problems, e.ctx.problems[len(e.ctx.problems)-1])
			continue
		}
		cfg.addEntry(e)
	}
	b.problems = append(b.problems, cfg.checkRefs()...)
	sortProblems(b.problems)
	sortProblems(cfg.Warnings)
	if len(b.problems) > 0 {
		return nil, &ErrorList{Problems: b.problems, Warnings: cfg.Warnings}
	}
	return cfg, nil
}

// position formats where path of this document is, file:line.
func (d *docContext) position(path string) string {
	if d.file == "" {
		return fmt.Sprintf("document %d", d.doc)
	}
	return fmt.Sprintf("%s:%d", d.file, d.lineOf(path))
}

// sortedObjects returns objs sorted by name.
func sortedObjects[T Object](objs []T) []T {
	slices.SortFunc(objs, func(a, b T) int { return strings.Compare(a.GetName(), b.GetName()) })
	return objs
}
