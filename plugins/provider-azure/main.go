// Command provider-azure is the bundled Azure provider plugin. Its plan hook turns
// RemoteAddressClaims with provider-secondary-ip capture through an azure
// CloudProviderProfile into ActionPlans that add or remove the address on the claim's
// network interface (an ARM ipConfiguration); its execute hook runs an approved plan through
// the host function provider_request. The logic is in plugins/internal/providerplan and
// providerexec; see README.md.
package main

import (
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerplan"
)

func init() {
	guest.Register(providerplan.Azure.Manifest())
	guest.Plan(providerplan.Azure.Handle)
	guest.Execute(providerplan.Azure.HandleExecute)
}

func main() {}
