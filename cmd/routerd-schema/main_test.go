package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"routerd.net/routerd/schemas"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
		file string
	}{
		{name: "writes schema", args: []string{"-out", filepath.Join(dir, "new")}, want: 0, file: filepath.Join(dir, "new", schemas.JSONSchemaFile)},
		{name: "extra argument", args: []string{"-out", dir, "extra"}, want: 2},
		{name: "unknown flag", args: []string{"-nope"}, want: 2},
		{name: "help", args: []string{"-h"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(tt.args, &out, &errOut); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d; stderr: %s", tt.args, got, tt.want, errOut.String())
			}
			if tt.file == "" {
				return
			}
			got, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := schemas.GenerateJSONSchema()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from GenerateJSONSchema()", tt.file)
			}
		})
	}
}

// TestCommittedSchemaIsFresh fails when schemas/ holds a stale copy (as make check-schema).
func TestCommittedSchemaIsFresh(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("..", "..", "schemas", schemas.JSONSchemaFile))
	if err != nil {
		t.Fatalf("read committed schema: %v (run 'make schema')", err)
	}
	fresh, err := schemas.GenerateJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, fresh) {
		t.Fatalf("schemas/%s is stale: run 'make schema' and commit it", schemas.JSONSchemaFile)
	}
}
