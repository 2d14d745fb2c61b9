package transport

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLegacyConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // relative paths of the JSON config are relative to the working dir
	if err := os.WriteFile("lab.secret", []byte("group-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		json    string
		wantErr string
		check   func(t *testing.T, c LegacyConfig, gc GroupConfig)
	}{
		{
			name: "every field of the original",
			json: `{"nodeName":"b","group":"lab","listen":{"address":"127.0.0.1","port":19471},"secretFile":"lab.secret",
				"replayWindow":"2m","peers":[{"nodeName":"a","endpoint":"http://127.0.0.1:19470","types":["t1"],"subjectPrefixes":["10."]}],
				"retention":{"maxEvents":500,"maxAge":"12h"},"pushRetry":{"maxAttempts":5,"baseBackoff":"100ms","maxBackoff":"2s"},
				"pruneInterval":"30s","pushInterval":"10s","statePath":"state.db","extra":1}`,
			check: func(t *testing.T, c LegacyConfig, gc GroupConfig) {
				if gc.Group != "lab" || gc.LocalNode != "b" || gc.ListenAddress != "127.0.0.1:19471" || gc.ReplayWindow != 2*time.Minute {
					t.Errorf("group config = %+v", gc)
				}
				if gc.RetryBase != 100*time.Millisecond || gc.RetryMax != 2*time.Second || gc.RetentionMaxEvents != 500 || gc.RetentionMaxAge != 12*time.Hour {
					t.Errorf("delivery/retention = %+v", gc)
				}
				if len(gc.Peers) != 1 || gc.Peers[0].NodeName != "a" || gc.Peers[0].Endpoint != "http://127.0.0.1:19470" ||
					!slices.Equal(gc.Peers[0].Types, []string{"t1"}) || !slices.Equal(gc.Peers[0].SubjectPrefixes, []string{"10."}) ||
					string(gc.Peers[0].Key.Secret) != "group-secret-0123456789" {
					t.Errorf("peers = %+v", gc.Peers)
				}
				if len(gc.ReceiveKeys) != 1 || !slices.Equal(gc.ReceiveKeys[0].Nodes, []string{"a"}) {
					t.Errorf("receive keys = %v", gc.ReceiveKeys)
				}
				if c.StateFile() != filepath.Join(dir, "state.db") || c.PruneEvery() != 30*time.Second {
					t.Errorf("state file %s, prune every %v", c.StateFile(), c.PruneEvery())
				}
				ign := strings.Join(c.Ignored(), "; ")
				for _, w := range []string{"pushRetry.maxAttempts", "pushInterval", "extra (unknown)"} {
					if !strings.Contains(ign, w) {
						t.Errorf("ignored %q lacks %s", ign, w)
					}
				}
			},
		},
		{
			name: "empty address binds every address",
			json: `{"nodeName":"b","group":"lab","listen":{"port":19471},"secretFile":"lab.secret","statePath":"s.db"}`,
			check: func(t *testing.T, _ LegacyConfig, gc GroupConfig) {
				if gc.ListenAddress != ":19471" {
					t.Errorf("listen = %q, want :19471", gc.ListenAddress)
				}
			},
		},
		{
			name: "no port: push only",
			json: `{"nodeName":"b","group":"lab","secretFile":"lab.secret","peers":[{"nodeName":"a","endpoint":"http://127.0.0.1:1"}],"statePath":"s.db"}`,
			check: func(t *testing.T, _ LegacyConfig, gc GroupConfig) {
				if gc.ListenAddress != "" || len(gc.Peers) != 1 {
					t.Errorf("config = %+v", gc)
				}
			},
		},
		{name: "no secret", json: `{"nodeName":"b","group":"lab","statePath":"s.db"}`, wantErr: "group lab has no auth: add spec.auth.secretFile"},
		{name: "missing names", json: `{"listen":{"port":1}}`, wantErr: "group is required; nodeName is required"},
		{name: "peer without endpoint", json: `{"nodeName":"b","group":"lab","secretFile":"lab.secret","peers":[{"nodeName":"a"}]}`, wantErr: "peers[0].endpoint is required"},
		{name: "bad duration", json: `{"nodeName":"b","group":"lab","secretFile":"lab.secret","replayWindow":"5 minutes"}`, wantErr: `replayWindow: "5 minutes" is not a duration`},
		{name: "not JSON", json: `nodeName: b`, wantErr: "want the JSON object of routerd v1alpha1's routerd-eventd"},
		{name: "unreadable secret", json: `{"nodeName":"b","group":"lab","secretFile":"none.secret"}`, wantErr: "spec.auth.secretFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "eventd.json")
			if err := os.WriteFile(path, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadLegacyConfig(path)
			var gc GroupConfig
			if err == nil {
				gc, err = c.GroupConfig()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c, gc)
		})
	}
}
