package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/host"
)

func init() { addDoctorArea(pluginsDoctorArea) }

var pluginsDoctorArea = doctorArea{
	name:  "plugins",
	short: "Check the running daemon's plugins: loaded, breakers, denied host calls, preemption",
	long: `doctor plugins asks the running routerd (GET /v1/plugins on --control-socket, 3s
timeout) for its plugins. Checks:

  daemon        routerd answers on its control socket (fail when it does not: the other
                plugin checks need it)
  loaded        every plugin loaded (fail: the module failed to load; warn: a newer
                module failed and the previous version still serves)
  breaker       no plugin's circuit breaker is open (fail, with the failure that opened
                it) or half-open (warn)
  denied-calls  no plugin called a host function its grants deny (warn, with the count)
  preemption    how each plugin's calls are stopped at their deadline (loop-check, or
                close-on-done for modules that could not be instrumented); information`,
	run: runPluginsDoctor,
}

func runPluginsDoctor(ctx context.Context, cmd *cobra.Command) ([]doctorCheck, error) {
	s, err := settings.Load(cmd.Flags())
	if err != nil {
		return nil, usagef("%v", err)
	}
	var sts []doctorPluginStatus
	if err := daemonGet(ctx, s.ControlSocket, "/v1/plugins", &sts); err != nil {
		return []doctorCheck{{Area: "plugins", Name: "daemon", Status: checkFail,
			Summary: "routerd could not be asked on its control socket " + s.ControlSocket + ": the plugins cannot be checked",
			Details: []string{"Cause: " + err.Error() + ".",
				"Start routerd (systemctl start routerd), or pass the socket it listens on with --control-socket; `routerctl plugin list --standalone` loads the plugin dir without it."}}}, nil
	}
	return pluginChecks(s.ControlSocket, sts), nil
}

// doctorPluginStatus is a plugin as GET /v1/plugins reports it, with the cause of an
// open breaker (sent by hosts that record it; empty otherwise: LastError stands in).
type doctorPluginStatus struct {
	host.PluginStatus
	BreakerCause     string `json:"breakerCause,omitempty"`
	BreakerCauseKind string `json:"breakerCauseKind,omitempty"`
}

// breakerCause is why s's breaker opened, as well as the host says.
func (s doctorPluginStatus) breakerCause() string {
	switch {
	case s.BreakerCause != "" && s.BreakerCauseKind != "":
		return s.BreakerCause + " (" + s.BreakerCauseKind + ")"
	case s.BreakerCause != "":
		return s.BreakerCause
	}
	return orNone(s.LastError)
}

// pluginChecks turns the daemon's plugin status into checks: one finding per plugin with
// a problem, or one ok finding per check.
func pluginChecks(socket string, sts []doctorPluginStatus) []doctorCheck {
	out := []doctorCheck{{Area: "plugins", Name: "daemon", Status: checkOK, Summary: fmt.Sprintf("routerd answers on %s (%s)", socket, configPlural(len(sts), "plugin"))}}
	type check struct {
		name   string
		okLine string
		judge  func(s doctorPluginStatus) (status, summary string, details []string)
	}
	checks := []check{
		{"loaded", "every plugin is loaded", func(s doctorPluginStatus) (string, string, []string) {
			switch s.State {
			case host.StateFailed:
				return checkFail, "plugin " + s.Name + " failed to load", []string{"Cause: " + orNone(s.LastError) + ".", "Fix the module or its Plugin resource; `routerctl plugin inspect " + s.Name + "` shows the manifest and grants."}
			case host.StateStale:
				return checkWarn, "plugin " + s.Name + ": a newer module failed to load; version " + s.Version + " still serves", []string{"Cause: " + orNone(s.LastError) + "."}
			}
			return checkOK, "", nil
		}},
		{"breaker", "no circuit breaker is open", func(s doctorPluginStatus) (string, string, []string) {
			switch s.Breaker {
			case host.BreakerOpen.String():
				return checkFail, "plugin " + s.Name + ": circuit breaker open, calls are refused", []string{"Opened by: " + s.breakerCause() + ".", "It half-opens after its cool-down; fix the cause (`routerctl plugin list`, the plugin's log)."}
			case host.BreakerHalfOpen.String():
				return checkWarn, "plugin " + s.Name + ": circuit breaker half-open, probing", []string{"Last failure: " + s.breakerCause() + "."}
			}
			return checkOK, "", nil
		}},
		{"denied-calls", "no plugin called a host function it is not granted", func(s doctorPluginStatus) (string, string, []string) {
			if s.DeniedHostCalls == 0 {
				return checkOK, "", nil
			}
			return checkWarn, fmt.Sprintf("plugin %s made %d denied host calls", s.Name, s.DeniedHostCalls),
				[]string{"Granted: " + orNone(strings.Join(s.Grants, ", ")) + ". Grant the capability in its Plugin resource if it needs it, or fix the plugin; the audit log names each call."}
		}},
	}
	for _, c := range checks {
		found := false
		for _, s := range sts {
			st, sum, det := c.judge(s)
			if st == checkOK {
				continue
			}
			found = true
			out = append(out, doctorCheck{Area: "plugins", Name: c.name, Status: st, Summary: sum, Details: det, Resource: "Plugin/" + s.Name})
		}
		if !found {
			out = append(out, doctorCheck{Area: "plugins", Name: c.name, Status: checkOK, Summary: c.okLine})
		}
	}
	pre := doctorCheck{Area: "plugins", Name: "preemption", Status: checkOK, Summary: "how calls are stopped at their deadline"}
	for _, s := range sts {
		if s.Preemption != "" {
			pre.Details = append(pre.Details, s.Name+": "+s.Preemption)
		}
	}
	return append(out, pre)
}

func orNone(s string) string {
	if s == "" {
		return "(none recorded)"
	}
	return s
}
