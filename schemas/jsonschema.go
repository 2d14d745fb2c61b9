package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
)

// JSONSchemaFile is the file name of the generated JSON Schema.
const JSONSchemaFile = "routerd-config-v1alpha1.schema.json"

// JSONSchemaID is the $id of the generated JSON Schema.
const JSONSchemaID = "https://routerd.net/schemas/" + JSONSchemaFile

// The Go sources of the Kind types: their doc comments become the schema's descriptions.
// Reading them from the binary (rather than from a source directory) makes the generator
// independent of its working directory. A test fails when a Kind's type has no
// description, so a new file of Kind types must be listed here.
//
//go:embed meta.go federation.go hybrid.go dynamic.go plugin.go
var kindSources embed.FS

// GenerateJSONSchema returns the JSON Schema (draft 2020-12) of a routerd config document,
// generated from the Kind registry: a document is either one resource of a registered Kind
// (selected by kind, with apiVersion fixed per Kind) or an original kind: Router document
// whose spec.resources lists such resources. The output is deterministic.
func GenerateJSONSchema() ([]byte, error) {
	comments, err := goComments()
	if err != nil {
		return nil, fmt.Errorf("schemas: generate: %w", err)
	}
	pkg := reflect.TypeFor[TypeMeta]().PkgPath()
	names := map[string]reflect.Type{}
	var nameErr error
	r := &jsonschema.Reflector{
		RequiredFromJSONSchemaTags: true,
		Anonymous:                  true,
		LookupComment: func(t reflect.Type, field string) string {
			if t.PkgPath() != pkg {
				return ""
			}
			if field == "" {
				return comments[t.Name()]
			}
			return comments[t.Name()+"."+field]
		},
		Namer: func(t reflect.Type) string {
			if prev, ok := names[t.Name()]; ok && t.Name() != "" && prev != t && nameErr == nil {
				nameErr = fmt.Errorf("schemas: generate: types %s and %s share the definition name %s", prev, t, t.Name())
			}
			names[t.Name()] = t
			return t.Name()
		},
	}
	defs := jsonschema.Definitions{}
	kinds := Kinds()
	var kindEnum, apiEnum []any
	resource := &jsonschema.Schema{
		Type:        "object",
		Description: "A resource document of one of routerd's Kinds, selected by kind.",
		Required:    []string{"apiVersion", "kind", "metadata", "spec"},
	}
	seenAPI := map[string]bool{}
	for _, k := range kinds {
		s := r.Reflect(k.New())
		for name, d := range s.Definitions {
			defs[name] = d
		}
		def := defs[k.Kind]
		if def == nil || def.Properties == nil {
			return nil, fmt.Errorf("schemas: generate: kind %s has no definition", k.Kind)
		}
		def.Properties.Set("apiVersion", &jsonschema.Schema{Type: "string", Const: k.APIVersion, Description: comments["TypeMeta.APIVersion"]})
		def.Properties.Set("kind", &jsonschema.Schema{Type: "string", Const: k.Kind, Description: comments["TypeMeta.Kind"]})
		def.Title = k.Kind + " (" + k.APIVersion + ")"
		kindEnum = append(kindEnum, k.Kind)
		if !seenAPI[k.APIVersion] {
			seenAPI[k.APIVersion] = true
			apiEnum = append(apiEnum, k.APIVersion)
		}
		resource.AllOf = append(resource.AllOf, &jsonschema.Schema{
			If: withProperties(&jsonschema.Schema{Required: []string{"kind"}},
				"kind", &jsonschema.Schema{Const: k.Kind}),
			Then: &jsonschema.Schema{Ref: "#/$defs/" + k.Kind},
		})
	}
	if nameErr != nil {
		return nil, nameErr
	}
	withProperties(resource,
		"apiVersion", &jsonschema.Schema{Type: "string", Enum: apiEnum, Description: comments["TypeMeta.APIVersion"]},
		"kind", &jsonschema.Schema{Type: "string", Enum: kindEnum, Description: comments["TypeMeta.Kind"]},
	)
	defs[resourceDef] = resource
	defs[RouterKind] = withProperties(&jsonschema.Schema{
		Type:                 "object",
		Title:                "Router (" + RouterAPIVersion + ")",
		Description:          "The original routerd whole-router document: spec.resources lists resource documents.",
		Required:             []string{"apiVersion", "kind", "spec"},
		AdditionalProperties: jsonschema.FalseSchema,
	},
		"apiVersion", &jsonschema.Schema{Type: "string", Const: RouterAPIVersion},
		"kind", &jsonschema.Schema{Type: "string", Const: RouterKind},
		"metadata", &jsonschema.Schema{Ref: "#/$defs/ObjectMeta"},
		"spec", withProperties(&jsonschema.Schema{
			Type:                 "object",
			AdditionalProperties: jsonschema.FalseSchema,
		}, "resources", &jsonschema.Schema{
			Type:        "array",
			Description: "The router's resources.",
			Items:       &jsonschema.Schema{Ref: "#/$defs/" + resourceDef},
		}),
	)
	root := &jsonschema.Schema{
		Version:     jsonschema.Version,
		ID:          JSONSchemaID,
		Title:       "routerd config document (v1alpha1)",
		Description: "One YAML document of a routerd config file: a resource of a registered Kind, or an original kind: Router document listing resources. Generated from the Kind registry by routerd-schema; do not edit.",
		If: withProperties(&jsonschema.Schema{Required: []string{"kind"}},
			"kind", &jsonschema.Schema{Const: RouterKind}),
		Then:        &jsonschema.Schema{Ref: "#/$defs/" + RouterKind},
		Else:        &jsonschema.Schema{Ref: "#/$defs/" + resourceDef},
		Definitions: defs,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("schemas: generate: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// withProperties sets the properties of s, in order, from name, schema pairs and returns s.
func withProperties(s *jsonschema.Schema, kv ...any) *jsonschema.Schema {
	s.Properties = jsonschema.NewProperties()
	for i := 0; i+1 < len(kv); i += 2 {
		s.Properties.Set(kv[i].(string), kv[i+1].(*jsonschema.Schema))
	}
	return s
}

// goComments returns the doc comments of the embedded Kind sources, keyed by TypeName and
// TypeName.FieldName, as one paragraph-preserving string each.
func goComments() (map[string]string, error) {
	out := map[string]string{}
	entries, err := kindSources.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("read embedded sources: %w", err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		src, err := kindSources.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded %s: %w", e.Name(), err)
		}
		f, err := parser.ParseFile(fset, e.Name(), src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse embedded %s: %w", e.Name(), err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				out[ts.Name.Name] = commentText(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					text := commentText(fld.Doc)
					if text == "" {
						text = commentText(fld.Comment)
					}
					for _, n := range fld.Names {
						out[ts.Name.Name+"."+n.Name] = text
					}
				}
			}
		}
	}
	return out, nil
}

// commentText joins a comment's lines into paragraphs separated by a blank line.
func commentText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	var paras []string
	for _, p := range strings.Split(strings.TrimSpace(g.Text()), "\n\n") {
		paras = append(paras, strings.Join(strings.Fields(p), " "))
	}
	return strings.Join(paras, "\n\n")
}
