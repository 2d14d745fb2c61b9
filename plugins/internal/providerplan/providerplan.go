// Package providerplan is the planning logic the bundled provider planner plugins
// (provider-aws, provider-azure, provider-oci) share: it reads the plan hook's context
// (RemoteAddressClaims, CloudProviderProfiles, AddressMobilityDomains and the host's
// ProviderObservations) and returns the ActionPlans that move one provider's NICs to the
// state the claims ask for.
//
// The rule, per claim whose capture is provider-secondary-ip through a profile of this
// provider: an address owned on the other side of the overlay (ownerSide onprem, the
// default) is captured, so the claim's NIC must carry it as a secondary private IP; an
// address owned in the cloud (ownerSide cloud) belongs to a cloud host, so the router's
// NIC must not carry it. Observed addresses inside a mobility domain that no live claim
// explains are released. An unchanged, already satisfied claim yields no plan.
//
// Plans are deterministic: the same context gives the same plans, in name order, with the
// same idempotency keys. The package uses fastjson (no reflection) because it runs inside
// a Go Wasm guest, where encoding/json costs tens of microseconds per document.
package providerplan

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerexec"
)

// Kinds and values read from the context documents.
const (
	kindClaim          = "RemoteAddressClaim"
	kindProfile        = "CloudProviderProfile"
	kindDomain         = "AddressMobilityDomain"
	captureProviderIP  = "provider-secondary-ip"
	ownerCloud         = "cloud"
	ownerOnprem        = "onprem"
	annotationEventID  = "routerd.net/event-id"
	riskLow, riskMed   = "low", "medium"
	riskHigh           = "high"
	modeDryRun         = "dry-run"
	problemEventType   = "routerd.provider.plan.skipped"
	expectAbsent       = "absent"
	expectAssignedText = "assigned"
)

// Provider describes what differs between providers: the action names and the
// provider-specific parameters of a plan.
type Provider struct {
	// Name is the provider (abi.ProviderAWS, ...).
	Name string
	// Assign and Unassign are the action names that add and remove an address.
	Assign, Unassign string
	// Params adds the provider's own parameters for an action on nic/address to p (which
	// already holds abi.ParamNIC and abi.ParamAddress).
	Params func(prof Profile, nic, address string, p map[string]string)
	// Exec runs an approved plan (the execute hook).
	Exec providerexec.Executor
}

// Profile is the part of a CloudProviderProfile a planner uses (never credentials).
type Profile struct {
	Name, Provider, Region, SubscriptionID, ResourceGroup, CompartmentID string
}

// Claim is the part of a RemoteAddressClaim a planner uses.
type Claim struct {
	// Name is metadata.name; Address is spec.address without a prefix length.
	Name, Address string
	// OwnerSide is spec.ownerSide (default onprem).
	OwnerSide string
	// ProviderRef and NIC are spec.capture.providerRef and nicRef.
	ProviderRef, NIC string
	// EventID is the routerd.net/event-id annotation of a claim proposed from an event:
	// a new observation of the same address gives new idempotency keys.
	EventID string
}

// nicKey identifies one NIC of one profile.
type nicKey struct{ ref, nic string }

// Input is the parsed plan context.
type Input struct {
	// Claims are the claims with provider-secondary-ip capture, any provider.
	Claims []Claim
	// Profiles by name.
	Profiles map[string]Profile
	// Domains are the AddressMobilityDomain prefixes.
	Domains []netip.Prefix
	// observed holds, per NIC, the set of observed secondary addresses and when.
	observed map[nicKey]observation
	// Problems are documents that could not be used, one line each.
	Problems []string
}

type observation struct {
	provider string
	ips      map[string]bool
	at       string
}

// Observe records a ProviderObservation. Of two observations of one NIC the newer
// (observedAt, RFC 3339 in UTC) wins; two of the same time are merged, so the result does
// not depend on document order.
func (in *Input) Observe(o abi.ProviderObservationSpec) {
	if in.observed == nil {
		in.observed = map[nicKey]observation{}
	}
	k := nicKey{o.ProviderRef, o.NIC}
	prev, seen := in.observed[k]
	switch {
	case seen && prev.at > o.ObservedAt:
		return
	case !seen || prev.at < o.ObservedAt:
		prev = observation{provider: o.Provider, ips: make(map[string]bool, len(o.PrivateIPs)), at: o.ObservedAt}
	}
	for _, a := range o.PrivateIPs {
		prev.ips[stripPrefix(a)] = true
	}
	in.observed[k] = prev
}

// Parse reads the context documents. Documents of other kinds are ignored; a document of
// a known kind that cannot be used is reported in Input.Problems and skipped.
func Parse(resources [][]byte) Input {
	in := Input{Profiles: map[string]Profile{}}
	var p fastjson.Parser
	for i, raw := range resources {
		v, err := p.ParseBytes(raw)
		if err != nil {
			in.Problems = append(in.Problems, "resource "+strconv.Itoa(i)+": not JSON: "+err.Error())
			continue
		}
		name := str(v, "metadata", "name")
		switch str(v, "kind") {
		case kindClaim:
			if str(v, "spec", "capture", "type") != captureProviderIP {
				continue
			}
			c := Claim{
				Name:        name,
				Address:     stripPrefix(str(v, "spec", "address")),
				OwnerSide:   str(v, "spec", "ownerSide"),
				ProviderRef: str(v, "spec", "capture", "providerRef"),
				NIC:         str(v, "spec", "capture", "nicRef"),
				EventID:     str(v, "metadata", "annotations", annotationEventID),
			}
			if c.OwnerSide == "" {
				c.OwnerSide = ownerOnprem
			}
			if excluded(v, c.Address) {
				continue
			}
			if _, err := netip.ParseAddr(c.Address); err != nil || c.ProviderRef == "" || c.NIC == "" {
				in.Problems = append(in.Problems, "RemoteAddressClaim "+name+": needs spec.address, spec.capture.providerRef and spec.capture.nicRef for provider-secondary-ip capture")
				continue
			}
			in.Claims = append(in.Claims, c)
		case kindProfile:
			in.Profiles[name] = Profile{
				Name: name, Provider: str(v, "spec", "provider"), Region: str(v, "spec", "region"),
				SubscriptionID: str(v, "spec", "subscriptionID"), ResourceGroup: str(v, "spec", "resourceGroup"),
				CompartmentID: str(v, "spec", "compartmentID"),
			}
		case kindDomain:
			if pfx, err := netip.ParsePrefix(str(v, "spec", "prefix")); err == nil {
				in.Domains = append(in.Domains, pfx.Masked())
			}
		case abi.KindProviderObservation:
			o := abi.ProviderObservationSpec{
				Provider: str(v, "spec", "provider"), ProviderRef: str(v, "spec", "providerRef"),
				NIC: str(v, "spec", "nic"), ObservedAt: str(v, "spec", "observedAt"),
			}
			for _, a := range v.GetArray("spec", "privateIPs") {
				o.PrivateIPs = append(o.PrivateIPs, string(a.GetStringBytes()))
			}
			if o.ProviderRef == "" || o.NIC == "" {
				in.Problems = append(in.Problems, "ProviderObservation "+name+": needs spec.providerRef and spec.nic")
				continue
			}
			in.Observe(o)
		}
	}
	return in
}

// excluded reports whether address is in the claim's capture.excludeAddresses.
func excluded(v *fastjson.Value, address string) bool {
	for _, e := range v.GetArray("spec", "capture", "excludeAddresses") {
		if stripPrefix(string(e.GetStringBytes())) == address {
			return true
		}
	}
	return false
}

// Plan returns the plans that bring pv's NICs to the state in's claims ask for, sorted by
// name, and one line per claim it had to skip.
func (pv Provider) Plan(in Input) (plans []abi.ActionPlan, skipped []string) {
	skipped = append(skipped, in.Problems...)
	wanted := map[nicKey]map[string]bool{} // addresses some live claim of pv explains
	byAddress := map[string]Claim{}
	for _, c := range in.Claims {
		prof, ok := in.Profiles[c.ProviderRef]
		if !ok {
			skipped = append(skipped, "RemoteAddressClaim "+c.Name+": CloudProviderProfile "+c.ProviderRef+" not found")
			continue
		}
		if prof.Provider != pv.Name {
			continue
		}
		k := nicKey{c.ProviderRef, c.NIC}
		if wanted[k] == nil {
			wanted[k] = map[string]bool{}
		}
		wanted[k][c.Address] = true
		byAddress[c.Address] = c
		has := in.observed[k].ips[c.Address]
		switch capture := c.OwnerSide != ownerCloud; {
		case capture && !has:
			plans = append(plans, pv.plan(prof, c.NIC, c.Address, &c, "", true))
		case !capture && has:
			plans = append(plans, pv.plan(prof, c.NIC, c.Address, &c, "", false))
		}
	}
	// Observed addresses inside a mobility domain that no claim explains were captured
	// for a claim that has since gone: release them.
	for k, o := range in.observed {
		prof, ok := in.Profiles[k.ref]
		if !ok || prof.Provider != pv.Name {
			continue
		}
		for a := range o.ips {
			if wanted[k][a] || !inDomains(in.Domains, a) {
				continue
			}
			if _, claimed := byAddress[a]; claimed {
				continue // a claim on another NIC of this provider: its own plan moves it
			}
			plans = append(plans, pv.plan(prof, k.nic, a, nil, o.at, false))
		}
	}
	slices.SortFunc(plans, func(a, b abi.ActionPlan) int { return strings.Compare(a.Name, b.Name) })
	return plans, skipped
}

// plan builds one plan. c is the claim it serves (nil for an orphaned address, then
// observedAt keys the plan to the observation that found it).
func (pv Provider) plan(prof Profile, nic, address string, c *Claim, observedAt string, assign bool) abi.ActionPlan {
	action, undo := pv.Unassign, pv.Assign
	if assign {
		action, undo = pv.Assign, pv.Unassign
	}
	claimName, eventID, owner := "", "", expectAbsent
	if c != nil {
		claimName, eventID, owner = c.Name, c.EventID, c.OwnerSide
	}
	key := idempotencyKey(pv.Name, prof.Name, action, nic, address, claimName, eventID, observedAt)
	params := map[string]string{abi.ParamNIC: nic, abi.ParamAddress: address}
	if pv.Params != nil {
		pv.Params(prof, nic, address, params)
	}
	target := map[string]string{"nic": nic, "address": address}
	if claimName != "" {
		target[abi.TargetClaim] = claimName
	}
	p := abi.ActionPlan{
		Name:           action + "-" + Dashed(address) + "-" + key[:8],
		Provider:       pv.Name,
		Action:         action,
		Target:         target,
		ProviderRef:    prof.Name,
		Mode:           modeDryRun,
		IdempotencyKey: key,
		Parameters:     params,
		Undo:           &abi.ActionUndo{Action: undo}, // the same parameters

		Preconditions: []abi.Precondition{{Name: abi.PreconditionClaim, Expect: owner, Target: address}},
	}
	if assign {
		p.RiskLevel = riskLow
		p.Description = pv.Name + " " + action + ": add " + address + " to " + nic + " (profile " + prof.Name + ") to capture traffic for claim " + claimName
		p.Preconditions = append(p.Preconditions, abi.Precondition{Name: abi.PreconditionAddressAbsent, Expect: expectAbsent, Target: nic})
		p.ExpectedEffects = []string{nic + " has secondary private IP " + address}
		return p
	}
	p.RiskLevel = riskMed
	why := "claim " + claimName + " is owned in the cloud"
	if c == nil {
		p.RiskLevel = riskHigh
		why = "no live claim names it"
	}
	p.Description = pv.Name + " " + action + ": remove " + address + " from " + nic + " (profile " + prof.Name + "): " + why
	p.Preconditions = append(p.Preconditions, abi.Precondition{Name: abi.PreconditionAddressPresent, Expect: expectAssignedText, Target: nic})
	p.ExpectedEffects = []string{nic + " no longer has secondary private IP " + address}
	return p
}

// idempotencyKey is a hex SHA-256 over the plan's identity: the same claim state gives the
// same key, a new observation event of the claim a new one.
func idempotencyKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Result wraps plans and skipped lines into a plan hook result.
func Result(now time.Time, plans []abi.ActionPlan, skipped []string) *abi.Result {
	r := &abi.Result{Status: abi.ResultStatus{ObservedAt: now, ActionPlans: plans}}
	for _, s := range skipped {
		r.Status.Events = append(r.Status.Events, abi.ResultEvent{Type: problemEventType, Message: s})
	}
	return r
}

func inDomains(domains []netip.Prefix, address string) bool {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return false
	}
	for _, d := range domains {
		if d.Contains(a) {
			return true
		}
	}
	return false
}

// Dashed turns an address into a name part: "10.88.60.9" -> "10-88-60-9".
func Dashed(address string) string {
	b := []byte(address)
	for i, c := range b {
		if c == '.' || c == ':' {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

func stripPrefix(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

func str(v *fastjson.Value, keys ...string) string {
	return strings.TrimSpace(string(v.GetStringBytes(keys...)))
}

// Handle is the plan hook of a provider planner plugin: it plans for the request's
// context resources.
func (pv Provider) Handle(req *abi.Request) (*abi.Result, error) {
	docs := make([][]byte, len(req.Spec.Context.Resources))
	for i, r := range req.Spec.Context.Resources {
		docs[i] = r
	}
	plans, skipped := pv.Plan(Parse(docs))
	return Result(req.Spec.Now, plans, skipped), nil
}

// HandleExecute is the execute hook of a provider plugin: it runs the approved plan in
// the request, sending provider requests through the host function provider_request.
func (pv Provider) HandleExecute(req *abi.Request) (*abi.Result, error) {
	return providerexec.Execute(req, pv.Exec, guest.ProviderRequest)
}

// Manifest is the manifest of pv's plugin: plan (propose.providerAction) and execute
// (execute.providerAction through provider_request).
func (pv Provider) Manifest() abi.Manifest {
	return abi.Manifest{
		Name:         "provider-" + pv.Name,
		Version:      "1.0.0",
		Hooks:        []abi.Hook{abi.HookPlan, abi.HookExecute},
		Capabilities: []abi.Capability{abi.CapProposeProviderAction, abi.CapExecuteProviderAction, abi.CapProviderRequest},
		Description:  "RemoteAddressClaims with " + pv.Name + " provider-secondary-ip capture -> " + pv.Assign + "/" + pv.Unassign + " action plans, and their execution",
	}
}
