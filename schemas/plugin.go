package schemas

// Plugin binds a WebAssembly module in the plugin directory to the hooks it may serve, the
// capabilities and host-function grants it holds (everything not granted is denied) and
// the limits of each call.
type Plugin struct {
	TypeMeta `json:",inline"`
	// Metadata names the plugin; subscriptions refer to it by this name.
	Metadata ObjectMeta `json:"metadata" jsonschema:"required"`
	// Spec is the plugin's configuration.
	Spec PluginSpec `json:"spec" jsonschema:"required"`
}

// PluginSpec configures one plugin.
type PluginSpec struct {
	// Module is the file name of the .wasm module in the plugin directory, for example
	// event-to-remote-claim.wasm.
	Module string `json:"module" jsonschema:"required"`
	// SHA256 pins the module's content: 64 lowercase hex digits of its SHA-256.
	SHA256 string `json:"sha256,omitempty"`
	// Hooks are the hooks the plugin may serve: on_events, plan, execute.
	Hooks []string `json:"hooks,omitempty" jsonschema:"enum=on_events,enum=plan,enum=execute"`
	// Capabilities are the routerd capabilities of the plugin: observe.cloud,
	// observe.providerPrivateIPs, propose.dynamicConfig, propose.providerAction,
	// execute.providerAction.
	Capabilities []string `json:"capabilities,omitempty" jsonschema:"enum=observe.cloud,enum=observe.providerPrivateIPs,enum=propose.dynamicConfig,enum=propose.providerAction,enum=execute.providerAction"`
	// Grants are the host functions and WASI resources the plugin may use; everything not
	// granted is denied.
	Grants PluginGrants `json:"grants,omitzero"`
	// Limits bound each call of the plugin.
	Limits PluginLimits `json:"limits,omitzero"`
	// Timeout is the original per-call timeout; when set it is the default of
	// limits.timeout.
	Timeout Duration `json:"timeout,omitzero"`
	// Env are environment variables given to the module when grants.wasi.env is true.
	Env map[string]string `json:"env,omitempty"`
	// Context lists the resources included in the plugin's requests (allowlist; secrets
	// are stripped).
	Context PluginContext `json:"context,omitzero"`
}

// unknownFieldHint explains spec.executable, the subprocess plugin of routerd v1alpha1.
func (*PluginSpec) unknownFieldHint(name string) (msg, replaces string) {
	if name != "executable" {
		return "", ""
	}
	return "routerd v1alpha1 ran a plugin as a subprocess (spec.executable); this routerd runs WebAssembly " +
		"modules: build the plugin with GOOS=wasip1 GOARCH=wasm, put the .wasm file in the plugin directory " +
		"and set spec.module to its file name instead (see docs/plugin-abi.md, \"Porting a routerd v1alpha1 " +
		"subprocess plugin\")", "module"
}

// PluginGrants are the host functions and WASI resources a plugin may use.
type PluginGrants struct {
	// Log allows the log host function.
	Log bool `json:"log,omitempty"`
	// Now allows the now host function (wall-clock time).
	Now bool `json:"now,omitempty"`
	// KV allows kv_get and kv_set on the plugin's private key/value store.
	KV bool `json:"kv,omitempty"`
	// ConfigGet allows config_get for resources of the listed Kinds.
	ConfigGet *ConfigGetGrant `json:"configGet,omitempty"`
	// EventEmit allows event_emit for the listed event types.
	EventEmit *EventEmitGrant `json:"eventEmit,omitempty"`
	// ProviderRequest allows provider_request to the listed hosts through the listed
	// CloudProviderProfiles; the host adds credentials.
	ProviderRequest *ProviderRequestGrant `json:"providerRequest,omitempty"`
	// WASI grants environment variables and files through WASI (default: none).
	WASI *WASIGrant `json:"wasi,omitempty"`
}

// ConfigGetGrant allows reading config resources of some Kinds.
type ConfigGetGrant struct {
	// Kinds are the Kinds the plugin may read.
	Kinds []string `json:"kinds" jsonschema:"required,minItems=1"`
}

// EventEmitGrant allows emitting events of some types.
type EventEmitGrant struct {
	// Types are the event types the plugin may emit.
	Types []string `json:"types" jsonschema:"required,minItems=1"`
}

// ProviderRequestGrant allows provider API requests. A request must match every list:
// its profile, the API host the profile resolves to, its method and its path.
type ProviderRequestGrant struct {
	// Hosts are the API hosts (host or host:port) requests may go to, for example
	// ec2.eu-central-1.amazonaws.com.
	Hosts []string `json:"hosts" jsonschema:"required,minItems=1"`
	// ProfileRefs name the CloudProviderProfiles whose credentials the host may use.
	ProfileRefs []string `json:"profileRefs,omitempty"`
	// Methods are the HTTP methods allowed (default GET, POST, PUT, DELETE).
	Methods []string `json:"methods,omitempty" jsonschema:"enum=GET,enum=POST,enum=PUT,enum=DELETE"`
	// PathPrefixes are the URL paths allowed, matched by whole segments (default "/":
	// any path on the granted hosts).
	PathPrefixes []string `json:"pathPrefixes,omitempty"`
}

// WASIGrant grants WASI resources.
type WASIGrant struct {
	// Env passes spec.env to the module as environment variables.
	Env bool `json:"env,omitempty"`
	// Files are host files or directories mounted into the module.
	Files []WASIFile `json:"files,omitempty"`
}

// WASIFile mounts one host path into a plugin.
type WASIFile struct {
	// HostPath is the absolute path on the host.
	HostPath string `json:"hostPath" jsonschema:"required"`
	// GuestPath is the absolute path the module sees.
	GuestPath string `json:"guestPath" jsonschema:"required"`
	// ReadOnly mounts the path read-only (default true).
	ReadOnly *bool `json:"readOnly,omitempty"`
}

// PluginLimits bound each call of a plugin.
type PluginLimits struct {
	// MemoryMiB is the most linear memory an instance may use, in MiB (default 64).
	MemoryMiB int `json:"memoryMiB,omitempty" jsonschema:"minimum=0,maximum=4096"`
	// Timeout is the wall-clock limit of one call (default spec.timeout, else 2s).
	Timeout Duration `json:"timeout,omitzero"`
	// MaxOutputBytes is the largest output accepted from one call (default 1048576).
	MaxOutputBytes int `json:"maxOutputBytes,omitempty" jsonschema:"minimum=0"`
	// MaxConcurrency is the most calls running at once (default 4).
	MaxConcurrency int `json:"maxConcurrency,omitempty" jsonschema:"minimum=0"`
	// WarmInstances is how many instances are kept ready (default 2).
	WarmInstances int `json:"warmInstances,omitempty" jsonschema:"minimum=0"`
}

// PluginContext lists the resources included in a plugin's requests.
type PluginContext struct {
	// Resources are the allowlisted resources; an empty name means every resource of the
	// Kind.
	Resources []ResourceRef `json:"resources,omitempty"`
}
