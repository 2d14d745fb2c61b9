// Command routerd-schema writes the JSON Schema of routerd's config documents,
// generated from the Kind registry of package schemas, to
// DIR/routerd-config-v1alpha1.schema.json.
//
//	routerd-schema -out schemas
//
// Editors use the schema through a first line such as
// "# yaml-language-server: $schema=../schemas/routerd-config-v1alpha1.schema.json".
// `make schema` regenerates the committed copy and `make check-schema` fails when it is
// stale.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"routerd.net/routerd/schemas"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run parses args, writes the schema and returns the exit code: 0 written, 1 failed,
// 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routerd-schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "schemas", "directory to write "+schemas.JSONSchemaFile+" into (created if missing)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: routerd-schema [-out DIR]\n\nWrites DIR/%s, the JSON Schema of routerd config documents,\ngenerated from the Kind registry.\n\n", schemas.JSONSchemaFile)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "routerd-schema: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	path, err := write(*out)
	if err != nil {
		fmt.Fprintf(stderr, "routerd-schema: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d kinds)\n", path, len(schemas.Kinds()))
	return 0
}

// write generates the schema into dir and returns the file's path.
func write(dir string) (string, error) {
	b, err := schemas.GenerateJSONSchema()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, schemas.JSONSchemaFile)
	tmp, err := os.CreateTemp(dir, ".schema-*.json")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
