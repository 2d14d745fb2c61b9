package providertest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// ARMAPIVersion is the networkInterfaces api-version the fake accepts.
const ARMAPIVersion = "2023-09-01"

// AzureOptions configure the fake Azure (token endpoint and ARM).
type AzureOptions struct {
	// TenantID, ClientID and ClientSecret are the one valid service principal.
	TenantID, ClientID, ClientSecret string
	// SubscriptionID and ResourceGroup are where the NICs live.
	SubscriptionID, ResourceGroup string
	// NICs are the network interfaces by name and their private IPs at start; the first
	// is the primary ipConfiguration.
	NICs map[string][]string
}

// IPConfiguration is one ARM ipConfiguration of a NIC.
type IPConfiguration struct {
	Name       string `json:"name"`
	Properties struct {
		PrivateIPAddress          string `json:"privateIPAddress"`
		PrivateIPAllocationMethod string `json:"privateIPAllocationMethod,omitempty"`
		Primary                   bool   `json:"primary,omitempty"`
		// Subnet is the subnet the address is in (ARM requires one per ipConfiguration).
		Subnet *SubResource `json:"subnet,omitempty"`
	} `json:"properties"`
}

// SubResource is an ARM reference to another resource.
type SubResource struct {
	ID string `json:"id"`
}

// NetworkInterface is the ARM networkInterfaces resource (the fields the fake keeps).
type NetworkInterface struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Etag       string `json:"etag,omitempty"`
	Properties struct {
		ProvisioningState string            `json:"provisioningState,omitempty"`
		IPConfigurations  []IPConfiguration `json:"ipConfigurations"`
	} `json:"properties"`
}

// Azure is a fake Microsoft Entra token endpoint (TLS, as azidentity requires) and a
// fake ARM networkInterfaces API (plain HTTP on 127.0.0.1).
type Azure struct {
	base
	// AuthorityHost is the token endpoint's base URL (https://127.0.0.1:port/).
	AuthorityHost string
	// LoginClient trusts the token endpoint's certificate.
	LoginClient *http.Client
	// URL is the ARM endpoint, http://127.0.0.1:port.
	URL string
	// TokenRequests counts token requests (served or rejected).
	TokenRequests func() int64

	opts  AzureOptions
	login base

	mu     sync.Mutex
	tokens map[string]bool
	nics   map[string]*NetworkInterface
	etag   int
}

// NewAzure starts the fake token endpoint and ARM; they stop when the test ends.
func NewAzure(t testing.TB, opts AzureOptions) *Azure {
	t.Helper()
	f := &Azure{base: newBase("arm"), login: newBase("login"), opts: opts, tokens: map[string]bool{}, nics: map[string]*NetworkInterface{}}
	for name, ips := range opts.NICs {
		nic := &NetworkInterface{Name: name, ID: f.nicPath(name)}
		for i, ip := range ips {
			c := IPConfiguration{Name: fmt.Sprintf("ipconfig%d", i+1)}
			c.Properties.PrivateIPAddress, c.Properties.PrivateIPAllocationMethod, c.Properties.Primary = ip, "Static", i == 0
			c.Properties.Subnet = &SubResource{ID: f.subnetID()}
			nic.Properties.IPConfigurations = append(nic.Properties.IPConfigurations, c)
		}
		f.bump(nic)
		f.nics[strings.ToLower(name)] = nic
	}
	login := httptest.NewTLSServer(http.HandlerFunc(f.serveLogin))
	arm := httptest.NewServer(http.HandlerFunc(f.serveARM))
	f.AuthorityHost, f.LoginClient, f.URL = login.URL+"/", login.Client(), arm.URL
	f.TokenRequests = f.login.Requests
	t.Cleanup(func() { f.stop(); arm.Close(); login.Close() })
	return f
}

// nicPath is the ARM resource id of a NIC.
func (f *Azure) nicPath(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkInterfaces/%s", f.opts.SubscriptionID, f.opts.ResourceGroup, name)
}

// subnetID is the one subnet every address of the fake is in.
func (f *Azure) subnetID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/vnet-1/subnets/default", f.opts.SubscriptionID, f.opts.ResourceGroup)
}

// bump gives nic a new etag.
func (f *Azure) bump(nic *NetworkInterface) {
	f.etag++
	nic.Etag = fmt.Sprintf(`W/"%d"`, f.etag)
	nic.Properties.ProvisioningState = "Succeeded"
}

// Addresses returns the private IPs of nic's ipConfigurations (nil for an unknown NIC).
func (f *Azure) Addresses(nic string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nics[strings.ToLower(nic)]
	if !ok {
		return nil
	}
	var out []string
	for _, c := range n.Properties.IPConfigurations {
		out = append(out, c.Properties.PrivateIPAddress)
	}
	return out
}

// serveLogin is the Entra v2.0 endpoint: OpenID configuration and client credentials
// token grant.
func (f *Azure) serveLogin(w http.ResponseWriter, r *http.Request) {
	f.login.requests.Add(1)
	base := "https://" + r.Host + "/" + f.opts.TenantID
	tokenErr := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc})
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/"+f.opts.TenantID+"/v2.0/.well-known/openid-configuration":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+f.opts.TenantID+"/oauth2/v2.0/token":
		if err := r.ParseForm(); err != nil {
			tokenErr(http.StatusBadRequest, "invalid_request", "AADSTS900144: body is not form-encoded")
			return
		}
		switch {
		case r.PostForm.Get("grant_type") != "client_credentials":
			tokenErr(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: grant type not supported")
		case r.PostForm.Get("client_id") != f.opts.ClientID:
			tokenErr(http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application not found in the directory")
		case r.PostForm.Get("client_secret") != f.opts.ClientSecret:
			tokenErr(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		case !strings.Contains(r.PostForm.Get("scope"), "https://management.azure.com/.default"):
			tokenErr(http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for scope is not valid.")
		default:
			b := make([]byte, 24)
			_, _ = rand.Read(b)
			tok := "fake-arm-token-" + hex.EncodeToString(b)
			f.mu.Lock()
			f.tokens[tok] = true
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": 3600, "ext_expires_in": 3600})
		}
	default:
		tokenErr(http.StatusNotFound, "invalid_tenant", "AADSTS90002: Tenant not found.")
	}
}

// armErr writes the ARM error shape.
func (f *Azure) armErr(w http.ResponseWriter, status int, code, msg string) {
	if code == "" {
		code = map[bool]string{true: "TooManyRequests", false: "InternalServerError"}[status == http.StatusTooManyRequests]
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-request-id", f.nextID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// serveARM handles GET and PUT of networkInterfaces.
func (f *Azure) serveARM(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid := ok && f.tokens[tok]
	f.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/`+f.opts.TenantID+`", error="invalid_token"`)
		f.armErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return
	}
	if fl, ok := f.fault(); ok {
		f.serveFault(w, r, fl, f.armErr)
		return
	}
	if v := r.URL.Query().Get("api-version"); v == "" {
		f.armErr(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	} else if v != ARMAPIVersion {
		f.armErr(w, http.StatusBadRequest, "NoRegisteredProviderFound", fmt.Sprintf("No registered resource provider found for API version '%s'.", v))
		return
	}
	prefix := f.nicPath("")
	name, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		f.armErr(w, http.StatusNotFound, "InvalidResourceType", "The resource type could not be found in the namespace 'Microsoft.Network'.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	nic, ok := f.nics[strings.ToLower(name)]
	if !ok {
		f.armErr(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource 'Microsoft.Network/networkInterfaces/%s' under resource group '%s' was not found.", name, f.opts.ResourceGroup))
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		if m := r.Header.Get("If-Match"); m != "" && m != nic.Etag {
			f.armErr(w, http.StatusPreconditionFailed, "PreconditionFailed", "The etag does not match; read the resource again.")
			return
		}
		var in NetworkInterface
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(body, &in); err != nil {
			f.armErr(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
			return
		}
		primaries, seen := 0, map[string]bool{}
		for _, c := range in.Properties.IPConfigurations {
			if c.Name == "" || c.Properties.PrivateIPAddress == "" {
				f.armErr(w, http.StatusBadRequest, "InvalidRequestFormat", "Every ipConfiguration needs a name and a privateIPAddress.")
				return
			}
			if c.Properties.Subnet == nil || c.Properties.Subnet.ID == "" {
				f.armErr(w, http.StatusBadRequest, "SubnetIsRequired", "ipConfiguration "+c.Name+" needs properties.subnet.id.")
				return
			}
			if seen[c.Properties.PrivateIPAddress] {
				f.armErr(w, http.StatusBadRequest, "DuplicatePrivateIPAddress", "Private IP address "+c.Properties.PrivateIPAddress+" is used twice.")
				return
			}
			seen[c.Properties.PrivateIPAddress] = true
			if c.Properties.Primary {
				primaries++
			}
		}
		if primaries != 1 {
			f.armErr(w, http.StatusBadRequest, "NetworkInterfaceMustHaveOnePrimaryIpConfiguration", "Network interface must have exactly one primary ipConfiguration.")
			return
		}
		for other, n := range f.nics {
			if other == strings.ToLower(name) {
				continue
			}
			for _, c := range n.Properties.IPConfigurations {
				if seen[c.Properties.PrivateIPAddress] {
					f.armErr(w, http.StatusBadRequest, "PrivateIPAddressInUse", "IP configuration is using the private IP address "+c.Properties.PrivateIPAddress+" which is already allocated to resource "+n.ID+".")
					return
				}
			}
		}
		nic.Properties.IPConfigurations = slices.Clone(in.Properties.IPConfigurations)
		f.bump(nic)
	default:
		f.armErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method is not allowed.")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-request-id", f.nextID())
	_ = json.NewEncoder(w).Encode(nic)
}
