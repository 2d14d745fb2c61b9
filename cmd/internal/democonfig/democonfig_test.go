package democonfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareRewritesPorts(t *testing.T) {
	dst := t.TempDir()
	ports := map[string]int{"router-a": 1001, "router-b": 1002, "router-c": 1003}
	cfg, err := Prepare("../../../testdata/demo/router-c", dst, ports, "secret-secret-secret-secret-0123")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.EventGroups()[0]
	if g.Spec.NodeName != "router-c" || g.Spec.Listen.Port != 1003 {
		t.Fatalf("group %+v", g.Spec)
	}
	var eps []string
	for _, p := range cfg.EventPeers() {
		eps = append(eps, fmt.Sprintf("%s=%s", p.Spec.NodeName, p.Spec.Endpoint))
	}
	if strings.Join(eps, " ") != "router-a=http://127.0.0.1:1001 router-b=http://127.0.0.1:1002" {
		t.Fatalf("peers %v", eps)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "secrets", "lab.key")); err != nil || strings.TrimSpace(string(b)) != "secret-secret-secret-secret-0123" {
		t.Fatalf("secret file %q %v", b, err)
	}
	if _, err := Prepare("../../../testdata/demo/router-c", t.TempDir(), map[string]int{"router-a": 1}, "x"); err == nil {
		t.Fatal("a node without a port was accepted")
	}
}
