// Package settings loads the daemon settings shared by routerd, routerd-eventd and
// routerctl: where state, plugins and resource documents live, where the control API and
// metrics listen, and how to log.
//
// Values come, highest precedence first, from command-line flags, ROUTERD_* environment
// variables (ROUTERD_STATE_DIR, ROUTERD_PLUGIN_DIR, ...), the settings file
// (routerd.yaml; --settings or ROUTERD_SETTINGS names it), and the defaults below.
// Resource documents (Kinds) are not settings: they are loaded by package schemas from
// ConfigDir.
package settings

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Defaults for a system install. Tests and the demo override them with flags.
const (
	DefaultSettingsFile   = "/etc/routerd/routerd.yaml"
	DefaultStateDir       = "/var/lib/routerd"
	DefaultPluginDir      = "/var/lib/routerd/plugins"
	DefaultConfigDir      = "/etc/routerd/conf.d"
	DefaultControlSocket  = "/run/routerd/routerd.sock"
	DefaultMetricsAddress = "127.0.0.1:9464"
	DefaultLogLevel       = "info"
	DefaultLogFormat      = "text"
)

// Settings are the daemon settings after defaults, file, environment and flags are merged.
type Settings struct {
	// SettingsFile is the file the settings were read from ("" when none existed).
	SettingsFile string `mapstructure:"-"`
	// StateDir holds the SQLite store (routerd.db), the plugin compilation cache and
	// rendered unit files.
	StateDir string `mapstructure:"stateDir"`
	// PluginDir is watched for *.wasm plugin modules.
	PluginDir string `mapstructure:"pluginDir"`
	// ConfigDir holds the resource documents (*.yaml, multi-document).
	ConfigDir string `mapstructure:"configDir"`
	// ControlSocket is the Unix socket of routerd's local control API.
	ControlSocket string `mapstructure:"controlSocket"`
	// MetricsAddress is the host:port of the Prometheus /metrics endpoint ("" disables it).
	MetricsAddress string `mapstructure:"metricsAddress"`
	// OTLPEndpoint is the OTLP/HTTP base URL spans are exported to (e.g.
	// http://127.0.0.1:4318; "" exports none and tracing costs nothing).
	OTLPEndpoint string `mapstructure:"otlpEndpoint"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `mapstructure:"logLevel"`
	// LogFormat is text or json.
	LogFormat string `mapstructure:"logFormat"`
}

// StorePath is the SQLite store file inside StateDir.
func (s Settings) StorePath() string { return filepath.Join(s.StateDir, "routerd.db") }

// CacheDir is the wazero compilation cache inside StateDir.
func (s Settings) CacheDir() string { return filepath.Join(s.StateDir, "cache", "wasm") }

// flagKeys maps flag names to setting keys; every key is also read from ROUTERD_<KEY>.
var flagKeys = []struct{ flag, key, def, usage string }{
	{"state-dir", "stateDir", DefaultStateDir, "directory for the SQLite store and caches (env ROUTERD_STATE_DIR)"},
	{"plugin-dir", "pluginDir", DefaultPluginDir, "directory watched for *.wasm plugins (env ROUTERD_PLUGIN_DIR)"},
	{"config-dir", "configDir", DefaultConfigDir, "directory of resource documents *.yaml (env ROUTERD_CONFIG_DIR)"},
	{"control-socket", "controlSocket", DefaultControlSocket, "Unix socket of the control API (env ROUTERD_CONTROL_SOCKET)"},
	{"metrics-address", "metricsAddress", DefaultMetricsAddress, "host:port for /metrics, empty to disable (env ROUTERD_METRICS_ADDRESS)"},
	{"otlp-endpoint", "otlpEndpoint", "", "OTLP/HTTP base URL to export traces to, e.g. http://127.0.0.1:4318; empty: no tracing (env ROUTERD_OTLP_ENDPOINT)"},
	{"log-level", "logLevel", DefaultLogLevel, "debug, info, warn or error (env ROUTERD_LOG_LEVEL)"},
	{"log-format", "logFormat", DefaultLogFormat, "text or json (env ROUTERD_LOG_FORMAT)"},
}

// envName returns the environment variable for a key: stateDir → ROUTERD_STATE_DIR.
func envName(key string) string {
	var b strings.Builder
	b.WriteString("ROUTERD_")
	for i, r := range key {
		if r >= 'A' && r <= 'Z' && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// AddFlags registers the settings flags (and --settings) on fs. Call Load with the same
// FlagSet after parsing.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("settings", "", "daemon settings file (default "+DefaultSettingsFile+" if it exists; env ROUTERD_SETTINGS)")
	for _, f := range flagKeys {
		fs.String(f.flag, f.def, f.usage)
	}
}

// Load merges defaults, the settings file, the environment and the flags in fs (which may
// be nil, or lack some of the flags). A settings file named explicitly must exist; the
// default one is optional.
func Load(fs *pflag.FlagSet) (Settings, error) {
	v := viper.New()
	for _, f := range flagKeys {
		v.SetDefault(f.key, f.def)
		if err := v.BindEnv(f.key, envName(f.key)); err != nil {
			return Settings{}, fmt.Errorf("settings: bind env %s: %w", f.key, err)
		}
		if fs != nil {
			if fl := fs.Lookup(f.flag); fl != nil {
				if err := v.BindPFlag(f.key, fl); err != nil {
					return Settings{}, fmt.Errorf("settings: bind flag --%s: %w", f.flag, err)
				}
			}
		}
	}

	file, explicit := os.Getenv("ROUTERD_SETTINGS"), true
	if fs != nil {
		if fl := fs.Lookup("settings"); fl != nil && fl.Changed {
			file = fl.Value.String()
		}
	}
	if file == "" {
		file, explicit = DefaultSettingsFile, false
	}
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	var s Settings
	if err := v.ReadInConfig(); err != nil {
		var pe *iofs.PathError
		if explicit || !errors.As(err, &pe) {
			return Settings{}, fmt.Errorf("settings: read %s: %w", file, err)
		}
	} else {
		s.SettingsFile = file
	}
	if err := v.UnmarshalExact(&s); err != nil {
		return Settings{}, fmt.Errorf("settings: %s: %w (known keys: stateDir, pluginDir, configDir, controlSocket, metricsAddress, logLevel, logFormat)", file, err)
	}
	return s, s.Validate()
}

// Validate checks the enumerated values.
func (s Settings) Validate() error {
	if _, err := ParseLevel(s.LogLevel); err != nil {
		return err
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("settings: logFormat %q: want text or json", s.LogFormat)
	}
	if s.StateDir == "" {
		return errors.New("settings: stateDir is empty: set --state-dir or ROUTERD_STATE_DIR")
	}
	return nil
}

// ParseLevel parses a log level name.
func ParseLevel(name string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(name)); err != nil {
		return 0, fmt.Errorf("settings: logLevel %q: want debug, info, warn or error", name)
	}
	return l, nil
}

// Logger builds the slog logger the settings describe, writing to stderr.
func (s Settings) Logger() *slog.Logger {
	level, _ := ParseLevel(s.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
