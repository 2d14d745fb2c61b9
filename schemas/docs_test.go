package schemas

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExamples loads every ```yaml block of docs/config.md together: the minimal
// examples must form one valid config with every Kind.
func TestDocsExamples(t *testing.T) {
	md, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(md), -1)
	var docs []string
	for _, b := range blocks {
		docs = append(docs, b[1])
	}
	cfg, err := Decode("docs/config.md", []byte(strings.Join(docs, "---\n")))
	if err != nil {
		t.Fatalf("docs/config.md examples: %v", err)
	}
	for _, k := range Kinds() {
		found := false
		for _, o := range cfg.Objects() {
			found = found || o.GetKind() == k.Kind
		}
		if !found {
			t.Errorf("docs/config.md has no example of %s", k.Kind)
		}
	}
}

// TestPortingSectionExists checks that the section the spec.executable error points to
// exists in docs/plugin-abi.md.
func TestPortingSectionExists(t *testing.T) {
	md, err := os.ReadFile("../docs/plugin-abi.md")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := (*PluginSpec)(nil).unknownFieldHint("executable")
	title := regexp.MustCompile(`"([^"]+)"\)$`).FindStringSubmatch(msg)
	if title == nil || !strings.Contains(msg, "docs/plugin-abi.md") {
		t.Fatalf("the executable error does not name a section of docs/plugin-abi.md: %s", msg)
	}
	if !strings.Contains(string(md), "\n## "+title[1]+"\n") {
		t.Fatalf("docs/plugin-abi.md has no section %q", title[1])
	}
}
