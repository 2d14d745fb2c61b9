package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"routerd.net/routerd/abi"
)

// A Binding ties provider calls to the one approved plan being executed: the host's
// executor puts it in the execute hook's context (WithPlan), and provider_request refuses
// any call that does not serve that plan — another NIC, another address, another action,
// or a delete of an object the execution did not find for the plan's address. So a plugin
// whose grant covers a profile still cannot use it for anything the operator did not
// approve.
type Binding struct {
	// Plan is the approved plan (for an undo: the undo action and its parameters).
	Plan abi.ActionPlan

	mu sync.Mutex
	// seen holds what earlier answers of this execution showed: OCI privateIp ids with
	// the plan's address, and the addresses of the Azure NIC last read.
	ociIDs   map[string]bool
	armAddrs []string
	armRead  bool
}

type bindingKey struct{}

// WithPlan returns ctx carrying a Binding to plan.
func WithPlan(ctx context.Context, plan abi.ActionPlan) context.Context {
	return context.WithValue(ctx, bindingKey{}, &Binding{Plan: plan})
}

// BindingFrom returns the Binding in ctx, or nil.
func BindingFrom(ctx context.Context) *Binding {
	b, _ := ctx.Value(bindingKey{}).(*Binding)
	return b
}

// Allows reports, as an error naming the mismatch, whether c serves the bound plan.
func (b *Binding) Allows(c Call) error {
	p := b.Plan
	nic, address := p.Parameters[abi.ParamNIC], p.Parameters[abi.ParamAddress]
	if c.ProfileRef != p.ProviderRef {
		return fmt.Errorf("plan %s uses profile %s, not %s", p.Name, p.ProviderRef, c.ProfileRef)
	}
	if nic == "" || address == "" {
		return fmt.Errorf("plan %s names no %s and %s", p.Name, abi.ParamNIC, abi.ParamAddress)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch p.Provider {
	case abi.ProviderAWS:
		return allowsEC2(p, c, nic, address)
	case abi.ProviderAzure:
		return b.allowsARM(p, c, nic, address)
	case abi.ProviderOCI:
		return b.allowsOCI(p, c, nic, address)
	}
	return fmt.Errorf("plan %s: provider %q has no request rules", p.Name, p.Provider)
}

// ec2Actions maps plan actions to the EC2 Query actions that serve them.
var ec2Actions = map[string]string{
	abi.ActionAssignSecondaryIP:   "AssignPrivateIpAddresses",
	abi.ActionUnassignSecondaryIP: "UnassignPrivateIpAddresses",
}

func allowsEC2(p abi.ActionPlan, c Call, nic, address string) error {
	if c.Method != http.MethodPost || c.Path != "/" || len(c.Query) > 0 {
		return fmt.Errorf("plan %s: EC2 calls are POST / with a form body, not %s %s", p.Name, c.Method, c.Path)
	}
	form, err := url.ParseQuery(string(c.Body))
	if err != nil {
		return fmt.Errorf("plan %s: EC2 form body: %v", p.Name, err)
	}
	if want := ec2Actions[p.Action]; form.Get("Action") != want || want == "" {
		return fmt.Errorf("plan %s (%s) allows EC2 Action %s, not %q", p.Name, p.Action, want, form.Get("Action"))
	}
	for k, vs := range form {
		switch {
		case k == "Action" || k == "Version":
		case k == "NetworkInterfaceId":
			if len(vs) != 1 || vs[0] != nic {
				return fmt.Errorf("plan %s allows NIC %s, not %v", p.Name, nic, vs)
			}
		case strings.HasPrefix(k, "PrivateIpAddress."):
			if len(vs) != 1 || vs[0] != address {
				return fmt.Errorf("plan %s allows address %s, not %v", p.Name, address, vs)
			}
		default:
			return fmt.Errorf("plan %s: EC2 parameter %s is not part of the approved action", p.Name, k)
		}
	}
	if form.Get("NetworkInterfaceId") == "" {
		return fmt.Errorf("plan %s: the EC2 call names no NetworkInterfaceId", p.Name)
	}
	return nil
}

// allowsARM allows GET and PUT of the plan's NIC only; a PUT must change the NIC's
// private addresses, as last read, by exactly the plan's address.
func (b *Binding) allowsARM(p abi.ActionPlan, c Call, nic, address string) error {
	if !(c.Path == nic || strings.HasSuffix(c.Path, "/networkInterfaces/"+nic)) {
		return fmt.Errorf("plan %s allows network interface %s, not %s", p.Name, nic, c.Path)
	}
	switch c.Method {
	case http.MethodGet:
		return nil
	case http.MethodPut:
	default:
		return fmt.Errorf("plan %s: %s on a network interface is not part of the approved action", p.Name, c.Method)
	}
	if !b.armRead {
		return fmt.Errorf("plan %s: PUT of %s before reading it in this execution", p.Name, nic)
	}
	after, err := armAddresses(c.Body)
	if err != nil {
		return fmt.Errorf("plan %s: PUT body: %v", p.Name, err)
	}
	var want []string
	switch p.Action {
	case abi.ActionAssignSecondaryIP:
		want = append(slices.Clone(b.armAddrs), address)
	case abi.ActionUnassignSecondaryIP:
		want = slices.DeleteFunc(slices.Clone(b.armAddrs), func(a string) bool { return a == address })
	default:
		return fmt.Errorf("plan %s: action %s has no ARM request", p.Name, p.Action)
	}
	slices.Sort(want)
	slices.Sort(after)
	if !slices.Equal(want, after) {
		return fmt.Errorf("plan %s: the PUT would leave addresses %v on %s; the approved change leaves %v", p.Name, after, nic, want)
	}
	return nil
}

// armAddresses are the private addresses of a network interface document.
func armAddresses(body []byte) ([]string, error) {
	var nic struct {
		Properties struct {
			IPConfigurations []struct {
				Properties struct {
					PrivateIPAddress string `json:"privateIPAddress"`
				} `json:"properties"`
			} `json:"ipConfigurations"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &nic); err != nil {
		return nil, err
	}
	out := []string{}
	for _, c := range nic.Properties.IPConfigurations {
		out = append(out, c.Properties.PrivateIPAddress)
	}
	return out, nil
}

const ociPrivateIPs = "/20160918/privateIps"

func (b *Binding) allowsOCI(p abi.ActionPlan, c Call, vnic, address string) error {
	switch {
	case c.Method == http.MethodGet && c.Path == ociPrivateIPs:
		if c.Query.Get("vnicId") != vnic || (c.Query.Has("ipAddress") && c.Query.Get("ipAddress") != address) {
			return fmt.Errorf("plan %s allows listing VNIC %s address %s, not %s", p.Name, vnic, address, c.Query.Encode())
		}
		return nil
	case c.Method == http.MethodPost && c.Path == ociPrivateIPs && p.Action == abi.ActionCreatePrivateIP:
		var body struct{ VnicID, IPAddress string }
		if err := json.Unmarshal(c.Body, &body); err != nil || body.VnicID != vnic || body.IPAddress != address {
			return fmt.Errorf("plan %s allows creating %s on %s only", p.Name, address, vnic)
		}
		return nil
	case c.Method == http.MethodDelete && strings.HasPrefix(c.Path, ociPrivateIPs+"/") && p.Action == abi.ActionDeletePrivateIP:
		if id := strings.TrimPrefix(c.Path, ociPrivateIPs+"/"); !b.ociIDs[id] {
			return fmt.Errorf("plan %s: privateIp %s was not listed for %s on %s in this execution", p.Name, id, address, vnic)
		}
		return nil
	}
	return fmt.Errorf("plan %s (%s): %s %s is not part of the approved action", p.Name, p.Action, c.Method, c.Path)
}

// Saw records what an answer to c showed, for later checks of the same execution.
func (b *Binding) Saw(c Call, r Response) {
	if r.Status < 200 || r.Status > 299 || c.Method != http.MethodGet {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	address := b.Plan.Parameters[abi.ParamAddress]
	switch b.Plan.Provider {
	case abi.ProviderAzure:
		if addrs, err := armAddresses(r.Body); err == nil {
			b.armAddrs, b.armRead = addrs, true
		}
	case abi.ProviderOCI:
		var ips []struct{ ID, IPAddress, VnicID string }
		if json.Unmarshal(r.Body, &ips) == nil {
			for _, ip := range ips {
				if ip.IPAddress == address && (ip.VnicID == "" || ip.VnicID == b.Plan.Parameters[abi.ParamNIC]) {
					if b.ociIDs == nil {
						b.ociIDs = map[string]bool{}
					}
					b.ociIDs[ip.ID] = true
				}
			}
		}
	}
}
