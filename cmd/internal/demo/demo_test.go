package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoFailsClearly(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // the kept work dir lands here
	var out bytes.Buffer
	err := Run(context.Background(), Options{PluginDir: t.TempDir(), ConfigDir: "../../../testdata/demo",
		EventdBinary: "/bin/true", Timeout: 10 * time.Second, Out: &out})
	if err == nil || !strings.Contains(err.Error(), "no event-to-remote-claim.wasm") {
		t.Fatalf("demo without plugins: %v", err)
	}
	if !strings.Contains(out.String(), "DEMO FAILED") || !strings.Contains(out.String(), "state and logs kept in") {
		t.Fatalf("demo output:\n%s", out.String())
	}
}
