package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"routerd.net/routerd/schemas"
)

func init() { addCommand(newConfigCmd) }

// newConfigCmd is the config command group.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check resource documents (Kinds)",
		Long: `Work with routerd's resource documents: the YAML files of the config directory
(conf.d) holding EventGroups, EventPeers, Plugins, claims and the other Kinds.`,
	}
	cmd.AddCommand(newConfigValidateCmd())
	return cmd
}

// newConfigValidateCmd is routerctl config validate PATH...
func newConfigValidateCmd() *cobra.Command {
	var skipUnknown bool
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Validate config files and directories strictly",
		Long: `Validate resource documents the way routerd loads them.

Each PATH is a file or a directory (its *.yaml, *.yml and *.json files). All paths are
loaded together, so references between files (an EventPeer's groupRef, a subscription's
pluginRef, a claim's domainRef, ...) are checked. Files may hold bare multi-document
resources or the original single "kind: Router" document with spec.resources.

Every problem is printed, one per line, as

  file:line: Kind/name: field.path: what is wrong and what is expected

followed by a summary. Unknown fields, wrong types, bad names, CIDRs, addresses, URLs,
ports, durations and enum values, missing references and duplicate names are errors.
Kinds of routerd v1alpha1 that this routerd does not provide (Interface, BGPPeer,
WireGuardInterface, ...) are errors naming them as such, unless --skip-unknown-kinds
skips them with a warning.

Warnings are printed with the problems ("file:line: warning: ...") but do not make the
config invalid: the exit code stays 0. They are: documents skipped by
--skip-unknown-kinds, unknown fields in a file written in routerd v1alpha1's
"kind: Router" form (ignored, as routerd v1alpha1 ignores them), and EventGroups without
spec.auth (routerd-eventd does not start transport for them; routerctl doctor config
fails on them).

With -o json (or yaml) the problems and warnings are printed as a list of objects with
the fields file, line, document, kind, name, path, message, severity and (for warnings)
code.

Exit codes: 0 valid, 1 invalid, 2 usage error.`,
		Example: `  # validate the daemon's config directory
  routerctl config validate /etc/routerd/conf.d

  # validate two files together, skipping Kinds of the original routerd
  routerctl config validate --skip-unknown-kinds router.yaml federation.yaml

  # machine-readable problems
  routerctl config validate -o json conf.d`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := outputFormat(cmd)
			if err != nil {
				return err
			}
			opts := schemas.LoadOptions{SkipUnknownKinds: skipUnknown}
			cfg, err := opts.Load(args...)
			var el *schemas.ErrorList
			if err != nil && !errors.As(err, &el) {
				return fmt.Errorf("config validate: %w", err)
			}
			problems := []schemas.Problem{}
			var warnings []schemas.Problem
			switch {
			case cfg != nil:
				warnings = cfg.Warnings
			case el != nil:
				warnings = el.Warnings
			}
			problems = append(problems, warnings...)
			if el != nil {
				problems = append(problems, el.Problems...)
			}
			if format == formatTable {
				printConfigProblems(cmd.OutOrStdout(), cfg, el, warnings)
			} else if err := render(cmd, problems, nil); err != nil {
				return err
			}
			if el != nil {
				return silentFailure
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&skipUnknown, "skip-unknown-kinds", false,
		"skip, with a warning, Kinds this routerd does not provide (e.g. routerd v1alpha1's Interface, BGPPeer)")
	return cmd
}

// printProblems writes the problems one per line and a summary.
func printConfigProblems(w io.Writer, cfg *schemas.Config, el *schemas.ErrorList, warnings []schemas.Problem) {
	for _, p := range warnings {
		fmt.Fprintln(w, p.String())
	}
	if el != nil {
		for _, p := range el.Problems {
			fmt.Fprintln(w, p.String())
		}
		fmt.Fprintf(w, "invalid: %s%s\n", configPlural(len(el.Problems), "problem"), configWarningSummary(warnings))
		return
	}
	if cfg.Len() == 0 {
		fmt.Fprintf(w, "valid: no resource documents found%s\n", configWarningSummary(warnings))
		return
	}
	fmt.Fprintf(w, "valid: %s (%s)%s\n", configPlural(cfg.Len(), "resource"), cfg.String(), configWarningSummary(warnings))
}

func configWarningSummary(warnings []schemas.Problem) string {
	if len(warnings) == 0 {
		return ""
	}
	return ", " + configPlural(len(warnings), "warning")
}

func configPlural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
