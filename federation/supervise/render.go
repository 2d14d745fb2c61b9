// Package supervise runs routerd-eventd, the per-group federation transport, under a
// supervisor: it renders the systemd template unit routerd-eventd@.service and a FreeBSD
// rc.d script for hosts with an init system, and provides Supervisor, which runs one
// routerd-eventd child per EventGroup and restarts it with exponential backoff where
// there is none (tests, the demo, containers).
package supervise

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"
)

//go:embed templates/*.tmpl
var templates embed.FS

// Unit file names.
const (
	// SystemdUnitName is the systemd template unit; instances are routerd-eventd@<group>.service.
	SystemdUnitName = "routerd-eventd@.service"
	// RCDName is the FreeBSD rc.d script name.
	RCDName = "routerd_eventd"
)

// RenderOptions describe the installation the unit files point at. Zero fields take the
// defaults of DefaultRenderOptions.
type RenderOptions struct {
	// Binary is the absolute path of routerd-eventd.
	Binary string
	// SettingsFile is passed as --settings.
	SettingsFile string
	// StateDir holds the node's SQLite store (shared with routerd).
	StateDir string
	// User and Group run the daemon (default routerd; Group defaults to User).
	User, Group string
	// DynamicUser runs the systemd unit under a transient user instead of User (only
	// sensible when routerd shares that identity through the state directory).
	DynamicUser bool
	// BindPrivilegedPorts grants CAP_NET_BIND_SERVICE, for a listen port below 1024.
	BindPrivilegedPorts bool
}

// DefaultRenderOptions returns the options for a packaged Linux install.
func DefaultRenderOptions() RenderOptions {
	return RenderOptions{
		Binary:       "/usr/local/sbin/routerd-eventd",
		SettingsFile: "/etc/routerd/routerd.yaml",
		StateDir:     "/var/lib/routerd",
		User:         "routerd",
		Group:        "routerd",
	}
}

// DefaultRCDOptions returns the options for a FreeBSD install (ports layout).
func DefaultRCDOptions() RenderOptions {
	return RenderOptions{
		Binary:       "/usr/local/sbin/routerd-eventd",
		SettingsFile: "/usr/local/etc/routerd/routerd.yaml",
		StateDir:     "/var/db/routerd",
		User:         "routerd",
		Group:        "routerd",
	}
}

var safeValue = regexp.MustCompile(`^[A-Za-z0-9_./@:+-]*$`)

func (o RenderOptions) withDefaults(def RenderOptions) (RenderOptions, error) {
	if o.Binary == "" {
		o.Binary = def.Binary
	}
	if o.SettingsFile == "" {
		o.SettingsFile = def.SettingsFile
	}
	if o.StateDir == "" {
		o.StateDir = def.StateDir
	}
	if o.User == "" {
		o.User = def.User
	}
	if o.Group == "" {
		o.Group = o.User
	}
	for name, v := range map[string]string{"binary": o.Binary, "settings file": o.SettingsFile, "state dir": o.StateDir} {
		if !path.IsAbs(v) {
			return o, fmt.Errorf("supervise: render: %s %q is not an absolute path", name, v)
		}
	}
	for name, v := range map[string]string{"binary": o.Binary, "settings file": o.SettingsFile, "state dir": o.StateDir, "user": o.User, "group": o.Group} {
		if v == "" || !safeValue.MatchString(v) {
			return o, fmt.Errorf("supervise: render: %s %q contains characters that need quoting", name, v)
		}
	}
	return o, nil
}

// StateDirectoryName is the StateDirectory= value: StateDir relative to /var/lib, or ""
// when StateDir lies elsewhere (then ReadWritePaths= is used).
func (o RenderOptions) StateDirectoryName() string {
	if rest, ok := strings.CutPrefix(path.Clean(o.StateDir), "/var/lib/"); ok && rest != "" {
		return rest
	}
	return ""
}

func render(name string, o RenderOptions) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").ParseFS(templates, "templates/"+name)
	if err != nil {
		return nil, fmt.Errorf("supervise: parse template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, o); err != nil {
		return nil, fmt.Errorf("supervise: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// RenderSystemd renders the hardened systemd template unit routerd-eventd@.service.
// Enable one instance per EventGroup: systemctl enable --now routerd-eventd@<group>.
func RenderSystemd(o RenderOptions) ([]byte, error) {
	o, err := o.withDefaults(DefaultRenderOptions())
	if err != nil {
		return nil, err
	}
	return render("systemd.service.tmpl", o)
}

// RenderRCD renders the FreeBSD rc.d script; rc.conf lists the groups in
// routerd_eventd_groups and each runs under daemon(8), which restarts it when it dies.
func RenderRCD(o RenderOptions) ([]byte, error) {
	o, err := o.withDefaults(DefaultRCDOptions())
	if err != nil {
		return nil, err
	}
	if o.DynamicUser {
		return nil, fmt.Errorf("supervise: render rc.d: FreeBSD has no dynamic users: name a user")
	}
	return render("rc.d.tmpl", o)
}
