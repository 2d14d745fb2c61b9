// Command provider-oci is the bundled planner plugin for OCI: RemoteAddressClaims whose capture is provider-secondary-ip through an oci CloudProviderProfile become create-private-ip / delete-private-ip ActionPlans for a privateIp on the claim's VNIC (the plan hook; logic in
// plugins/internal/providerplan). See README.md.
package main

import (
	"routerd.net/routerd/abi/guest"
	"routerd.net/routerd/plugins/internal/providerplan"
)

func init() {
	guest.Register(providerplan.OCI.Manifest())
	guest.Plan(providerplan.OCI.Handle)
}

func main() {}
