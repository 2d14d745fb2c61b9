package abi

// Provider actions: the names planners put in ActionPlan.Action and Undo.Action, and
// ProviderActionPolicy.allowedActions lists.
const (
	// ActionAssignSecondaryIP adds a secondary private IP to a NIC (AWS
	// AssignPrivateIpAddresses, Azure ipConfigurations).
	ActionAssignSecondaryIP = "assign-secondary-ip"
	// ActionUnassignSecondaryIP removes a secondary private IP from a NIC.
	ActionUnassignSecondaryIP = "unassign-secondary-ip"
	// ActionCreatePrivateIP creates an OCI privateIp object on a VNIC.
	ActionCreatePrivateIP = "create-private-ip"
	// ActionDeletePrivateIP deletes an OCI privateIp object from a VNIC.
	ActionDeletePrivateIP = "delete-private-ip"
)

// Provider names (CloudProviderProfile spec.provider, ActionPlan.Provider).
const (
	ProviderAWS   = "aws"
	ProviderAzure = "azure"
	ProviderOCI   = "oci"
)

// Names of the preconditions planners attach to provider plans. The host checks them
// again just before it executes a plan and refuses the plan when one no longer holds.
const (
	// PreconditionAddressAbsent: ActionPlan.Parameters["privateIpAddress"] is not on the
	// NIC (Target names it), as last observed.
	PreconditionAddressAbsent = "address-not-assigned"
	// PreconditionAddressPresent: the address is on the NIC, as last observed.
	PreconditionAddressPresent = "address-assigned"
	// PreconditionClaim: the live RemoteAddressClaim for the address in Target has the
	// ownerSide given by Expect ("absent": no live claim names the address).
	PreconditionClaim = "claim-owner-side"
)

// ActionPlan parameter and target keys shared by planners, executors and the host gate.
const (
	// ParamAddress is the private IP address an action adds or removes.
	ParamAddress = "privateIpAddress"
	// ParamNIC is the provider's NIC identifier (an ENI id, an ARM resource id or name,
	// an OCI VNIC OCID).
	ParamNIC = "networkInterfaceId"
	// TargetClaim names the RemoteAddressClaim a plan serves.
	TargetClaim = "claim"
)

// KindProviderObservation is the kind of the context documents in which the host tells a
// plan hook what it last observed of one provider NIC (apiVersion
// hybrid.routerd.net/v1alpha1, spec as ProviderObservationSpec).
const KindProviderObservation = "ProviderObservation"

// ProviderObservationSpec is the spec of a ProviderObservation document.
type ProviderObservationSpec struct {
	// Provider is aws, azure or oci.
	Provider string `json:"provider"`
	// ProviderRef names the CloudProviderProfile the observation was made with.
	ProviderRef string `json:"providerRef"`
	// NIC is the provider's identifier of the NIC (as RemoteAddressClaim capture.nicRef).
	NIC string `json:"nic"`
	// PrivateIPs are the NIC's secondary private IP addresses.
	PrivateIPs []string `json:"privateIPs,omitempty"`
	// ObservedAt is when the host read the NIC (RFC 3339).
	ObservedAt string `json:"observedAt,omitempty"`
}
