package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats for listings and documents (-o).
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// addOutputFlag adds the persistent -o/--output flag every listing shares.
func addOutputFlag(root *cobra.Command) {
	root.PersistentFlags().StringP("output", "o", formatTable, "output format: table, json or yaml")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{formatTable, formatJSON, formatYAML}, cobra.ShellCompDirectiveNoFileComp))
}

// outputFormat returns the validated -o value of cmd.
func outputFormat(cmd *cobra.Command) (string, error) {
	f, err := cmd.Flags().GetString("output")
	if err != nil {
		return "", err
	}
	switch f {
	case formatTable, formatJSON, formatYAML:
		return f, nil
	}
	return "", usagef("-o %q: want table, json or yaml", f)
}

// table is a plain-text rendering of a listing: a header row and data rows.
type table struct {
	header []string
	rows   [][]string
}

// addRow appends a row; values are formatted with %v.
func (t *table) addRow(values ...any) {
	row := make([]string, len(values))
	for i, v := range values {
		row[i] = fmt.Sprint(v)
	}
	t.rows = append(t.rows, row)
}

// write prints the table with aligned columns.
func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// render prints v in the format chosen with -o: JSON and YAML marshal v itself (through
// its json tags), table calls toTable. Listings pass a slice so that an empty listing is
// [] in JSON, never null.
func render(cmd *cobra.Command, v any, toTable func() *table) error {
	format, err := outputFormat(cmd)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case formatYAML:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	return toTable().write(w)
}
