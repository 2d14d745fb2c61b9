package providerplan

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/plugins/internal/providerexec"
)

// AWS plans EC2 AssignPrivateIpAddresses / UnassignPrivateIpAddresses on the claim's ENI.
var AWS = Provider{
	Name:     abi.ProviderAWS,
	Exec:     providerexec.AWS,
	Assign:   abi.ActionAssignSecondaryIP,
	Unassign: abi.ActionUnassignSecondaryIP,
	Params: func(prof Profile, _, _ string, p map[string]string) {
		p["region"] = prof.Region
	},
}

// Azure plans an IP configuration routerd-<address> added to or removed from the claim's
// network interface (ARM networkInterfaces PUT).
var Azure = Provider{
	Name:     abi.ProviderAzure,
	Exec:     providerexec.Azure,
	Assign:   abi.ActionAssignSecondaryIP,
	Unassign: abi.ActionUnassignSecondaryIP,
	Params: func(prof Profile, _, address string, p map[string]string) {
		p["subscriptionID"] = prof.SubscriptionID
		p["resourceGroup"] = prof.ResourceGroup
		p["ipConfigurationName"] = "routerd-" + Dashed(address)
	},
}

// OCI plans a privateIp object created on or deleted from the claim's VNIC.
var OCI = Provider{
	Name:     abi.ProviderOCI,
	Exec:     providerexec.OCI,
	Assign:   abi.ActionCreatePrivateIP,
	Unassign: abi.ActionDeletePrivateIP,
	Params: func(prof Profile, _, address string, p map[string]string) {
		p["compartmentID"] = prof.CompartmentID
		p["displayName"] = "routerd-" + Dashed(address)
	},
}
