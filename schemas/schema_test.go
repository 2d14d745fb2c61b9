package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// generated returns the generated schema as a JSON object.
func generated(t *testing.T) map[string]any {
	t.Helper()
	b, err := GenerateJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// compiled compiles the generated schema with santhosh-tekuri/jsonschema.
func compiled(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := GenerateJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(JSONSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(JSONSchemaID)
	if err != nil {
		t.Fatalf("compile generated schema: %v", err)
	}
	return s
}

// TestSchemaHasEveryKind enumerates the registry (not the generator) and checks that each
// Kind has a definition with its apiVersion and kind fixed and is selected by kind.
func TestSchemaHasEveryKind(t *testing.T) {
	m := generated(t)
	defs := m["$defs"].(map[string]any)
	resource := defs[resourceDef].(map[string]any)
	selected := map[string]bool{}
	for _, c := range resource["allOf"].([]any) {
		c := c.(map[string]any)
		kind := c["if"].(map[string]any)["properties"].(map[string]any)["kind"].(map[string]any)["const"].(string)
		if ref := c["then"].(map[string]any)["$ref"]; ref != "#/$defs/"+kind {
			t.Errorf("kind %s selects %v", kind, ref)
		}
		selected[kind] = true
	}
	kindEnum := resource["properties"].(map[string]any)["kind"].(map[string]any)["enum"].([]any)
	if len(Kinds()) != 14 {
		t.Errorf("registry holds %d kinds, want the 14 of COMPAT.md", len(Kinds()))
	}
	if len(kindEnum) != len(Kinds()) {
		t.Errorf("kind enum has %d entries, registry %d", len(kindEnum), len(Kinds()))
	}
	for _, k := range Kinds() {
		t.Run(k.Kind, func(t *testing.T) {
			def, ok := defs[k.Kind].(map[string]any)
			if !ok {
				t.Fatalf("no $defs/%s", k.Kind)
			}
			props := def["properties"].(map[string]any)
			if got := props["apiVersion"].(map[string]any)["const"]; got != k.APIVersion {
				t.Errorf("apiVersion const = %v, want %s", got, k.APIVersion)
			}
			if got := props["kind"].(map[string]any)["const"]; got != k.Kind {
				t.Errorf("kind const = %v, want %s", got, k.Kind)
			}
			if !selected[k.Kind] {
				t.Errorf("kind %s is not selected by $defs/Resource", k.Kind)
			}
		})
	}
}

// TestSchemaDescriptions checks that every definition and property has a description
// from a doc comment (a Kind file missing from the embed list fails here).
func TestSchemaDescriptions(t *testing.T) {
	defs := generated(t)["$defs"].(map[string]any)
	for name, d := range defs {
		d := d.(map[string]any)
		if d["description"] == nil || d["description"] == "" {
			t.Errorf("$defs/%s has no description", name)
		}
		props, _ := d["properties"].(map[string]any)
		for p, s := range props {
			if name == RouterKind || name == resourceDef {
				continue
			}
			if s.(map[string]any)["description"] == nil {
				t.Errorf("$defs/%s property %s has no description", name, p)
			}
		}
	}
}

func TestSchemaDeterministic(t *testing.T) {
	a, err := GenerateJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err := GenerateJSONSchema()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two generations differ")
		}
	}
}

// yamlDocs returns each YAML document of file as a JSON value for schema validation.
func yamlDocs(t *testing.T, data []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []any
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatal(err)
		}
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, inst)
	}
}

// TestValidExamples validates each document of testdata/config/valid against the
// generated schema, and loads the directory (the files refer to each other) through the Go
// decoder.
func TestValidExamples(t *testing.T) {
	files, err := filepath.Glob("../testdata/config/valid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid examples: %v", err)
	}
	sch := compiled(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range yamlDocs(t, data) {
				if err := sch.Validate(doc); err != nil {
					t.Errorf("document %d: schema: %v", i+1, err)
				}
			}
		})
	}
	cfg, err := LoadDir("../testdata/config/valid")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	for _, k := range Kinds() {
		found := false
		for _, o := range cfg.Objects() {
			found = found || o.GetKind() == k.Kind
		}
		if !found {
			t.Errorf("testdata/config/valid has no %s", k.Kind)
		}
	}
}

// TestSchemaRejects checks that the schema is not vacuous: documents the Go decoder
// rejects for structural reasons are rejected by the schema too.
func TestSchemaRejects(t *testing.T) {
	sch := compiled(t)
	tests := []struct {
		name string
		doc  string
	}{
		{name: "unknown field", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b}\nspec: {groupRef: g, nodeName: b, colour: red}"},
		{name: "wrong apiVersion for kind", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b}\nspec: {groupRef: g, nodeName: b}"},
		{name: "unknown kind", doc: "apiVersion: routerd.net/v1alpha1\nkind: Interface\nmetadata: {name: eth0}\nspec: {}"},
		{name: "bad enum", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: AddressMobilityDomain\nmetadata: {name: d}\nspec: {prefix: 10.0.0.0/8, mode: everything}"},
		{name: "wrong type", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: g}\nspec: {nodeName: a, auth: {secretFile: /s}, listen: {port: high}}"},
		{name: "bad duration", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: g}\nspec: {nodeName: a, auth: {secretFile: /s}, replayWindow: 5 minutes}"},
		{name: "missing required", doc: "apiVersion: plugin.routerd.net/v1alpha1\nkind: Plugin\nmetadata: {name: p}\nspec: {hooks: [on_events]}"},
		{name: "router with unknown kind", doc: "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec:\n  resources:\n  - {apiVersion: routerd.net/v1alpha1, kind: BGP, metadata: {name: x}, spec: {}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := yamlDocs(t, []byte(tt.doc))
			if err := sch.Validate(docs[0]); err == nil {
				t.Fatal("schema accepted the document")
			}
			if _, err := Decode("doc.yaml", []byte(tt.doc)); err == nil {
				t.Fatal("Go decoder accepted the document")
			} else if !strings.Contains(err.Error(), "doc.yaml:") {
				t.Fatalf("error does not name the file: %v", err)
			}
		})
	}
}
