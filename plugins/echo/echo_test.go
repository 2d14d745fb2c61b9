package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	extism "github.com/extism/go-sdk"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/host/wasmbuild"
)

func inputs(t *testing.T) map[string][]byte {
	t.Helper()
	req, err := os.ReadFile(filepath.Join("testdata", "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"empty":   {},
		"request": req,
		"binary":  {0, 1, 2, 0xff, '{'},
		"3 KB":    bytes.Repeat([]byte("abc"), 1024),
	}
}

func TestEchoNative(t *testing.T) {
	for name, in := range inputs(t) {
		for _, h := range abi.Hooks() {
			t.Run(name+"/"+string(h), func(t *testing.T) {
				id, _ := h.ID()
				out, err := guest.Invoke(id, in)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("got %q, %v; want the input back", out, err)
				}
			})
		}
	}
}

func TestEchoWasm(t *testing.T) {
	path := wasmbuild.ForTest(t, "plugins/echo")
	ctx := context.Background()
	p, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: path}}}, extism.PluginConfig{EnableWasi: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	rc, out, err := p.Call(abi.ExportManifest, nil)
	if err != nil || rc != 0 {
		t.Fatalf("manifest: rc=%d err=%v", rc, err)
	}
	m, err := abi.DecodeManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "echo" || len(m.Hooks) != 3 {
		t.Fatalf("manifest = %+v", m)
	}
	for name, in := range inputs(t) {
		for _, h := range abi.Hooks() {
			t.Run(name+"/"+string(h), func(t *testing.T) {
				rc, out, err := p.Call(string(h), in)
				if err != nil || rc != 0 || !bytes.Equal(out, in) {
					t.Fatalf("rc=%d err=%v, %d bytes; want the %d input bytes back", rc, err, len(out), len(in))
				}
			})
		}
	}
}
