// Command provider-aws is the bundled planner plugin for AWS: RemoteAddressClaims whose capture is provider-secondary-ip through an aws CloudProviderProfile become assign-secondary-ip / unassign-secondary-ip ActionPlans on the claim's ENI (the plan hook; logic in
// plugins/internal/providerplan). See README.md.
package main

import (
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerplan"
)

func init() {
	guest.Register(providerplan.AWS.Manifest())
	guest.Plan(providerplan.AWS.Handle)
}

func main() {}
