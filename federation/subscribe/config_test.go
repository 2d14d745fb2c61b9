package subscribe

import (
	"reflect"
	"testing"
	"time"

	"routerd.net/routerd/schemas"
)

func TestSpecsFromConfig(t *testing.T) {
	cfg, err := schemas.LoadDir("../../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	specs := SpecsFrom(cfg)
	byName := map[string]Spec{}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			t.Fatalf("spec from config invalid: %v", err)
		}
		byName[s.Name] = s
	}
	tests := []struct {
		name string
		want Spec
	}{
		{name: "claims-from-peers", want: Spec{Name: "claims-from-peers", Group: "sam", Types: []string{"routerd.client.ipv4.observed"},
			SubjectPrefixes: []string{"10.88."}, ExcludeSourceNodes: []string{"router-a"}, Plugin: "event-to-remote-claim",
			BatchWindow: 500 * time.Millisecond, Debounce: 200 * time.Millisecond}},
		{name: "echo-debug", want: Spec{Name: "echo-debug", Group: "sam", Types: []string{"routerd.peer.down"},
			SourceNodes: []string{"router-b", "router-c"}, Payload: map[string]string{"severity": "critical"}, Plugin: "echo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := byName[tt.name]
			if !ok {
				t.Fatalf("no spec %s in %v", tt.name, specs)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("spec\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
