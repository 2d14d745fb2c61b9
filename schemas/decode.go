package schemas

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// This file decodes YAML nodes into Kind structs strictly, walking the node tree and the
// Go type together so that every problem carries the line and the field path.

var (
	durationType = reflect.TypeFor[Duration]()
	commandType  = reflect.TypeFor[CommandLine]()
	timeType     = reflect.TypeFor[time.Time]()
	resourceType = reflect.TypeFor[Resource]()
)

// docContext collects the problems and field lines of one YAML document.
type docContext struct {
	file string
	doc  int
	kind string
	name string
	opts LoadOptions
	// routerForm is set for the resources of a kind: Router file (routerd v1alpha1's
	// form): unknown fields there are warnings, as routerd v1alpha1 ignores them.
	routerForm bool
	lines      map[string]int // field path -> line of its value
	problems   []Problem
	warnings   []Problem
	budget     int // node visits left; aliases cannot make decoding explode
}

// Limits of one document.
const (
	maxNodeVisits      = 1 << 18
	maxProblemsPerFile = 200
)

func newDocContext(file string, doc int, opts LoadOptions) *docContext {
	return &docContext{file: file, doc: doc, opts: opts, lines: map[string]int{}, budget: maxNodeVisits}
}

// errorf records an error at line for path.
func (d *docContext) errorf(line int, path, format string, args ...any) {
	if len(d.problems) == maxProblemsPerFile {
		d.problems = append(d.problems, Problem{File: d.file, Line: line, Document: d.doc, Kind: d.kind, Name: d.name,
			Message: "too many problems; the rest of this document is not reported", Severity: SeverityError})
	}
	if len(d.problems) > maxProblemsPerFile {
		return
	}
	d.problems = append(d.problems, Problem{
		File: d.file, Line: line, Document: d.doc, Kind: d.kind, Name: d.name,
		Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityError,
	})
}

// warnf records a warning with code at line for path.
func (d *docContext) warnf(line int, path, code, format string, args ...any) {
	d.warnings = append(d.warnings, Problem{
		File: d.file, Line: line, Document: d.doc, Kind: d.kind, Name: d.name,
		Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityWarning, Code: code,
	})
}

// lineOf returns the line of path, or of its nearest recorded parent.
func (d *docContext) lineOf(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.lines[""]
		}
		path = path[:i]
	}
}

func joinPath(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// fieldInfo describes one JSON field of a struct type.
type fieldInfo struct {
	name     string
	index    []int
	required bool
	enum     []string
	min, max *int64
	minItems int
}

// structFields returns the JSON fields of struct type t, inlined embedded structs
// included, in declaration order.
func structFields(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(slices.Clone(index), i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fi := fieldInfo{name: name, index: idx}
			for _, tag := range strings.Split(f.Tag.Get("jsonschema"), ",") {
				k, v, _ := strings.Cut(tag, "=")
				switch k {
				case "required":
					fi.required = true
				case "enum":
					fi.enum = append(fi.enum, v)
				case "minimum":
					n, _ := strconv.ParseInt(v, 10, 64)
					fi.min = &n
				case "maximum":
					n, _ := strconv.ParseInt(v, 10, 64)
					fi.max = &n
				case "minItems":
					fi.minItems, _ = strconv.Atoi(v)
				}
			}
			out = append(out, fi)
		}
	}
	walk(t, nil)
	fieldCache.Store(t, out)
	return out
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

// nodeKind names what a node holds, for messages.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %s", n.ShortTag(), n.Value)
	}
	return "an unexpected YAML node"
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// resolveAlias follows YAML aliases.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// decodeValue decodes n into v (settable), recording problems under path. fi carries the
// checks of the struct field being decoded (nil outside struct fields).
func (d *docContext) decodeValue(n *yaml.Node, v reflect.Value, path string, fi *fieldInfo) {
	n = resolveAlias(n)
	if d.budget--; d.budget == 0 {
		d.errorf(n.Line, path, "document too large: more than %d values (aliases included)", maxNodeVisits)
	}
	if d.budget <= 0 {
		return
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if isNull(n) {
		return
	}
	t := v.Type()
	switch t {
	case durationType:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.errorf(n.Line, path, "want a duration like 30s or 5m, got %s", nodeKind(n))
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.errorf(n.Line, path, "want a duration like 200ms, 30s, 5m or 1h30m, got %q", n.Value)
			return
		}
		v.Set(reflect.ValueOf(Duration{dur}))
		return
	case timeType:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "want an RFC 3339 time like 2026-01-02T15:04:05Z, got %s", nodeKind(n))
			return
		}
		ts, err := time.Parse(time.RFC3339Nano, n.Value)
		if err != nil {
			d.errorf(n.Line, path, "want an RFC 3339 time like 2026-01-02T15:04:05Z, got %q", n.Value)
			return
		}
		v.Set(reflect.ValueOf(ts))
		return
	case commandType:
		d.decodeCommand(n, v, path)
		return
	case resourceType:
		obj := d.decodeResource(n, path)
		if obj != nil {
			v.Set(reflect.ValueOf(Resource{Object: obj}))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decodeValue(n, p.Elem(), path, fi)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "want a list, got %s", nodeKind(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decodeValue(item, s.Index(i), indexPath(path, i), fi)
		}
		v.Set(s)
		if fi != nil && fi.minItems > 0 && len(n.Content) < fi.minItems {
			d.errorf(n.Line, path, "want at least %d item(s), got %d", fi.minItems, len(n.Content))
		}
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			hint := ""
			if n.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf(" (quote it: %q)", n.Value)
			}
			d.errorf(n.Line, path, "want a string, got %s%s", nodeKind(n), hint)
			return
		}
		v.SetString(n.Value)
		if fi != nil && len(fi.enum) > 0 && !slices.Contains(fi.enum, n.Value) {
			d.errorf(n.Line, path, "want one of %s, got %q", strings.Join(fi.enum, ", "), n.Value)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n.Line, path, "want true or false, got %s", nodeKind(n))
			return
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			d.errorf(n.Line, path, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n.Line, path, "want an integer, got %s", nodeKind(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.errorf(n.Line, path, "want an integer in range, got %s", n.Value)
			return
		}
		v.SetInt(i)
		if fi != nil && fi.min != nil && i < *fi.min {
			d.errorf(n.Line, path, "want at least %d, got %d", *fi.min, i)
		}
		if fi != nil && fi.max != nil && i > *fi.max {
			d.errorf(n.Line, path, "want at most %d, got %d", *fi.max, i)
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
			d.errorf(n.Line, path, "want a number, got %s", nodeKind(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			d.errorf(n.Line, path, "want a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n.Line, path, "internal error: cannot decode into %s", t)
	}
}

// decodeCommand decodes a CommandLine: a string or a list of strings.
func (d *docContext) decodeCommand(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		v.Set(reflect.ValueOf(CommandLine{Line: n.Value}))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "want a command: a string like \"/usr/local/bin/cred --profile lab\" or a list like [/usr/local/bin/cred, --profile, lab], got %s", nodeKind(n))
		return
	}
	argv := []string{}
	d.decodeValue(n, reflect.ValueOf(&argv).Elem(), path, nil)
	v.Set(reflect.ValueOf(CommandLine{Argv: argv}))
}

// decodeStruct decodes a mapping into struct v, rejecting unknown and duplicate keys and
// reporting missing required fields.
func (d *docContext) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a mapping, got %s", nodeKind(n))
		return
	}
	fields := structFields(v.Type())
	seen, replaced := map[string]bool{}, map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "want a field name, got %s", nodeKind(k))
			continue
		}
		fp := joinPath(path, k.Value)
		if seen[k.Value] {
			d.errorf(k.Line, fp, "field given twice")
			continue
		}
		seen[k.Value] = true
		j := slices.IndexFunc(fields, func(f fieldInfo) bool { return f.name == k.Value })
		if j < 0 {
			if h, ok := v.Addr().Interface().(fieldHinter); ok {
				if msg, replaces := h.unknownFieldHint(k.Value); msg != "" {
					d.errorf(k.Line, fp, "%s", msg)
					replaced[replaces] = true // one error, not a second one for the missing field
					continue
				}
			}
			d.unknownField(k, fp, fields)
			continue
		}
		fi := fields[j]
		d.lines[fp] = k.Line
		if fi.required && isNull(resolveAlias(val)) {
			d.errorf(k.Line, fp, "required field is empty")
			continue
		}
		d.decodeValue(val, v.FieldByIndex(fi.index), fp, &fi)
	}
	line := n.Line
	if l, ok := d.lines[path]; ok {
		line = l
	}
	for _, f := range fields {
		if f.required && !seen[f.name] && !replaced[f.name] {
			d.errorf(line, joinPath(path, f.name), "missing required field")
		}
	}
}

// fieldHinter is implemented by spec types that know fields of routerd v1alpha1 which
// cannot work in this routerd. unknownFieldHint returns the error for such a field name
// (which is an error even in a kind: Router file) and the name of the field that replaces
// it, or "" for other names.
type fieldHinter interface {
	unknownFieldHint(name string) (msg, replaces string)
}

// unknownField reports key k, which is not a field of the struct being decoded: an error,
// or in a kind: Router file a warning (the value is ignored).
func (d *docContext) unknownField(k *yaml.Node, path string, fields []fieldInfo) {
	if d.routerForm {
		d.warnf(k.Line, path, WarnIgnoredField, "unknown field ignored, as routerd v1alpha1 ignores it (in a bare resource file it is an error); known fields: %s", fieldNames(fields))
		return
	}
	d.errorf(k.Line, path, "unknown field; want one of: %s", fieldNames(fields))
}

func fieldNames(fields []fieldInfo) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// decodeMap decodes a mapping into a map with string keys.
func (d *docContext) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a mapping, got %s", nodeKind(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.errorf(n.Line, path, "internal error: cannot decode into %s", t)
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolveAlias(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "want a key, got %s", nodeKind(k))
			continue
		}
		kp := joinPath(path, k.Value)
		key := reflect.ValueOf(k.Value).Convert(t.Key())
		if m.MapIndex(key).IsValid() {
			d.errorf(k.Line, kp, "key given twice")
			continue
		}
		ev := reflect.New(t.Elem()).Elem()
		d.decodeValue(n.Content[i+1], ev, kp, nil)
		m.SetMapIndex(key, ev)
	}
	v.Set(m)
}

// mappingValue returns the value node of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolveAlias(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

// scalarValue returns the string value of key in mapping n ("" when absent or not a scalar).
func scalarValue(n *yaml.Node, key string) (string, *yaml.Node) {
	v := mappingValue(n, key)
	if v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
		return "", v
	}
	return v.Value, v
}

// decodeResource decodes one resource document (apiVersion, kind, metadata, spec) at
// path ("" for a top-level document). It returns nil when the Kind is unknown or skipped;
// structural problems are recorded in d and the partly decoded object is returned.
func (d *docContext) decodeResource(n *yaml.Node, path string) Object {
	n = resolveAlias(n)
	d.lines[path] = n.Line
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a resource document (a mapping with apiVersion, kind, metadata and spec), got %s", nodeKind(n))
		return nil
	}
	outerKind, outerName := d.kind, d.name
	if path != "" {
		defer func() { d.kind, d.name = outerKind, outerName }()
	}
	apiVersion, avNode := scalarValue(n, "apiVersion")
	kind, kindNode := scalarValue(n, "kind")
	name, _ := scalarValue(mappingValue(n, "metadata"), "name")
	d.kind, d.name = kind, name
	if kind == "" {
		d.kind = ""
		d.errorf(lineOr(kindNode, n), joinPath(path, "kind"), "missing kind; want one of: %s", kindNames())
		return nil
	}
	if apiVersion == "" {
		d.errorf(lineOr(avNode, n), joinPath(path, "apiVersion"), "missing apiVersion")
	}
	info, ok := LookupKind(kind)
	if !ok {
		d.unknownKind(kind, apiVersion, kindNode, path)
		return nil
	}
	if path != "" && kind == "DynamicConfigPart" {
		d.errorf(kindNode.Line, path, "a DynamicConfigPart cannot contain another DynamicConfigPart")
		return nil
	}
	if apiVersion != "" && apiVersion != info.APIVersion {
		d.errorf(avNode.Line, joinPath(path, "apiVersion"), "kind %s belongs to apiVersion %s, got %q", kind, info.APIVersion, apiVersion)
		return nil
	}
	obj := info.New()
	d.decodeStruct(n, reflect.ValueOf(obj).Elem(), path)
	return obj
}

func lineOr(n, parent *yaml.Node) int {
	if n != nil {
		return n.Line
	}
	return parent.Line
}

// unknownKind reports (or, when allowed, skips with a warning) a Kind routerd does not
// provide.
func (d *docContext) unknownKind(kind, apiVersion string, kindNode *yaml.Node, path string) {
	line := kindNode.Line
	switch {
	case kind == RouterKind:
		d.errorf(line, path, "a Router document cannot be nested in another document")
	case isOurAPIVersion(apiVersion):
		d.errorf(line, path, "unknown kind %q in %s; want one of: %s", kind, apiVersion, kindNames())
	case d.opts.SkipUnknownKinds && isV1Alpha1Kind(kind):
		d.warnf(line, path, WarnSkippedKind, "skipped: routerd v1alpha1 Kind %s is not provided by this routerd", kind)
	case d.opts.SkipUnknownKinds:
		d.warnf(line, path, WarnSkippedKind, "skipped: kind %s (apiVersion %s) is not a Kind routerd provides", kind, apiVersion)
	case isV1Alpha1Kind(kind):
		d.errorf(line, path, "routerd v1alpha1 Kind %s is not provided by this routerd: remove the document, or skip it with --skip-unknown-kinds (LoadOptions.SkipUnknownKinds)", kind)
	default:
		d.errorf(line, path, "unknown kind %q (apiVersion %q); want one of: %s (skip it with --skip-unknown-kinds)", kind, apiVersion, kindNames())
	}
}
