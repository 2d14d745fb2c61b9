package main

import (
	"os"
	"path/filepath"
	"testing"

	"routerd.net/routerd/host/wasmbuild"
)

// ctlPlugin runs routerctl with args and returns stdout, stderr and the exit code.
func ctlPlugin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	r := runCtl(t, "", args...)
	return r.stdout, r.stderr + r.err, r.code
}

// pluginDir builds echo and event-to-remote-claim into a fresh plugin dir (plus extra
// files) and returns it with a state dir and a config dir that does not exist.
func pluginDir(t *testing.T, extra map[string][]byte) (plugins, state, noConfig string) {
	t.Helper()
	plugins, state = t.TempDir(), t.TempDir()
	for _, p := range []string{"echo", "event-to-remote-claim"} {
		b, err := os.ReadFile(wasmbuild.ForTest(t, "plugins/"+p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(plugins, p+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range extra {
		if err := os.WriteFile(filepath.Join(plugins, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return plugins, state, filepath.Join(state, "no-conf.d")
}

const observedEvents = "../../testdata/events/observed.json"
