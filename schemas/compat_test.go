package schemas

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// compatPath is COMPAT.md where CI checks it out beside the repository.
const compatPath = "../../shared/design/COMPAT.md"

// kindsOfCompat returns the Kinds listed under "Every Kind of routerd v1alpha1" in a
// COMPAT.md.
func kindsOfCompat(t *testing.T, md string) []string {
	t.Helper()
	_, section, ok := strings.Cut(md, "## Every Kind of routerd v1alpha1")
	if !ok {
		t.Fatal("COMPAT.md has no section 'Every Kind of routerd v1alpha1'")
	}
	_, section, _ = strings.Cut(section, "\n")
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	return strings.Fields(section)
}

// TestV1Alpha1KindsMatchCOMPAT compares the embedded list of routerd v1alpha1 Kinds with
// COMPAT.md when it is beside the repository, and always with the testdata copy of it.
func TestV1Alpha1KindsMatchCOMPAT(t *testing.T) {
	got := V1Alpha1Kinds()
	if !slices.IsSorted(got) {
		t.Error("V1Alpha1Kinds is not sorted (isV1Alpha1Kind searches it)")
	}
	copyData, err := os.ReadFile("testdata/v1alpha1-kinds.txt")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]string{"testdata/v1alpha1-kinds.txt": strings.Fields(string(copyData))}
	if md, err := os.ReadFile(compatPath); err == nil {
		sources[compatPath] = kindsOfCompat(t, string(md))
	} else {
		t.Logf("%s not found; comparing with the testdata copy only", compatPath)
	}
	for src, want := range sources {
		if len(want) != 85 {
			t.Errorf("%s lists %d Kinds, want 85", src, len(want))
		}
		if !slices.Equal(got, want) {
			t.Errorf("V1Alpha1Kinds differs from %s:\ngot  %v\nwant %v", src, got, want)
		}
	}
	// Every Kind we provide that routerd v1alpha1 had is in the list; only MSSClamp is ours.
	for _, k := range Kinds() {
		if !isV1Alpha1Kind(k.Kind) && k.Kind != "MSSClamp" && k.Kind != "DynamicConfigPart" {
			t.Errorf("registered Kind %s is not a routerd v1alpha1 Kind", k.Kind)
		}
	}
}

// TestV1Alpha1KindNotProvided checks the message for each routerd v1alpha1 Kind this
// routerd does not provide, and that --skip-unknown-kinds skips it with a warning.
func TestV1Alpha1KindNotProvided(t *testing.T) {
	n := 0
	for _, kind := range V1Alpha1Kinds() {
		if _, ok := LookupKind(kind); ok || kind == RouterKind {
			continue
		}
		n++
		doc := "apiVersion: routerd.net/v1alpha1\nkind: " + kind + "\nmetadata: {name: x}\nspec: {}\n"
		_, err := Decode("r.yaml", []byte(doc))
		want := "r.yaml:2: " + kind + "/x: routerd v1alpha1 Kind " + kind + " is not provided by this routerd"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", kind, err, want)
		}
		cfg, err := LoadOptions{SkipUnknownKinds: true}.Decode("r.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("%s with SkipUnknownKinds: %v", kind, err)
		}
		if len(cfg.Warnings) != 1 || cfg.Warnings[0].Code != WarnSkippedKind || cfg.Warnings[0].Document != 1 ||
			!strings.Contains(cfg.Warnings[0].Message, "routerd v1alpha1 Kind "+kind+" is not provided by this routerd") {
			t.Errorf("%s: warnings = %+v", kind, cfg.Warnings)
		}
	}
	if n != 72 {
		t.Errorf("%d routerd v1alpha1 Kinds not provided, want 72 (85 minus Router and the 12 provided)", n)
	}
	// A name that never was a routerd v1alpha1 Kind is an unknown kind, not a v1alpha1 one.
	_, err := Decode("r.yaml", []byte("apiVersion: routerd.net/v1alpha1\nkind: BGP\nmetadata: {name: x}\n"))
	if err == nil || !regexp.MustCompile(`unknown kind "BGP"`).MatchString(err.Error()) {
		t.Errorf("BGP: err = %v, want an unknown kind", err)
	}
}
