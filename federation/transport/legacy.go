package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"routerd.net/routerd/schemas"
)

// LegacyConfig is the JSON runtime config of routerd v1alpha1's routerd-eventd (its units
// start `routerd-eventd daemon --config-file eventd.json`). LoadLegacyConfig reads it and
// GroupConfig maps it onto an EventGroup and its EventPeers, so an existing unit keeps
// working when the binary is replaced. Durations are Go duration strings ("5m").
type LegacyConfig struct {
	NodeName      string          `json:"nodeName"`
	Group         string          `json:"group"`
	Listen        LegacyListen    `json:"listen"`
	SecretFile    string          `json:"secretFile"`
	ReplayWindow  string          `json:"replayWindow,omitempty"`
	Peers         []LegacyPeer    `json:"peers,omitempty"`
	Retention     LegacyRetention `json:"retention,omitzero"`
	PushRetry     LegacyPushRetry `json:"pushRetry,omitzero"`
	PruneInterval string          `json:"pruneInterval,omitempty"`
	PushInterval  string          `json:"pushInterval,omitempty"`
	StatePath     string          `json:"statePath"`

	// Unknown lists the top-level keys this routerd does not know (ignored, as the
	// original did); the caller warns about them.
	Unknown []string `json:"-"`
	// dir is the directory relative paths were resolved against.
	dir string
}

// LegacyListen is the receiver bind of the JSON config: an empty address binds every
// address, port 0 receives nothing (push only), as in the original.
type LegacyListen struct {
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
}

// LegacyPeer is one push target of the JSON config.
type LegacyPeer struct {
	NodeName        string   `json:"nodeName"`
	Endpoint        string   `json:"endpoint"`
	Types           []string `json:"types,omitempty"`
	SubjectPrefixes []string `json:"subjectPrefixes,omitempty"`
}

// LegacyRetention bounds the stored events of the group.
type LegacyRetention struct {
	MaxEvents int    `json:"maxEvents,omitempty"`
	MaxAge    string `json:"maxAge,omitempty"`
}

// LegacyPushRetry is the original sender's retry schedule. baseBackoff and maxBackoff
// become delivery.retryBase and retryMax; maxAttempts has no equivalent (our sender keeps
// a failing delivery until delivery.failAfter) and is ignored.
type LegacyPushRetry struct {
	MaxAttempts int    `json:"maxAttempts,omitempty"`
	BaseBackoff string `json:"baseBackoff,omitempty"`
	MaxBackoff  string `json:"maxBackoff,omitempty"`
}

var legacyKeys = []string{"nodeName", "group", "listen", "secretFile", "replayWindow", "peers",
	"retention", "pushRetry", "pruneInterval", "pushInterval", "statePath"}

// LoadLegacyConfig reads and checks the JSON config at path. Relative secretFile and
// statePath are resolved against the current directory, as the original did.
//
// # Errors
//
// An unreadable file, malformed JSON, a missing nodeName or group, an unparsable
// duration, or a peer without nodeName or endpoint; each names path and field.
func LoadLegacyConfig(path string) (LegacyConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return LegacyConfig{}, fmt.Errorf("eventd config: %w", err)
	}
	var c LegacyConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return LegacyConfig{}, fmt.Errorf("eventd config %s: %w (want the JSON object of routerd v1alpha1's routerd-eventd: nodeName, group, listen, secretFile, peers, statePath…)", path, err)
	}
	var keys map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&keys); err == nil {
		for k := range keys {
			if !slices.Contains(legacyKeys, k) {
				c.Unknown = append(c.Unknown, k)
			}
		}
		slices.Sort(c.Unknown)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return LegacyConfig{}, fmt.Errorf("eventd config %s: %w", path, err)
	}
	c.dir = cwd
	var problems []string
	if strings.TrimSpace(c.NodeName) == "" {
		problems = append(problems, "nodeName is required")
	}
	if strings.TrimSpace(c.Group) == "" {
		problems = append(problems, "group is required")
	}
	for i, p := range c.Peers {
		if strings.TrimSpace(p.NodeName) == "" {
			problems = append(problems, fmt.Sprintf("peers[%d].nodeName is required", i))
		}
		if strings.TrimSpace(p.Endpoint) == "" {
			problems = append(problems, fmt.Sprintf("peers[%d].endpoint is required", i))
		}
	}
	for field, v := range map[string]string{"replayWindow": c.ReplayWindow, "retention.maxAge": c.Retention.MaxAge,
		"pushRetry.baseBackoff": c.PushRetry.BaseBackoff, "pushRetry.maxBackoff": c.PushRetry.MaxBackoff,
		"pruneInterval": c.PruneInterval, "pushInterval": c.PushInterval} {
		if _, err := legacyDuration(v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", field, err))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return LegacyConfig{}, fmt.Errorf("eventd config %s: %s", path, strings.Join(problems, "; "))
	}
	return c, nil
}

func legacyDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 5m or 200ms", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

func (c LegacyConfig) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Resources returns the EventGroup and EventPeers the JSON config stands for (what
// docs/transport.md shows as its YAML equivalent). Each peer is named after its nodeName.
func (c LegacyConfig) Resources() []schemas.Object {
	d := func(v string) schemas.Duration {
		x, _ := legacyDuration(v)
		return schemas.Dur(x)
	}
	g := &schemas.EventGroup{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.FederationAPIVersion, Kind: "EventGroup"},
		Metadata: schemas.ObjectMeta{Name: c.Group},
		Spec: schemas.EventGroupSpec{
			NodeName:     c.NodeName,
			Auth:         schemas.EventGroupAuth{SecretFile: c.abs(c.SecretFile)},
			Listen:       schemas.ListenConfig{Address: c.Listen.Address, Port: c.Listen.Port},
			ReplayWindow: d(c.ReplayWindow),
			Retention:    schemas.EventRetention{MaxEvents: c.Retention.MaxEvents, MaxAge: d(c.Retention.MaxAge)},
			Delivery:     schemas.EventDelivery{RetryBase: d(c.PushRetry.BaseBackoff), RetryMax: d(c.PushRetry.MaxBackoff)},
		},
	}
	objs := []schemas.Object{g}
	for _, p := range c.Peers {
		objs = append(objs, &schemas.EventPeer{
			TypeMeta: schemas.TypeMeta{APIVersion: schemas.FederationAPIVersion, Kind: "EventPeer"},
			Metadata: schemas.ObjectMeta{Name: p.NodeName},
			Spec: schemas.EventPeerSpec{
				GroupRef: c.Group, NodeName: p.NodeName, Endpoint: p.Endpoint,
				Types: p.Types, SubjectPrefixes: p.SubjectPrefixes,
			},
		})
	}
	return objs
}

// GroupConfig builds the runtime configuration through the same path as a config dir
// (schemas.NewConfig, then FromSchemas). The receiver binds listen.address:listen.port
// verbatim (an empty address: every address); port 0 disables receiving.
func (c LegacyConfig) GroupConfig() (GroupConfig, error) {
	if strings.TrimSpace(c.SecretFile) == "" {
		return GroupConfig{}, &NoAuthError{Group: c.Group}
	}
	cfg, err := schemas.NewConfig(c.Resources()...)
	if err != nil {
		return GroupConfig{}, fmt.Errorf("eventd config: %w", err)
	}
	gc, err := FromSchemas(cfg, c.Group, c.dir)
	if err != nil {
		return GroupConfig{}, err
	}
	gc.ListenAddress = ""
	if c.Listen.Port > 0 {
		gc.ListenAddress = net.JoinHostPort(c.Listen.Address, strconv.Itoa(c.Listen.Port))
	}
	return gc, nil
}

// StateFile is the store path of the config (statePath, absolute).
func (c LegacyConfig) StateFile() string { return c.abs(c.StatePath) }

// PruneEvery is pruneInterval (0: the default).
func (c LegacyConfig) PruneEvery() time.Duration {
	d, _ := legacyDuration(c.PruneInterval)
	return d
}

// Ignored names the settings of the config that have no effect here, for a warning.
func (c LegacyConfig) Ignored() []string {
	var out []string
	if c.PushRetry.MaxAttempts != 0 {
		out = append(out, "pushRetry.maxAttempts (deliveries are retried until delivery.failAfter, default 24h)")
	}
	if c.PushInterval != "" {
		out = append(out, "pushInterval (new events are pushed as they are stored)")
	}
	for _, k := range c.Unknown {
		out = append(out, k+" (unknown)")
	}
	return out
}
