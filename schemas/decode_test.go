package schemas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const groupDoc = `apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: sam}
spec:
  nodeName: router-a
  auth: {secretFile: /etc/routerd/sam.key}
`

// problemsOf decodes doc and returns its problems (nil when it is valid).
func problemsOf(t *testing.T, opts LoadOptions, doc string) []Problem {
	t.Helper()
	_, err := opts.Decode("t.yaml", []byte(doc))
	if err == nil {
		return nil
	}
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("error is not an *ErrorList: %v", err)
	}
	return el.Problems
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		wantLine int
		wantPath string
		wantMsg  string
	}{
		{name: "unknown top-level field", doc: groupDoc + "status: {}\n", wantLine: 7, wantPath: "status", wantMsg: "unknown field; want one of: apiVersion, kind, metadata, spec"},
		{name: "field given twice", doc: groupDoc + "  nodeName: router-b\n", wantLine: 7, wantPath: "spec.nodeName", wantMsg: "field given twice"},
		{name: "mapping for string", doc: strings.Replace(groupDoc, "nodeName: router-a", "nodeName: {a: b}", 1), wantLine: 5, wantPath: "spec.nodeName", wantMsg: "want a string, got a mapping"},
		{name: "integer for string", doc: strings.Replace(groupDoc, "nodeName: router-a", "nodeName: 42", 1), wantLine: 5, wantPath: "spec.nodeName", wantMsg: `want a string, got integer 42 (quote it: "42")`},
		{name: "list expected", doc: groupDoc + "  peersFrom: {resource: x}\n", wantLine: 7, wantPath: "spec.peersFrom", wantMsg: "want a list, got a mapping"},
		{name: "integer overflow", doc: groupDoc + "  listen: {port: 99999999999999999999}\n", wantLine: 7, wantPath: "spec.listen.port", wantMsg: "want an integer"},
		{name: "maximum", doc: groupDoc + "  listen: {port: 70000}\n", wantLine: 7, wantPath: "spec.listen.port", wantMsg: "want at most 65535, got 70000"},
		{name: "negative duration", doc: groupDoc + "  replayWindow: -5m\n", wantLine: 7, wantPath: "spec.replayWindow", wantMsg: "want a duration"},
		{name: "required field empty", doc: strings.Replace(groupDoc, "nodeName: router-a", "nodeName:", 1), wantLine: 5, wantPath: "spec.nodeName", wantMsg: "required field is empty"},
		{name: "missing spec", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: sam}\n", wantLine: 1, wantPath: "spec", wantMsg: "missing required field"},
		{name: "missing kind", doc: "apiVersion: federation.routerd.net/v1alpha1\nmetadata: {name: sam}\n", wantLine: 1, wantPath: "kind", wantMsg: "missing kind; want one of: "},
		{name: "not a mapping", doc: "- a\n- b\n", wantLine: 1, wantMsg: "want a resource document"},
		{name: "min items", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventSubscription\nmetadata: {name: s}\nspec:\n  groupRef: sam\n  match: {types: []}\n  trigger: {pluginRef: p}\n", wantLine: 6, wantPath: "spec.match.types", wantMsg: "want at least 1 item(s), got 0"},
		{name: "bad secretRef", doc: strings.Replace(groupDoc, "secretFile: /etc/routerd/sam.key", "secretRef: vault:sam", 1), wantLine: 6, wantPath: "spec.auth.secretRef", wantMsg: `"vault:sam" is not a secret reference`},
		{name: "duplicate key ids", doc: strings.Replace(groupDoc, "{secretFile: /etc/routerd/sam.key}", "{keys: [{id: k1, secretFile: /a}, {id: k1, secretFile: /b}]}", 1), wantLine: 6, wantPath: "spec.auth.keys[1]", wantMsg: `"k1" is listed twice`},
		{name: "bad IP", doc: groupDoc + "  listen: {address: 127.0.0.256}\n", wantLine: 7, wantPath: "spec.listen.address", wantMsg: "is not an IP address"},
		{name: "unknown kind in allowedKinds", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventSubscription\nmetadata: {name: s}\nspec:\n  groupRef: sam\n  match: {types: [a.b]}\n  trigger: {pluginRef: p}\n  output: {allowedKinds: [Route]}\n", wantLine: 8, wantPath: "spec.output.allowedKinds[0]", wantMsg: `unknown kind "Route"`},
		{name: "nested resource problem", doc: "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicConfigPart\nmetadata: {name: p}\nspec:\n  source: EventSubscription/claims\n  resources:\n  - apiVersion: hybrid.routerd.net/v1alpha1\n    kind: AddressMobilityDomain\n    metadata: {name: lab}\n    spec: {prefix: 10.0.0.0/8, colour: red}\n", wantLine: 10, wantPath: "spec.resources[0].spec.colour", wantMsg: "unknown field"},
		{name: "nested resource semantic problem", doc: "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicConfigPart\nmetadata: {name: p}\nspec:\n  source: EventSubscription/claims\n  resources:\n  - apiVersion: hybrid.routerd.net/v1alpha1\n    kind: AddressMobilityDomain\n    metadata: {name: lab}\n    spec:\n      prefix: 10.0.0.1/8\n", wantLine: 11, wantPath: "spec.resources[0].spec.prefix", wantMsg: "has host bits set"},
		{name: "bad source", doc: "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicConfigPart\nmetadata: {name: p}\nspec:\n  source: claims\n", wantLine: 5, wantPath: "spec.source", wantMsg: "want Kind/name"},
		{name: "router in router", doc: "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec:\n  resources:\n  - {apiVersion: routerd.net/v1alpha1, kind: Router, metadata: {name: x}}\n", wantLine: 6, wantMsg: "a Router document cannot be nested"},
		{name: "router wrong apiVersion", doc: "apiVersion: routerd.net/v2\nkind: Router\nmetadata: {name: r}\nspec: {resources: []}\n", wantLine: 1, wantPath: "apiVersion", wantMsg: "a Router document has apiVersion routerd.net/v1alpha1"},
		{name: "router metadata strict", doc: "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r, uid: x}\nspec: {resources: []}\n", wantLine: 3, wantPath: "metadata.uid", wantMsg: "unknown field; want one of: name, labels, annotations"},
		{name: "router field twice", doc: "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec: {resources: []}\nspec: {resources: []}\n", wantLine: 5, wantPath: "spec", wantMsg: "field given twice"},
		{name: "endpoint port", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b}\nspec: {groupRef: g, nodeName: b, endpoint: \"http://127.0.0.1:0\"}\n", wantLine: 4, wantPath: "spec.endpoint", wantMsg: "has an invalid port"},
		{name: "warm instances above concurrency", doc: "apiVersion: plugin.routerd.net/v1alpha1\nkind: Plugin\nmetadata: {name: p}\nspec:\n  module: p.wasm\n  limits: {maxConcurrency: 2, warmInstances: 3}\n", wantLine: 6, wantPath: "spec.limits.warmInstances", wantMsg: "3 out of range: want 0-2"},
		{name: "module path", doc: "apiVersion: plugin.routerd.net/v1alpha1\nkind: Plugin\nmetadata: {name: p}\nspec:\n  module: ../p.wasm\n", wantLine: 5, wantPath: "spec.module", wantMsg: "want a .wasm file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, LoadOptions{}, tt.doc)
			for _, p := range ps {
				if p.Line == tt.wantLine && p.Path == tt.wantPath && strings.Contains(p.Message, tt.wantMsg) {
					if p.File != "t.yaml" || p.Document != 1 || p.Severity != SeverityError {
						t.Errorf("problem %+v: want file t.yaml, document 1, severity error", p)
					}
					return
				}
			}
			t.Fatalf("no problem at line %d path %q containing %q; got:\n%v", tt.wantLine, tt.wantPath, tt.wantMsg, (&ErrorList{Problems: ps}).Error())
		})
	}
}

// TestDecodeAllProblemsAtOnce checks that problems of several documents and files are
// all reported, sorted by file and line.
func TestDecodeAllProblemsAtOnce(t *testing.T) {
	doc := groupDoc + "  colour: red\n---\n" + strings.Replace(groupDoc, "name: sam", "name: other", 1) + "  listen: {address: 10.0.0.999}\n---\n\n---\napiVersion: x/v1\nkind: BGPPeer\nmetadata: {name: b}\n"
	ps := problemsOf(t, LoadOptions{}, doc)
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	want := []string{
		"t.yaml:7: EventGroup/sam: spec.colour: unknown field; want one of: nodeName, peersFrom, retention, auth, tls, listen, replayWindow, delivery, transport",
		"t.yaml:15: EventGroup/other: spec.listen.address: \"10.0.0.999\" is not an IP address: want an address like 10.88.60.9 or 2001:db8::9",
		"t.yaml:20: BGPPeer/b: routerd v1alpha1 Kind BGPPeer is not provided by this routerd: remove the document, or skip it with --skip-unknown-kinds (LoadOptions.SkipUnknownKinds)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSkipUnknownKinds(t *testing.T) {
	doc := groupDoc + "---\napiVersion: routerd.net/v1alpha1\nkind: BGP\nmetadata: {name: b}\n---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventGroupp\nmetadata: {name: c}\n"
	ps := problemsOf(t, LoadOptions{SkipUnknownKinds: true}, doc)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, `unknown kind "EventGroupp"`) {
		t.Fatalf("a typo in our own API group must stay an error; got %v", ps)
	}
	cfg, err := LoadOptions{SkipUnknownKinds: true}.Decode("t.yaml", []byte(groupDoc+"---\napiVersion: routerd.net/v1alpha1\nkind: BGP\nmetadata: {name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Severity != SeverityWarning || cfg.Warnings[0].Line != 9 {
		t.Fatalf("warnings = %+v, want one warning at line 9", cfg.Warnings)
	}
	if cfg.Len() != 1 {
		t.Fatalf("config holds %d resources, want 1", cfg.Len())
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	ps := problemsOf(t, LoadOptions{}, groupDoc+"---\nkind: [\n")
	if len(ps) != 1 || ps[0].Document != 2 || !strings.HasPrefix(ps[0].Message, "invalid YAML: ") {
		t.Fatalf("problems = %+v", ps)
	}
}

func TestAliasesAreResolved(t *testing.T) {
	doc := "apiVersion: hybrid.routerd.net/v1alpha1\nkind: HybridRoute\nmetadata: {name: r}\nspec:\n  destinationCIDRs: &nets [10.0.0.0/8]\n  peerRef: p\n---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: OverlayPeer\nmetadata: {name: p}\nspec: {role: cloud, underlay: {type: route}, remote: {address: 10.255.0.2}}\n"
	cfg, err := Decode("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.HybridRoutes()[0].Spec.DestinationCIDRs; len(got) != 1 || got[0] != "10.0.0.0/8" {
		t.Fatalf("destinationCIDRs = %v", got)
	}
}

func TestLoadLimitsFileSize(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/big.yaml"
	if err := writeFile(path, groupDoc+strings.Repeat("# padding\n", 200)); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOptions{MaxFileBytes: 512}.Load(path)
	if err == nil || !strings.Contains(err.Error(), "file larger than 512 bytes") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(groupDoc))
	f.Add([]byte("apiVersion: routerd.net/v1alpha1\nkind: Router\nspec: {resources: [{kind: Plugin}]}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte(`{"apiVersion":"config.routerd.net/v1alpha1","kind":"DynamicConfigPart","metadata":{"name":"p"},"spec":{"source":"A/b","resources":[{"kind":"DynamicConfigPart"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Decode returned config %v and error %v", cfg, err)
		}
		_, _ = DecodeObject(data)
	})
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// 2000 aliases to an allow entry whose targets are 1000 aliases: millions of values
	// from a 12 KB document.
	doc := "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicOverridePolicy\nmetadata: {name: p}\nspec:\n" +
		"  conflictResolution: static-wins\n" +
		"  allow:\n  - &a {source: A/b, targets: [&r {kind: Plugin}" + strings.Repeat(", *r", 999) + "]}\n" +
		strings.Repeat("  - *a\n", 2000)
	start := time.Now()
	ps := problemsOf(t, LoadOptions{}, doc)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("decoding took %v", d)
	}
	found := false
	for _, p := range ps {
		found = found || strings.Contains(p.Message, "document too large")
	}
	if !found || len(ps) > maxProblemsPerFile+1 {
		t.Fatalf("%d problems, want a bounded list with 'document too large': %v", len(ps), ps)
	}
}

// TestRouterFormUnknownFields checks that an unknown field is a warning naming file,
// document and field in a kind: Router file, and stays an error in a bare resource file.
func TestRouterFormUnknownFields(t *testing.T) {
	profile := "apiVersion: hybrid.routerd.net/v1alpha1\nkind: CloudProviderProfile\nmetadata: {name: aws-main}\nspec:\n  provider: aws\n  accountID: \"123456789012\"\n"
	router := "# yaml-language-server: $schema=x.json\napiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec:\n  resources:\n" +
		"    - apiVersion: hybrid.routerd.net/v1alpha1\n      kind: CloudProviderProfile\n      metadata: {name: aws-main}\n      spec:\n        provider: aws\n        accountID: \"123456789012\"\n        capture: {colour: red}\n"
	tests := []struct {
		name      string
		doc       string
		wantErr   string
		wantWarns []string // Problem.String() of each warning
	}{
		{name: "bare file is strict", doc: profile, wantErr: "t.yaml:6: CloudProviderProfile/aws-main: spec.accountID: unknown field; want one of:"},
		{name: "router form warns", doc: router, wantWarns: []string{
			"t.yaml:12: warning: CloudProviderProfile/aws-main: spec.accountID: unknown field ignored, as routerd v1alpha1 ignores it (in a bare resource file it is an error); known fields: provider, region, endpoint, subscriptionID, resourceGroup, compartmentID, capabilities, nics, auth",
			"t.yaml:13: warning: CloudProviderProfile/aws-main: spec.capture: unknown field ignored, as routerd v1alpha1 ignores it (in a bare resource file it is an error); known fields: provider, region, endpoint, subscriptionID, resourceGroup, compartmentID, capabilities, nics, auth",
		}},
		{name: "router form keeps type errors", doc: strings.Replace(router, "provider: aws", "provider: 7", 1), wantErr: "spec.provider: want a string"},
		{name: "router envelope stays strict", doc: strings.Replace(router, "spec:\n  resources:", "spec:\n  interfaces: []\n  resources:", 1), wantErr: "Router/r: spec.interfaces: unknown field; want one of: resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Decode("t.yaml", []byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.String())
				if w.Code != WarnIgnoredField || w.Document != 1 || w.Severity != SeverityWarning {
					t.Errorf("warning %+v: want code %s, document 1, severity warning", w, WarnIgnoredField)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantWarns, "\n") {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantWarns, "\n"))
			}
		})
	}
}

// TestGroupWithoutAuth checks that an EventGroup without a secret loads (as in routerd
// v1alpha1) with a warning naming the group and the fix, from files and from NewConfig.
func TestGroupWithoutAuth(t *testing.T) {
	doc := "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: sam}\nspec:\n  nodeName: router-a\n"
	for _, d := range []string{doc, doc + "  auth: {mode: hmac}\n"} {
		cfg, err := Decode("g.yaml", []byte(d))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if len(cfg.Warnings) != 1 {
			t.Fatalf("warnings = %+v, want 1", cfg.Warnings)
		}
		w := cfg.Warnings[0]
		if w.Code != WarnGroupWithoutAuth || w.Path != "spec.auth" || w.File != "g.yaml" || w.Document != 1 ||
			!strings.Contains(w.Message, "group sam has no auth: add spec.auth.secretFile") {
			t.Errorf("warning = %+v", w)
		}
		if err := Validate(cfg.EventGroups()[0]); err != nil {
			t.Errorf("Validate: %v, want nil (a warning is not an error)", err)
		}
	}
	g := New("EventGroup").(*EventGroup)
	g.Metadata.Name, g.Spec.NodeName = "sam", "router-a"
	cfg, err := NewConfig(g)
	if err != nil || len(cfg.Warnings) != 1 || cfg.Warnings[0].Code != WarnGroupWithoutAuth {
		t.Fatalf("NewConfig: %v, warnings %+v", err, cfg.Warnings)
	}
}

// TestPluginExecutable checks that a subprocess plugin of routerd v1alpha1 gets one error
// saying what to do instead, in bare files and in kind: Router files.
func TestPluginExecutable(t *testing.T) {
	plugin := "apiVersion: plugin.routerd.net/v1alpha1\nkind: Plugin\nmetadata: {name: claims}\nspec:\n  executable: /usr/local/libexec/claims\n  timeout: 5s\n"
	router := "apiVersion: routerd.net/v1alpha1\nkind: Router\nmetadata: {name: r}\nspec:\n  resources:\n  - apiVersion: plugin.routerd.net/v1alpha1\n    kind: Plugin\n    metadata: {name: claims}\n    spec: {executable: /usr/local/libexec/claims}\n"
	for name, doc := range map[string]string{"bare": plugin, "router form": router} {
		t.Run(name, func(t *testing.T) {
			ps := problemsOf(t, LoadOptions{}, doc)
			if len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(ps), ps)
			}
			p := ps[0]
			if p.Path != "spec.executable" || !strings.Contains(p.Message, "this routerd runs WebAssembly modules") ||
				!strings.Contains(p.Message, "set spec.module") || !strings.Contains(p.Message, `docs/plugin-abi.md, "Porting a routerd v1alpha1 subprocess plugin"`) {
				t.Fatalf("problem = %s", p)
			}
		})
	}
	// Next to spec.module, executable is still refused (the module would be ambiguous).
	ps := problemsOf(t, LoadOptions{}, strings.Replace(plugin, "  timeout: 5s\n", "  module: claims.wasm\n", 1))
	if len(ps) != 1 || ps[0].Path != "spec.executable" {
		t.Fatalf("problems = %v", ps)
	}
}
