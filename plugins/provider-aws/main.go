// Command provider-aws is the bundled AWS provider plugin. Its plan hook turns
// RemoteAddressClaims with provider-secondary-ip capture through an aws
// CloudProviderProfile into ActionPlans that add or remove the address on the claim's
// ENI (EC2 AssignPrivateIpAddresses / UnassignPrivateIpAddresses); its execute hook
// runs an approved plan through the host function provider_request. The logic is in
// plugins/internal/providerplan and providerexec; see README.md.
package main

import (
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerplan"
)

func init() {
	guest.Register(providerplan.AWS.Manifest())
	guest.Plan(providerplan.AWS.Handle)
	guest.Execute(providerplan.AWS.HandleExecute)
}

func main() {}
