package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host/wasmbuild"
)

func storeWithEvents(t *testing.T, state string) {
	t.Helper()
	data, err := os.ReadFile(observedEvents)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	if err := json.Unmarshal(data, &evs); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range evs {
		evs[i].ObservedAt = now.Add(-time.Duration(len(evs)-i) * time.Minute)
		evs[i].ExpiresAt = now.Add(time.Hour)
	}
	st, err := store.Open(filepath.Join(state, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func TestPluginReplay(t *testing.T) {
	plugins, state, noConf := pluginDir(t, nil)
	storeWithEvents(t, state)
	same := filepath.Join(plugins, "event-to-remote-claim.wasm")
	echo := filepath.Join(plugins, "echo.wasm")
	v2 := wasmbuild.ForTest(t, "host/testdata/plugins/claim-v2")
	tests := []struct {
		name     string
		against  string
		wantCode int
		want     []string
	}{
		{name: "identical candidate", against: same, wantCode: exitOK, want: []string{`"differing": 0`, `"identical": 1`, "identical on 10 events"}},
		{name: "changed candidate", against: v2, wantCode: exitFailed, want: []string{`"differing": 1`, `"version": "2.0.0-test"`,
			`"onlyInstalled": [`, "RemoteAddressClaim/cloud-10-88-61-4", `"other": [`, "status.ttl"}},
		{name: "failing candidate", against: echo, wantCode: exitFailed, want: []string{`"differing": 1`, `"candidateError"`, "bad output", `"failures": 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins, "--state-dir", state,
				"--config-dir", noConf, "--replay", "24h", "--against", tt.against, "-o", "json")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s\n%s", code, tt.wantCode, errOut, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("dry-run from the store", func(t *testing.T) {
		out, errOut, code := ctlPlugin(t, "plugin", "dry-run", "event-to-remote-claim", "--plugin-dir", plugins, "--state-dir", state,
			"--config-dir", noConf, "--since", "2h", "-o", "json")
		if code != exitOK || !strings.Contains(out, `"events": 10`) || !strings.Contains(out, "RemoteAddressClaim") {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
	})
}
