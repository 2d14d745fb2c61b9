package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/host"
)

func TestPluginInspect(t *testing.T) {
	plugins, state, _ := pluginDir(t, nil)
	conf := filepath.Join(state, "plugins.yaml")
	doc := `apiVersion: plugin.routerd.net/v1alpha1
kind: Plugin
metadata:
  name: claims
spec:
  module: event-to-remote-claim.wasm
  capabilities: [observe.cloud]
  grants:
    kv: true
    eventEmit:
      types: [routerd.test.x]
  limits:
    memoryMiB: 48
    timeout: 750ms
`
	if err := os.WriteFile(conf, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := ctlPlugin(t, "plugin", "inspect", "claims", "--plugin-dir", plugins, "--state-dir", state, "--config", conf, "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info host.PluginInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Manifest == nil || info.Manifest.Name != "event-to-remote-claim" || info.Spec.Limits.MemoryMiB != 48 || info.Spec.Limits.Timeout != 750*time.Millisecond {
		t.Fatalf("info %+v", info)
	}
	if strings.Join(info.Requested, ",") != "propose.dynamicConfig" || strings.Join(info.Missing, ",") != "propose.dynamicConfig" ||
		strings.Join(info.Granted, ",") != "observe.cloud,kv,event.emit" {
		t.Fatalf("requested %v granted %v missing %v", info.Requested, info.Granted, info.Missing)
	}
	table, _, code := ctlPlugin(t, "plugin", "inspect", "claims", "--plugin-dir", plugins, "--state-dir", state, "--config", conf)
	if code != exitOK || !strings.Contains(table, "eventEmit.types=routerd.test.x") || !strings.Contains(table, "memory 48 MiB, timeout 750ms") {
		t.Fatalf("exit %d\n%s", code, table)
	}
	if _, errOut, code := ctlPlugin(t, "plugin", "inspect", "nope", "--plugin-dir", plugins, "--state-dir", state, "--config", conf); code != exitFailed || !strings.Contains(errOut, "nope.wasm") {
		t.Fatalf("missing plugin: exit %d %s", code, errOut)
	}
}

// storeWithEvents writes the observed events into a fresh store in state.
