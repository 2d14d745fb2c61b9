package schemas

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// This file holds the reference checks of every Kind: what a resource refers to must
// exist, and rules across resources (a claim inside its domain, one peer per node). The
// same per-Kind checks run for a loaded config (Config.checkRefs) and for an object
// proposed at run time against the static config and the live dynamic objects
// (CheckProposed).

// refScope is the set of resources references are looked up in.
type refScope struct {
	byKind map[string]map[string]Object
}

func newRefScope() *refScope { return &refScope{byKind: map[string]map[string]Object{}} }

// add puts o into the scope, replacing a resource of the same Kind and name.
func (s *refScope) add(o Object) {
	kind := o.GetKind()
	if s.byKind[kind] == nil {
		s.byKind[kind] = map[string]Object{}
	}
	s.byKind[kind][o.GetName()] = o
}

// get returns the resource of kind named name, or nil.
func (s *refScope) get(kind, name string) Object { return s.byKind[kind][name] }

// refChecker checks the references of one resource.
type refChecker struct {
	scope *refScope
	// earlier are the resources checked before this one, for rules across resources
	// that report the later of two conflicting resources.
	earlier []Object
	errorf  func(path, format string, args ...any)
}

// ref reports a missing resource of kind named name referenced at path.
func (r *refChecker) ref(path, kind, name string) {
	if name == "" || r.scope.get(kind, name) != nil {
		return
	}
	var known []string
	for n := range r.scope.byKind[kind] {
		known = append(known, n)
	}
	slices.Sort(known)
	if len(known) == 0 {
		r.errorf(path, "no %s named %q (there are no %s resources)", kind, name, kind)
		return
	}
	r.errorf(path, "no %s named %q; known: %s", kind, name, strings.Join(known, ", "))
}

// peerCompared is implemented by the Kinds whose checkRefs compares a resource with the
// other resources of its own Kind (refChecker.earlier), beyond the one-name-per-Kind
// rule: CheckProposed then checks a proposal against every live resource of that Kind,
// and for every other Kind only against the live resource of the same name.
type peerCompared interface {
	comparesSameKind()
}

func (*EventPeer) comparesSameKind() {}

// ComparesSameKind reports whether o's Kind checks a resource against the other
// resources of its Kind (beyond their names); callers may then leave out live resources
// of o's Kind with other names when checking o (CheckProposed does so itself).
func ComparesSameKind(o Object) bool {
	_, ok := o.(peerCompared)
	return ok
}

// refChecked is implemented by the Kinds that refer to other resources.
type refChecked interface {
	Object
	// checkRefs reports the problems of the resource's references through r.
	checkRefs(r *refChecker)
}

// checkRefs checks the references between resources that decoded and validated cleanly.
func (c *Config) checkRefs() []Problem {
	scope := newRefScope()
	for _, e := range c.entries {
		scope.add(e.obj)
	}
	var problems []Problem
	var earlier []Object
	for _, e := range c.entries {
		if !e.ok {
			continue
		}
		if o, ok := e.obj.(refChecked); ok {
			d := e.ctx
			o.checkRefs(&refChecker{scope: scope, earlier: earlier, errorf: func(path, format string, args ...any) {
				d.errorf(d.lineOf(path), path, format, args...)
				problems = append(problems, d.problems[len(d.problems)-1])
			}})
		}
		earlier = append(earlier, e.obj)
	}
	return problems
}

func (o *EventGroup) checkRefs(r *refChecker) {
	for i, p := range o.Spec.PeersFrom {
		kind, name, _ := strings.Cut(p.Resource, "/")
		if !p.Optional {
			r.ref(joinPath(indexPath("spec.peersFrom", i), "resource"), kind, name)
		}
	}
}

func (o *EventPeer) checkRefs(r *refChecker) {
	r.ref("spec.groupRef", "EventGroup", o.Spec.GroupRef)
	if g, ok := r.scope.get("EventGroup", o.Spec.GroupRef).(*EventGroup); ok && g.Spec.NodeName == o.Spec.NodeName {
		r.errorf("spec.nodeName", "%q is the local node of group %s: a peer must be another node", o.Spec.NodeName, g.Metadata.Name)
	}
	for _, e := range r.earlier {
		if p, ok := e.(*EventPeer); ok && p.Metadata.Name != o.Metadata.Name &&
			p.Spec.GroupRef == o.Spec.GroupRef && p.Spec.NodeName == o.Spec.NodeName {
			r.errorf("spec.nodeName", "node %q is already the peer %s of group %s", o.Spec.NodeName, p.Metadata.Name, o.Spec.GroupRef)
			return
		}
	}
}

func (o *EventSubscription) checkRefs(r *refChecker) {
	r.ref("spec.groupRef", "EventGroup", o.Spec.GroupRef)
	r.ref("spec.trigger.pluginRef", "Plugin", o.Spec.Trigger.PluginRef)
	if p, ok := r.scope.get("Plugin", o.Spec.Trigger.PluginRef).(*Plugin); ok && len(p.Spec.Hooks) > 0 && !slices.Contains(p.Spec.Hooks, "on_events") {
		r.errorf("spec.trigger.pluginRef", "plugin %s does not enable the on_events hook (hooks: %s)", p.Metadata.Name, strings.Join(p.Spec.Hooks, ", "))
	}
}

func (o *FederationSLO) checkRefs(r *refChecker) {
	r.ref("spec.groupRef", "EventGroup", o.Spec.GroupRef)
}

func (o *Plugin) checkRefs(r *refChecker) {
	if g := o.Spec.Grants.ProviderRequest; g != nil {
		for i, p := range g.ProfileRefs {
			r.ref(indexPath("spec.grants.providerRequest.profileRefs", i), "CloudProviderProfile", p)
		}
	}
}

func (o *HybridRoute) checkRefs(r *refChecker) {
	r.ref("spec.peerRef", "OverlayPeer", o.Spec.PeerRef)
}

func (o *AddressMobilityDomain) checkRefs(r *refChecker) {
	r.ref("spec.peerRef", "OverlayPeer", o.Spec.PeerRef)
}

func (o *RemoteAddressClaim) checkRefs(r *refChecker) {
	r.ref("spec.domainRef", "AddressMobilityDomain", o.Spec.DomainRef)
	if d, ok := r.scope.get("AddressMobilityDomain", o.Spec.DomainRef).(*AddressMobilityDomain); ok {
		if !prefixContains(d.Spec.Prefix, o.Spec.Address) {
			r.errorf("spec.address", "%s is outside the prefix %s of domain %s", o.Spec.Address, d.Spec.Prefix, d.Metadata.Name)
		}
	}
	if o.Spec.Capture != nil {
		r.ref("spec.capture.providerRef", "CloudProviderProfile", o.Spec.Capture.ProviderRef)
	}
	if o.Spec.Delivery != nil {
		r.ref("spec.delivery.peerRef", "OverlayPeer", o.Spec.Delivery.PeerRef)
	}
}

func (o *MSSClamp) checkRefs(r *refChecker) {
	for i, p := range o.Spec.PeerRefs {
		r.ref(indexPath("spec.peerRefs", i), "OverlayPeer", p)
	}
}

func (o *ProviderActionPolicy) checkRefs(r *refChecker) {
	for i, p := range o.Spec.AllowedProviderRefs {
		path := indexPath("spec.allowedProviderRefs", i)
		r.ref(path, "CloudProviderProfile", p)
		if prof, ok := r.scope.get("CloudProviderProfile", p).(*CloudProviderProfile); ok && len(o.Spec.AllowedProviders) > 0 && !slices.Contains(o.Spec.AllowedProviders, prof.Spec.Provider) {
			r.errorf(path, "profile %s is for provider %s, which allowedProviders does not list", p, prof.Spec.Provider)
		}
	}
}

func (o *DynamicOverridePolicy) checkRefs(r *refChecker) {
	for i, a := range o.Spec.Allow {
		kind, name, _ := strings.Cut(a.Source, "/")
		if _, known := LookupKind(kind); known && !IsNamePattern(name) {
			r.ref(joinPath(indexPath("spec.allow", i), "source"), kind, name)
		}
	}
}

// prefixContains reports whether address (an IP or IP/len) lies within prefix.
func prefixContains(prefix, address string) bool {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return false
	}
	if a, err := netip.ParsePrefix(address); err == nil {
		return p.Bits() <= a.Bits() && p.Contains(a.Addr())
	}
	a, err := netip.ParseAddr(address)
	return err == nil && p.Contains(a)
}

// errorfTo returns an errorf for a refChecker that appends to *problems as Problems of
// kind/name with paths under prefix.
func errorfTo(problems *[]Problem, kind, name, prefix string) func(path, format string, args ...any) {
	return func(path, format string, args ...any) {
		*problems = append(*problems, Problem{Kind: kind, Name: name, Path: joinPath(prefix, path),
			Message: fmt.Sprintf(format, args...), Severity: SeverityError})
	}
}
