package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/schemas"
)

func init() { addDoctorArea(configDoctorArea) }

// configDoctorArea validates the config dir as routerd loads it and fails on what routerd
// accepts but cannot run (an EventGroup without a secret).
var configDoctorArea = doctorArea{
	name:  "config",
	short: "Validate the resource documents of the config dir as routerd loads them",
	long: `doctor config loads the resource documents of the config dir (--config-dir) the way
routerd does (strictly; Kinds routerd does not provide are errors) and reports:

  validate    every document loads: no syntax, type, value or reference problem
              (the details are the problems, as routerctl config validate prints them)
  group-auth  every EventGroup has a secret (spec.auth.secretFile, secretRef or keys);
              routerd-eventd does not start transport for a group without one, so this
              warning of config validate is a failure here
  warnings    the other warnings of config validate (fields ignored in a kind: Router
              file), listed for information; they do not fail`,
	run: runConfigDoctor,
}

func runConfigDoctor(_ context.Context, cmd *cobra.Command) ([]doctorCheck, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, usagef("%v", err)
	}
	return configChecks(s.ConfigDir)
}

// configChecks loads dir with routerd's options and turns the problems and warnings into
// doctor checks.
func configChecks(dir string) ([]doctorCheck, error) {
	cfg, err := schemas.LoadDir(dir)
	var el *schemas.ErrorList
	if err != nil && !errors.As(err, &el) {
		return nil, fmt.Errorf("config: %w", err)
	}
	var warnings []schemas.Problem
	validate := doctorCheck{Area: "config", Name: "validate", Status: checkPass}
	if el != nil {
		warnings = el.Warnings
		validate.Status = checkFail
		validate.Summary = fmt.Sprintf("the resource documents in %s do not load: %s (routerctl config validate %s)", dir, configPlural(len(el.Problems), "problem"), dir)
		for _, p := range el.Problems {
			validate.Details = append(validate.Details, p.String())
		}
	} else {
		warnings = cfg.Warnings
		validate.Summary = fmt.Sprintf("%s load from %s", configPlural(cfg.Len(), "resource"), dir)
	}

	auth := doctorCheck{Area: "config", Name: "group-auth", Status: checkPass, Summary: "every EventGroup has a secret"}
	if el != nil {
		auth.Summary = "every EventGroup that loads has a secret"
	}
	other := doctorCheck{Area: "config", Name: "warnings", Status: checkPass, Summary: "no warnings"}
	for _, w := range warnings {
		if w.Code == schemas.WarnGroupWithoutAuth {
			auth.Details = append(auth.Details, w.String())
		} else {
			other.Details = append(other.Details, w.String())
		}
	}
	if n := len(auth.Details); n > 0 {
		auth.Status = checkFail
		auth.Summary = fmt.Sprintf("%s without auth: routerd-eventd does not start their transport; add spec.auth.secretFile", configPlural(n, "EventGroup"))
	}
	if n := len(other.Details); n > 0 {
		other.Summary = configPlural(n, "warning") + " (not failures; see routerctl config validate)"
	}
	return []doctorCheck{validate, auth, other}, nil
}
