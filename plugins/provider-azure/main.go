// Command provider-azure is the bundled planner plugin for Azure: RemoteAddressClaims whose capture is provider-secondary-ip through an azure CloudProviderProfile become assign-secondary-ip / unassign-secondary-ip ActionPlans for an IP configuration of the claim's network interface (the plan hook; logic in
// plugins/internal/providerplan). See README.md.
package main

import (
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerplan"
)

func init() {
	guest.Register(providerplan.Azure.Manifest())
	guest.Plan(providerplan.Azure.Handle)
}

func main() {}
