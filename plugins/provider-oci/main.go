// Command provider-oci is the bundled OCI provider plugin. Its plan hook turns
// RemoteAddressClaims with provider-secondary-ip capture through an oci
// CloudProviderProfile into ActionPlans that add or remove the address on the claim's
// VNIC (an OCI privateIp object); its execute hook runs an approved plan through
// the host function provider_request. The logic is in plugins/internal/providerplan and
// providerexec; see README.md.
package main

import (
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerplan"
)

func init() {
	guest.Register(providerplan.OCI.Manifest())
	guest.Plan(providerplan.OCI.Handle)
	guest.Execute(providerplan.OCI.HandleExecute)
}

func main() {}
