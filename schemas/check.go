package schemas

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checker collects the semantic problems of one resource as (field path, message).
type checker struct {
	prefix   string
	problems *[]fieldProblem
}

// fieldProblem is a semantic problem at a field path of a resource: an error, or a
// warning when code is set.
type fieldProblem struct {
	path string
	msg  string
	code string // warning code (Warn*); "" for an error
}

func newChecker() *checker { return &checker{problems: new([]fieldProblem)} }

// at returns a checker whose paths are relative to prefix.
func (c *checker) at(prefix string) *checker {
	return &checker{prefix: joinPath(c.prefix, prefix), problems: c.problems}
}

func (c *checker) errorf(path, format string, args ...any) {
	*c.problems = append(*c.problems, fieldProblem{path: joinPath(c.prefix, path), msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning with code: the resource is accepted, but the warning is
// reported (config validate, doctor).
func (c *checker) warnf(path, code, format string, args ...any) {
	*c.problems = append(*c.problems, fieldProblem{path: joinPath(c.prefix, path), msg: fmt.Sprintf(format, args...), code: code})
}

// report records the checker's problems in d, at the lines of their paths.
func (d *docContext) report(c *checker) {
	for _, p := range *c.problems {
		if p.code != "" {
			d.warnf(d.lineOf(p.path), p.path, p.code, "%s", p.msg)
		} else {
			d.errorf(d.lineOf(p.path), p.path, "%s", p.msg)
		}
	}
}

var (
	dnsNameRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	eventTypeRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*(\.\*)?$`)
	keyIDRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	identRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	sha256RE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	moduleRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\.wasm$`)
	hostRE      = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$`)
	clockRE     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	fieldPathRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*(\.\*)?$`)
	kindRE      = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	ifNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$`)
)

// name checks a DNS-style resource or node name (required).
func (c *checker) name(path, v string) {
	switch {
	case v == "":
		c.errorf(path, "must not be empty; want a name like router-a")
	case len(v) > 253 || !dnsNameRE.MatchString(v):
		c.errorf(path, "%q is not a valid name: want lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters", v)
	}
}

// optName checks a name when it is set.
func (c *checker) optName(path, v string) {
	if v != "" {
		c.name(path, v)
	}
}

// names checks a list of names, rejecting duplicates.
func (c *checker) names(path string, vs []string) {
	for i, v := range vs {
		c.name(indexPath(path, i), v)
	}
	c.unique(path, vs)
}

// unique reports repeated list entries.
func (c *checker) unique(path string, vs []string) {
	seen := map[string]bool{}
	for i, v := range vs {
		if seen[v] {
			c.errorf(indexPath(path, i), "%q is listed twice", v)
		}
		seen[v] = true
	}
}

// match checks v against re; what describes the expected form.
func (c *checker) match(path, v string, re *regexp.Regexp, what string) {
	if v == "" {
		c.errorf(path, "must not be empty; want %s", what)
	} else if !re.MatchString(v) {
		c.errorf(path, "%q is not valid: want %s", v, what)
	}
}

func (c *checker) eventTypes(path string, vs []string) {
	for i, v := range vs {
		c.match(indexPath(path, i), v, eventTypeRE, "an event type like routerd.client.ipv4.observed (a trailing .* matches a prefix)")
	}
	c.unique(path, vs)
}

// cidr checks a canonical IPv4 or IPv6 prefix.
func (c *checker) cidr(path, v string) {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		c.errorf(path, "%q is not a CIDR: want a prefix like 10.88.0.0/16 or 2001:db8::/48", v)
		return
	}
	if p.Masked() != p {
		c.errorf(path, "%q has host bits set: want %s", v, p.Masked())
	}
}

// ip checks an IPv4 or IPv6 address.
func (c *checker) ip(path, v string) {
	if _, err := netip.ParseAddr(v); err != nil {
		c.errorf(path, "%q is not an IP address: want an address like 10.88.60.9 or 2001:db8::9", v)
	}
}

// ipOrPrefix checks an address with an optional prefix length.
func (c *checker) ipOrPrefix(path, v string) {
	if strings.Contains(v, "/") {
		if _, err := netip.ParsePrefix(v); err != nil {
			c.errorf(path, "%q is not an address with prefix length: want an address like 10.88.60.9 or 10.88.60.9/32", v)
		}
		return
	}
	c.ip(path, v)
}

// url checks an absolute http or https URL without query or fragment.
func (c *checker) url(path, v string) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		c.errorf(path, "%q is not a valid endpoint: want an http or https URL like http://127.0.0.1:9471", v)
		return
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			c.errorf(path, "%q has an invalid port: want 1-65535", v)
		}
	}
}

// port checks a TCP/UDP port number.
func (c *checker) port(path string, v int) {
	if v < 1 || v > 65535 {
		c.errorf(path, "port %d out of range: want 1-65535", v)
	}
}

// between checks lo <= v <= hi.
func (c *checker) between(path string, v, lo, hi int) {
	if v < lo || v > hi {
		c.errorf(path, "%d out of range: want %d-%d", v, lo, hi)
	}
}

// durationBetween checks lo <= d <= hi.
func (c *checker) durationBetween(path string, d Duration, lo, hi time.Duration) {
	if d.Duration < lo || d.Duration > hi {
		c.errorf(path, "%s out of range: want %s to %s", formatDuration(d.Duration), formatDuration(lo), formatDuration(hi))
	}
}

// file checks a file path reference.
func (c *checker) file(path, v string) {
	if v == "" {
		c.errorf(path, "must not be empty; want a file path")
	} else if strings.ContainsRune(v, 0) || strings.TrimSpace(v) != v {
		c.errorf(path, "%q is not a valid file path", v)
	}
}

// kindName checks the name of a registered Kind.
func (c *checker) kindName(path, v string) {
	if _, ok := LookupKind(v); !ok {
		c.errorf(path, "unknown kind %q; want one of: %s", v, kindNames())
	}
}

// source checks an owner reference of the form Kind/name.
func (c *checker) source(path, v string) {
	kind, name, ok := strings.Cut(v, "/")
	if !ok || kind == "" || name == "" {
		c.errorf(path, "%q is not a source: want Kind/name, for example EventSubscription/claims", v)
		return
	}
	if !kindRE.MatchString(kind) {
		c.errorf(path, "%q: source kind %q must be a Kind name like EventSubscription", v, kind)
	}
	if len(name) > 253 || !dnsNameRE.MatchString(name) {
		c.errorf(path, "%q: source name %q is not a valid name", v, name)
	}
}

// sourcePattern checks the source of an override rule: Kind/name, where the Kind and the
// name may each be a pattern MatchName can use (EventSubscription/*,
// EventSubscription/claims-*), or "*" for every source.
func (c *checker) sourcePattern(path, v string) {
	if v == "*" {
		return
	}
	kind, name, ok := strings.Cut(v, "/")
	if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
		c.errorf(path, "%q is not a source: want Kind/name, for example EventSubscription/claims; the name (and the Kind) may be a pattern such as EventSubscription/*", v)
		return
	}
	if IsNamePattern(kind) {
		c.pattern(path, kind)
	} else if !kindRE.MatchString(kind) {
		c.errorf(path, "%q: source kind %q must be a Kind name like EventSubscription, or a pattern", v, kind)
	}
	if IsNamePattern(name) {
		c.pattern(path, name)
	} else if len(name) > 253 || !dnsNameRE.MatchString(name) {
		c.errorf(path, "%q: source name %q is not a valid name or pattern", v, name)
	}
}

// targetPattern checks a target of an override rule: apiVersion, kind and name are each
// a literal or a pattern MatchName can use; a kind pattern must match a registered Kind
// and an apiVersion pattern a registered apiVersion, or the rule could never apply.
func (c *checker) targetPattern(path string, r ResourceRef) {
	if !IsNamePattern(r.Kind) && !IsNamePattern(r.APIVersion) {
		if r.Name != "" && IsNamePattern(r.Name) {
			c.pattern(joinPath(path, "name"), r.Name)
			r.Name = ""
		}
		c.resourceRef(path, r)
		return
	}
	matched := false
	for _, k := range Kinds() {
		matched = matched || (MatchName(r.Kind, k.Kind) && (r.APIVersion == "" || MatchName(r.APIVersion, k.APIVersion)))
	}
	if IsNamePattern(r.Kind) {
		c.pattern(joinPath(path, "kind"), r.Kind)
	}
	if IsNamePattern(r.APIVersion) {
		c.pattern(joinPath(path, "apiVersion"), r.APIVersion)
	}
	if !matched {
		c.errorf(path, "kind %q (apiVersion %q) matches no Kind routerd provides; want one of: %s", r.Kind, r.APIVersion, kindNames())
	}
	if r.Name != "" {
		if IsNamePattern(r.Name) {
			c.pattern(joinPath(path, "name"), r.Name)
		} else {
			c.name(joinPath(path, "name"), r.Name)
		}
	}
}

// pattern checks a name pattern with CheckNamePattern.
func (c *checker) pattern(path, v string) {
	if err := CheckNamePattern(v); err != nil {
		c.errorf(path, "%v", err)
	}
}

// ifName checks a Linux interface name.
func (c *checker) ifName(path, v string) {
	if !ifNameRE.MatchString(v) {
		c.errorf(path, "%q is not an interface name: want at most 15 letters, digits, '-', '_', '.' or '@'", v)
	}
}

// keys checks rotation keys: ids valid and unique, secret files set.
func (c *checker) keys(path string, keys []AuthKey) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		p := indexPath(path, i)
		c.match(joinPath(p, "id"), k.ID, keyIDRE, "a key id of letters, digits, '.', '_' and '-' (at most 64)")
		c.file(joinPath(p, "secretFile"), k.SecretFile)
		ids[i] = k.ID
	}
	c.unique(path, ids)
}

// meta checks metadata.
func (c *checker) meta(m *ObjectMeta) {
	c.name("metadata.name", m.Name)
	for k := range m.Labels {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			c.errorf("metadata.labels", "label key %q is not valid: want a key without spaces", k)
		}
	}
}

// validateObject checks one object's metadata and spec.
func validateObject(o Object, c *checker) {
	c.meta(o.GetMeta())
	o.validate(c)
}

// Validate checks the object alone (metadata, spec, enums and ranges; no references to
// other resources). It returns an *ErrorList naming each bad field (nil when there are
// only warnings).
func Validate(o Object) error {
	c := newChecker()
	validateObject(o, c)
	d := newDocContext("", 0, LoadOptions{})
	d.kind, d.name = o.GetKind(), o.GetName()
	d.report(c)
	if len(d.problems) == 0 {
		return nil
	}
	return &ErrorList{Problems: d.problems, Warnings: d.warnings}
}

func (o *EventGroup) validate(c *checker) {
	s := &o.Spec
	c.name("spec.nodeName", s.NodeName)
	for i, p := range s.PeersFrom {
		c.source(joinPath(indexPath("spec.peersFrom", i), "resource"), p.Resource)
	}
	a := &s.Auth
	if a.SecretFile == "" && a.SecretRef == "" && len(a.Keys) == 0 {
		// routerd v1alpha1 accepts such a group; routerd-eventd refuses to start its
		// transport and doctor fails.
		c.warnf("spec.auth", WarnGroupWithoutAuth, "group %s has no auth: add spec.auth.secretFile (or secretRef or keys); routerd-eventd does not start transport for this group until then", o.Metadata.Name)
	}
	if a.SecretFile != "" {
		c.file("spec.auth.secretFile", a.SecretFile)
	}
	if a.SecretRef != "" {
		scheme, rest, _ := strings.Cut(a.SecretRef, ":")
		switch {
		case scheme == "env" && envNameRE.MatchString(rest):
		case scheme == "file" && rest != "":
		default:
			c.errorf("spec.auth.secretRef", "%q is not a secret reference: want env:NAME or file:PATH", a.SecretRef)
		}
	}
	c.keys("spec.auth.keys", a.Keys)
	if t := s.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			c.errorf("spec.tls", "certFile and keyFile go together: set both or neither")
		}
		if t.CertFile == "" && t.CAFile == "" {
			c.errorf("spec.tls", "empty: want certFile and keyFile, caFile, or both")
		}
	}
	c.ip("spec.listen.address", s.Listen.Address)
	c.port("spec.listen.port", s.Listen.Port)
	c.durationBetween("spec.replayWindow", s.ReplayWindow, time.Second, 24*time.Hour)
	c.between("spec.retention.maxEvents", s.Retention.MaxEvents, 1, 1<<30)
	c.durationBetween("spec.retention.maxAge", s.Retention.MaxAge, time.Minute, 10*365*24*time.Hour)
	d := &s.Delivery
	c.between("spec.delivery.batchSize", d.BatchSize, 1, 10000)
	if d.RetryBase.Duration > d.RetryMax.Duration {
		c.errorf("spec.delivery.retryBase", "%s is longer than retryMax %s", d.RetryBase, d.RetryMax)
	}
	c.durationBetween("spec.delivery.retryMax", d.RetryMax, time.Millisecond, time.Hour)
	if d.TTLRefreshBefore.Duration >= d.DefaultTTL.Duration {
		c.errorf("spec.delivery.ttlRefreshBefore", "%s is not shorter than defaultTTL %s", d.TTLRefreshBefore, d.DefaultTTL)
	}
	s.Transport.validate(c.at("spec.transport"))
	if d.FailAfter.Duration < d.RetryMax.Duration {
		c.errorf("spec.delivery.failAfter", "%s is shorter than retryMax %s", d.FailAfter, d.RetryMax)
	}
}

func (o *EventPeer) validate(c *checker) {
	s := &o.Spec
	c.name("spec.groupRef", s.GroupRef)
	c.name("spec.nodeName", s.NodeName)
	if s.Endpoint != "" {
		c.url("spec.endpoint", s.Endpoint)
	}
	c.eventTypes("spec.types", s.Types)
	c.unique("spec.subjectPrefixes", s.SubjectPrefixes)
	if a := s.Auth; a != nil {
		if a.SecretFile == "" && len(a.Keys) == 0 {
			c.errorf("spec.auth", "no secret: want secretFile or keys (or leave auth out to use the group's)")
		}
		if a.SecretFile != "" {
			c.file("spec.auth.secretFile", a.SecretFile)
		}
		c.keys("spec.auth.keys", a.Keys)
	}
}

func (o *EventSubscription) validate(c *checker) {
	s := &o.Spec
	c.name("spec.groupRef", s.GroupRef)
	c.eventTypes("spec.match.types", s.Match.Types)
	c.unique("spec.match.subjectPrefixes", s.Match.SubjectPrefixes)
	c.names("spec.match.sourceNodes", s.Match.SourceNodes)
	c.names("spec.match.excludeSourceNodes", s.Match.ExcludeSourceNodes)
	for _, n := range s.Match.SourceNodes {
		if slices.Contains(s.Match.ExcludeSourceNodes, n) {
			c.errorf("spec.match.excludeSourceNodes", "node %q is both matched and excluded", n)
		}
	}
	for k := range s.Match.Payload {
		if k == "" {
			c.errorf("spec.match.payload", "empty payload key")
		}
	}
	c.name("spec.trigger.pluginRef", s.Trigger.PluginRef)
	c.durationBetween("spec.trigger.batchWindow", s.Trigger.BatchWindow, 0, time.Hour)
	c.durationBetween("spec.trigger.debounce", s.Trigger.Debounce, 0, time.Hour)
	for i, k := range s.Output.AllowedKinds {
		c.kindName(indexPath("spec.output.allowedKinds", i), k)
	}
	c.unique("spec.output.allowedKinds", s.Output.AllowedKinds)
}

func (o *FederationSLO) validate(c *checker) {
	s := &o.Spec
	c.name("spec.groupRef", s.GroupRef)
	if s.Delivery.LagWarnSeconds > s.Delivery.LagFailSeconds {
		c.errorf("spec.delivery.lagWarnSeconds", "%d is above lagFailSeconds %d", s.Delivery.LagWarnSeconds, s.Delivery.LagFailSeconds)
	}
}

func (o *Plugin) validate(c *checker) {
	s := &o.Spec
	c.match("spec.module", s.Module, moduleRE, "a .wasm file name in the plugin directory, like echo.wasm (no directories)")
	if s.SHA256 != "" && !sha256RE.MatchString(s.SHA256) {
		c.errorf("spec.sha256", "%q is not a SHA-256: want 64 lowercase hex digits", s.SHA256)
	}
	c.unique("spec.hooks", s.Hooks)
	c.unique("spec.capabilities", s.Capabilities)
	g := &s.Grants
	if g.ConfigGet != nil {
		for i, k := range g.ConfigGet.Kinds {
			c.kindName(indexPath("spec.grants.configGet.kinds", i), k)
		}
		c.unique("spec.grants.configGet.kinds", g.ConfigGet.Kinds)
	}
	if g.EventEmit != nil {
		c.eventTypes("spec.grants.eventEmit.types", g.EventEmit.Types)
	}
	if g.ProviderRequest != nil {
		for i, h := range g.ProviderRequest.Hosts {
			c.match(indexPath("spec.grants.providerRequest.hosts", i), h, hostRE, "a host name like ec2.eu-central-1.amazonaws.com, optionally *. and :port")
		}
		c.unique("spec.grants.providerRequest.hosts", g.ProviderRequest.Hosts)
		c.names("spec.grants.providerRequest.profileRefs", g.ProviderRequest.ProfileRefs)
	}
	if g.WASI != nil {
		guests := make([]string, len(g.WASI.Files))
		for i, f := range g.WASI.Files {
			p := indexPath("spec.grants.wasi.files", i)
			if !strings.HasPrefix(f.HostPath, "/") {
				c.errorf(joinPath(p, "hostPath"), "%q is not absolute: want a path starting with /", f.HostPath)
			}
			if !strings.HasPrefix(f.GuestPath, "/") {
				c.errorf(joinPath(p, "guestPath"), "%q is not absolute: want a path starting with /", f.GuestPath)
			}
			guests[i] = f.GuestPath
		}
		c.unique("spec.grants.wasi.files", guests)
		if len(s.Env) > 0 && !g.WASI.Env {
			c.errorf("spec.env", "set but grants.wasi.env is false: the module would not see it")
		}
	} else if len(s.Env) > 0 {
		c.errorf("spec.env", "set but grants.wasi.env is not granted: the module would not see it")
	}
	for k := range s.Env {
		if !envNameRE.MatchString(k) {
			c.errorf("spec.env", "%q is not an environment variable name", k)
		}
	}
	l := &s.Limits
	c.between("spec.limits.memoryMiB", l.MemoryMiB, 1, 4096)
	c.durationBetween("spec.limits.timeout", l.Timeout, time.Millisecond, 5*time.Minute)
	c.between("spec.limits.maxOutputBytes", l.MaxOutputBytes, 1, 64<<20)
	c.between("spec.limits.maxConcurrency", l.MaxConcurrency, 1, 1024)
	c.between("spec.limits.warmInstances", l.WarmInstances, 0, l.MaxConcurrency)
	for i, r := range s.Context.Resources {
		p := indexPath("spec.context.resources", i)
		c.resourceRef(p, r)
	}
}

// resourceRef checks a reference to resources of a registered Kind.
func (c *checker) resourceRef(path string, r ResourceRef) {
	info, ok := LookupKind(r.Kind)
	if !ok {
		c.kindName(joinPath(path, "kind"), r.Kind)
		return
	}
	if r.APIVersion != "" && r.APIVersion != info.APIVersion {
		c.errorf(joinPath(path, "apiVersion"), "kind %s belongs to apiVersion %s, got %q", r.Kind, info.APIVersion, r.APIVersion)
	}
	if r.Name != "" && r.Name != "*" {
		c.name(joinPath(path, "name"), r.Name)
	}
}

func (o *OverlayPeer) validate(c *checker) {
	s := &o.Spec
	if s.NodeID != "" {
		c.match("spec.nodeID", s.NodeID, identRE, "a node id of letters, digits and . _ : / -")
	}
	if s.Underlay.Interface != "" {
		c.ifName("spec.underlay.interface", s.Underlay.Interface)
	}
	if s.Underlay.Address != "" {
		c.ipOrPrefix("spec.underlay.address", s.Underlay.Address)
	}
	if s.Remote.NodeID != "" {
		c.match("spec.remote.nodeID", s.Remote.NodeID, identRE, "a node id of letters, digits and . _ : / -")
	}
	c.ip("spec.remote.address", s.Remote.Address)
	c.between("spec.pathMTU.mtu", s.PathMTU.MTU, 576, 9216)
}

func (o *HybridRoute) validate(c *checker) {
	s := &o.Spec
	for i, d := range s.DestinationCIDRs {
		c.cidr(indexPath("spec.destinationCIDRs", i), d)
	}
	c.unique("spec.destinationCIDRs", s.DestinationCIDRs)
	c.name("spec.peerRef", s.PeerRef)
	c.optName("spec.healthCheckRef", s.HealthCheckRef)
	if s.Install.Table == 255 {
		c.errorf("spec.install.table", "255 is the kernel's local table: want another table")
	}
}

func (o *AddressMobilityDomain) validate(c *checker) {
	c.cidr("spec.prefix", o.Spec.Prefix)
	c.optName("spec.peerRef", o.Spec.PeerRef)
}

func (o *RemoteAddressClaim) validate(c *checker) {
	s := &o.Spec
	c.name("spec.domainRef", s.DomainRef)
	c.ipOrPrefix("spec.address", s.Address)
	if cp := s.Capture; cp != nil {
		switch cp.Type {
		case "provider-secondary-ip":
			c.name("spec.capture.providerRef", cp.ProviderRef)
		case "proxy-arp":
			if cp.Interface == "" {
				c.errorf("spec.capture.interface", "missing: proxy-arp needs the interface to answer on")
			}
		}
		if cp.Interface != "" {
			c.ifName("spec.capture.interface", cp.Interface)
		}
		for i, a := range cp.ExcludeAddresses {
			c.ipOrPrefix(indexPath("spec.capture.excludeAddresses", i), a)
		}
	}
	if d := s.Delivery; d != nil {
		c.name("spec.delivery.peerRef", d.PeerRef)
		if d.TunnelInterface != "" {
			c.ifName("spec.delivery.tunnelInterface", d.TunnelInterface)
		}
	}
}

func (o *CloudProviderProfile) validate(c *checker) {
	s := &o.Spec
	if s.Endpoint != "" {
		c.url("spec.endpoint", s.Endpoint)
	}
	if s.Provider == "azure" {
		if s.SubscriptionID == "" {
			c.errorf("spec.subscriptionID", "missing: provider azure needs subscriptionID")
		}
		if s.ResourceGroup == "" {
			c.errorf("spec.resourceGroup", "missing: provider azure needs resourceGroup")
		}
	}
	c.unique("spec.capabilities", s.Capabilities)
	c.at("spec.auth").providerAuth(&s.Auth)
}

// providerAuth checks a provider credentials reference: the field of its mode is set,
// the fields of the other modes are not.
func (c *checker) providerAuth(a *ProviderAuth) {
	set := map[string]bool{"command": a.Command != nil, "file": a.File != "", "env": a.Env != ""}
	want := map[string]string{"external-command": "command", "file": "file", "env": "env"}[a.Mode]
	for _, f := range []string{"command", "file", "env"} {
		if set[f] && f != want {
			c.errorf(f, "not used by mode %s: remove it, or set mode to the one that uses it (command: external-command, file: file, env: env)", a.Mode)
		}
	}
	switch a.Mode {
	case "external-command":
		c.command("command", a.Command)
	case "file":
		c.file("file", a.File)
	case "env":
		c.match("env", a.Env, envNameRE, "an environment variable prefix like AWS_")
	}
}

// command checks a command line (required).
func (c *checker) command(path string, cmd *CommandLine) {
	switch {
	case cmd == nil:
		c.errorf(path, "missing: mode external-command runs this command, which prints the credential; want a string like \"/usr/local/bin/cred --profile lab\" or a list")
	case cmd.IsList():
		if len(cmd.Argv) == 0 {
			c.errorf(path, "empty list: want the program, then its arguments")
		}
		for i, a := range cmd.Argv {
			if a == "" || strings.ContainsRune(a, 0) {
				c.errorf(indexPath(path, i), "%q is not a valid argument: want a non-empty string without NUL", a)
			}
		}
	case strings.TrimSpace(cmd.Line) == "":
		c.errorf(path, "empty: want the program and its arguments, like \"/usr/local/bin/cred --profile lab\"")
	case strings.ContainsRune(cmd.Line, 0):
		c.errorf(path, "contains NUL: want a command line")
	}
}

func (o *ProviderActionPolicy) validate(c *checker) {
	s := &o.Spec
	c.unique("spec.allowedProviders", s.AllowedProviders)
	c.names("spec.allowedProviderRefs", s.AllowedProviderRefs)
	for i, a := range s.AllowedActions {
		c.match(indexPath("spec.allowedActions", i), a, identRE, "an action name like assign-secondary-ip")
	}
	c.unique("spec.allowedActions", s.AllowedActions)
	for i, a := range s.AutoApproveActions {
		if !slices.Contains(s.AllowedActions, a) {
			c.errorf(indexPath("spec.autoApproveActions", i), "%q is not in allowedActions", a)
		}
	}
	for i, p := range s.AllowedCIDRs {
		c.cidr(indexPath("spec.allowedCIDRs", i), p)
	}
	c.between("spec.maxActionsPerRun", s.MaxActionsPerRun, 1, 1000)
	if w := s.ExecutionWindow; w != nil {
		c.match("spec.executionWindow.start", w.Start, clockRE, "a time of day HH:MM")
		c.match("spec.executionWindow.end", w.End, clockRE, "a time of day HH:MM")
		c.unique("spec.executionWindow.days", w.Days)
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			c.errorf("spec.executionWindow.timeZone", "%q is not a known time zone: want an IANA name like Europe/Berlin or UTC", w.TimeZone)
		}
	}
}

func (o *MSSClamp) validate(c *checker) {
	s := &o.Spec
	if len(s.PeerRefs) == 0 && len(s.Interfaces) == 0 {
		c.errorf("spec", "nothing to clamp: want peerRefs, interfaces or both")
	}
	c.names("spec.peerRefs", s.PeerRefs)
	for i, n := range s.Interfaces {
		c.ifName(indexPath("spec.interfaces", i), n)
	}
	c.unique("spec.interfaces", s.Interfaces)
	switch s.Mode {
	case "fixed":
		c.between("spec.mss", s.MSS, 536, 65495)
	case "pmtu":
		if s.MSS != 0 {
			c.errorf("spec.mss", "set with mode pmtu: the MSS comes from the path MTU; use mode fixed or remove mss")
		}
	}
	c.unique("spec.families", s.Families)
}

func (o *DynamicConfigPart) validate(c *checker) {
	s := &o.Spec
	c.source("spec.source", s.Source)
	for i, r := range s.Resources {
		p := indexPath("spec.resources", i)
		if r.Object == nil {
			c.errorf(p, "empty resource")
			continue
		}
		if r.Object.GetKind() == "DynamicConfigPart" {
			c.errorf(joinPath(p, "kind"), "a DynamicConfigPart cannot contain another DynamicConfigPart")
			continue
		}
		validateObject(r.Object, c.at(p))
	}
	if s.Mask != nil {
		for i, f := range s.Mask.Fields {
			c.match(indexPath("spec.mask.fields", i), f, fieldPathRE, "a field path like spec.address or spec.delivery.*")
		}
	}
	for i, e := range s.Events {
		if strings.TrimSpace(e) == "" {
			c.errorf(indexPath("spec.events", i), "empty event id")
		}
	}
}

func (o *DynamicOverridePolicy) validate(c *checker) {
	for i, a := range o.Spec.Allow {
		p := indexPath("spec.allow", i)
		c.sourcePattern(joinPath(p, "source"), a.Source)
		c.unique(joinPath(p, "operations"), a.Operations)
		for j, t := range a.Targets {
			c.targetPattern(indexPath(joinPath(p, "targets"), j), t)
		}
		for j, f := range a.Fields {
			c.match(indexPath(joinPath(p, "fields"), j), f, fieldPathRE, "a field path like spec.address or spec.delivery.*")
		}
	}
}

var (
	// subjectPrefixRE is a NATS subject prefix (no wildcard, dot or space).
	subjectPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	// streamNameRE is a JetStream stream name (no '.', '*', '>', path separator or space).
	streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
)

// validate checks spec.transport (defaults applied).
func (t *EventTransport) validate(c *checker) {
	switch t.Type {
	case "", TransportHMACPush:
		for _, f := range []struct {
			path string
			set  bool
		}{
			{"servers", len(t.Servers) > 0}, {"credentialsFile", t.CredentialsFile != ""},
			{"stream", t.Stream != ""}, {"subjectPrefix", t.SubjectPrefix != ""}, {"embedded", t.Embedded != nil},
		} {
			if f.set {
				c.errorf(f.path, "only used with type %s: set type: %s or remove %s", TransportNATSJetStream, TransportNATSJetStream, f.path)
			}
		}
		return
	case TransportNATSJetStream:
	default:
		c.errorf("type", "%q is not a transport: want %s (default) or %s", t.Type, TransportHMACPush, TransportNATSJetStream)
		return
	}
	if len(t.Servers) == 0 && t.Embedded == nil {
		c.errorf("servers", "type %s needs servers (e.g. [nats://nats-1.example:4222]) or embedded: {listen: 127.0.0.1:4222}", TransportNATSJetStream)
	}
	for i, u := range t.Servers {
		if !natsURL(u) {
			c.errorf(indexPath("servers", i), "%q is not a NATS server URL: want nats://host:port, tls://host:port or host:port", u)
		}
	}
	c.unique("servers", t.Servers)
	if t.CredentialsFile != "" {
		c.file("credentialsFile", t.CredentialsFile)
	}
	c.match("stream", t.Stream, streamNameRE, "a JetStream stream name of letters, digits, '-' and '_' like ROUTERD_LAB")
	c.match("subjectPrefix", t.SubjectPrefix, subjectPrefixRE, "dot-separated tokens of letters, digits, '-' and '_' like routerd or site1.routerd")
	if e := t.Embedded; e != nil {
		host, port, err := net.SplitHostPort(e.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			c.errorf("embedded.listen", "%q is not host:port: want an address like 127.0.0.1:4222", e.Listen)
		} else if _, err := netip.ParseAddr(host); err != nil {
			c.errorf("embedded.listen", "%q: host %q is not an IP address: want an address like 127.0.0.1:4222", e.Listen, host)
		}
		if e.StoreDir != "" {
			c.file("embedded.storeDir", e.StoreDir)
		}
	}
}

// natsURL reports whether u is a NATS server URL: nats://, tls://, ws(s):// with a host,
// or a bare host:port.
func natsURL(u string) bool {
	if !strings.Contains(u, "://") {
		_, port, err := net.SplitHostPort(u)
		return err == nil && port != ""
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Path != "" && p.Path != "/" {
		return false
	}
	switch p.Scheme {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}
