package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/dataplane/desired"
	"routerd.net/routerd/federation/transport"
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
  references  the hybrid resources' references (OverlayPeer, AddressMobilityDomain,
              interfaces) resolve, as routerd translates them into the dataplane
  secrets     every secret file the EventGroups and EventPeers name (spec.auth.secretFile,
              secretRef file:, keys[].secretFile, spec.tls.keyFile) is readable, holds a
              secret of at least 16 bytes (fail otherwise) and has mode 0600 or stricter
              (warn otherwise: chmod 600 FILE)
  warnings    the other warnings of config validate (fields ignored in a kind: Router
              file); they warn`,
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
	validate := doctorCheck{Area: "config", Name: "validate", Status: checkOK}
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

	auth := doctorCheck{Area: "config", Name: "group-auth", Status: checkOK, Summary: "every EventGroup has a secret"}
	if el != nil {
		auth.Summary = "every EventGroup that loads has a secret"
	}
	other := doctorCheck{Area: "config", Name: "warnings", Status: checkOK, Summary: "no warnings"}
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
		other.Status = checkWarn
		other.Summary = configPlural(n, "warning") + " (see routerctl config validate)"
	}
	checks := []doctorCheck{validate, auth}
	if cfg != nil {
		checks = append(checks, configReferences(cfg), configSecrets(cfg, dir))
	}
	return append(checks, other), nil
}

// configReferences reports the problems of translating the hybrid resources into the
// desired dataplane (the references a resource makes that do not resolve).
func configReferences(cfg *schemas.Config) doctorCheck {
	c := doctorCheck{Area: "config", Name: "references", Status: checkOK, Summary: "every reference of the hybrid resources resolves"}
	res := desired.FromConfig(cfg, desired.Options{})
	if n := len(res.Problems); n > 0 {
		c.Status, c.Details = checkFail, res.Problems
		c.Summary = configPlural(n, "reference") + " that do not resolve: routerd cannot build these routes, addresses or clamps"
	}
	return c
}

// secretRef is one secret file named by the config.
type secretRef struct {
	path  string // resolved against the config dir
	where string // the resource and field naming it
}

// configSecretFiles lists the secret files of the EventGroups (the one named group, or
// all when group is "") and their EventPeers.
func configSecretFiles(cfg *schemas.Config, dir, group string) []secretRef {
	var out []secretRef
	add := func(p, where string) {
		if p == "" {
			return
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		out = append(out, secretRef{path: p, where: where})
	}
	for _, g := range cfg.EventGroups() {
		if group != "" && g.Metadata.Name != group {
			continue
		}
		w := "EventGroup/" + g.Metadata.Name + " spec."
		a := g.Spec.Auth
		add(a.SecretFile, w+"auth.secretFile")
		if rest, ok := strings.CutPrefix(a.SecretRef, "file:"); ok {
			add(rest, w+"auth.secretRef")
		}
		for i, k := range a.Keys {
			add(k.SecretFile, fmt.Sprintf("%sauth.keys[%d].secretFile", w, i))
		}
		if g.Spec.TLS != nil {
			add(g.Spec.TLS.KeyFile, w+"tls.keyFile")
		}
		for _, p := range cfg.EventPeersOf(g.Metadata.Name) {
			w := "EventPeer/" + p.Metadata.Name + " spec."
			if a := p.Spec.Auth; a != nil {
				add(a.SecretFile, w+"auth.secretFile")
				for i, k := range a.Keys {
					add(k.SecretFile, fmt.Sprintf("%sauth.keys[%d].secretFile", w, i))
				}
			}
		}
	}
	return out
}

// configSecrets checks that every secret file is readable, long enough and not readable
// by group or others.
func configSecrets(cfg *schemas.Config, dir string) doctorCheck {
	c := doctorCheck{Area: "config", Name: "secrets", Status: checkOK}
	files := configSecretFiles(cfg, dir, "")
	worst := checkOK
	for _, f := range files {
		fi, err := os.Stat(f.path)
		if err != nil {
			worst = checkFail
			c.Details = append(c.Details, fmt.Sprintf("%s: %s: %v (create it with the group secret, mode 0600, readable by the routerd user)", f.where, f.path, errors.Unwrap(err)))
			continue
		}
		if !fi.Mode().IsRegular() {
			// A directory, a FIFO (reading it would block) or a device is never a secret.
			worst = checkFail
			c.Details = append(c.Details, fmt.Sprintf("%s: %s is not a regular file (%s): write the secret into a plain file, mode 0600", f.where, f.path, fi.Mode().Type()))
			continue
		}
		var readErr error
		if strings.HasSuffix(f.where, "tls.keyFile") {
			var fh *os.File
			if fh, readErr = os.Open(f.path); readErr == nil {
				fh.Close()
			}
		} else {
			_, readErr = transport.ReadSecretFile(f.path)
		}
		if readErr != nil {
			worst = checkFail
			c.Details = append(c.Details, fmt.Sprintf("%s: %v", f.where, readErr))
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if worst == checkOK {
				worst = checkWarn
			}
			c.Details = append(c.Details, fmt.Sprintf("%s: %s has mode %04o: other users can read the secret; chmod 600 %s", f.where, f.path, perm, f.path))
		}
	}
	c.Status = worst
	switch worst {
	case checkOK:
		c.Summary = fmt.Sprintf("%s readable with mode 0600", configPlural(len(files), "secret file"))
	case checkWarn:
		c.Summary = configPlural(len(c.Details), "secret file") + " readable by other users"
	default:
		c.Summary = "secret files missing, unreadable or too short: routerd-eventd cannot sign or verify with them"
	}
	return c
}
