package supervise

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		render func(RenderOptions) ([]byte, error)
		opts   RenderOptions
	}{
		{name: "systemd defaults", golden: "routerd-eventd@.service", render: RenderSystemd},
		{name: "systemd dynamic user and privileged port", golden: "routerd-eventd@.dynamic.service", render: RenderSystemd,
			opts: RenderOptions{DynamicUser: true, Binary: "/usr/bin/routerd-eventd", BindPrivilegedPorts: true}},
		{name: "systemd state outside /var/lib", golden: "routerd-eventd@.srv.service", render: RenderSystemd,
			opts: RenderOptions{User: "router", StateDir: "/srv/routerd"}},
		{name: "rc.d defaults", golden: "routerd_eventd.rc", render: RenderRCD},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.render(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("rendered %s differs from %s:\n%s", tt.name, path, got)
			}
		})
	}
}

func TestRenderContent(t *testing.T) {
	tests := []struct {
		name    string
		render  func(RenderOptions) ([]byte, error)
		opts    RenderOptions
		want    []string
		notWant []string
	}{
		{
			name:   "systemd hardened with a dedicated user",
			render: RenderSystemd,
			want: []string{
				"ExecStart=/usr/local/sbin/routerd-eventd --group %i --settings /etc/routerd/routerd.yaml",
				"User=routerd\n", "Group=routerd\n", "StateDirectory=routerd\n", "ProtectSystem=strict\n",
				"NoNewPrivileges=yes\n", "Restart=on-failure\n", "RestartSteps=", "RestartMaxDelaySec=", "CapabilityBoundingSet=\n",
			},
			notWant: []string{"DynamicUser", "CAP_NET_BIND_SERVICE"},
		},
		{
			name:    "systemd dynamic user",
			render:  RenderSystemd,
			opts:    RenderOptions{DynamicUser: true},
			want:    []string{"DynamicUser=yes\n"},
			notWant: []string{"User=routerd"},
		},
		{
			name:    "systemd state dir elsewhere",
			render:  RenderSystemd,
			opts:    RenderOptions{StateDir: "/srv/r"},
			want:    []string{"ReadWritePaths=/srv/r\n", "--state-dir /srv/r"},
			notWant: []string{"StateDirectory="},
		},
		{
			name:   "rc.d runs each group under daemon(8)",
			render: RenderRCD,
			want: []string{"# PROVIDE: routerd_eventd", "command=\"/usr/sbin/daemon\"", "-r -R 2",
				"--group ${group}", `routerd_eventd_user:="routerd"`, "run_rc_command \"$1\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.render(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(b), w) {
					t.Errorf("output contains %q", w)
				}
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name   string
		render func(RenderOptions) ([]byte, error)
		opts   RenderOptions
	}{
		{name: "relative binary", render: RenderSystemd, opts: RenderOptions{Binary: "bin/routerd-eventd"}},
		{name: "space in settings path", render: RenderSystemd, opts: RenderOptions{SettingsFile: "/etc/router d.yaml"}},
		{name: "newline in user", render: RenderSystemd, opts: RenderOptions{User: "a\nExecStartPre=/bin/evil"}},
		{name: "rc.d with a dynamic user", render: RenderRCD, opts: RenderOptions{DynamicUser: true}},
		{name: "rc.d with a shell metacharacter", render: RenderRCD, opts: RenderOptions{StateDir: "/var/db/$(id)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.render(tt.opts); err == nil {
				t.Fatal("rendered, want an error")
			}
		})
	}
}
