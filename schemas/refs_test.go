package schemas

import (
	"strings"
	"testing"
)

// base is a consistent set of resources the reference cases add to.
const base = `apiVersion: federation.routerd.net/v1alpha1
kind: EventGroup
metadata: {name: sam}
spec: {nodeName: router-a, auth: {secretFile: /s}}
---
apiVersion: plugin.routerd.net/v1alpha1
kind: Plugin
metadata: {name: planner}
spec: {module: planner.wasm, hooks: [plan]}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: OverlayPeer
metadata: {name: dc}
spec: {role: onprem, underlay: {type: route}, remote: {address: 10.255.0.2}}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: AddressMobilityDomain
metadata: {name: lab}
spec: {prefix: 10.88.0.0/16}
---
apiVersion: hybrid.routerd.net/v1alpha1
kind: CloudProviderProfile
metadata: {name: azure-main}
spec: {provider: azure, subscriptionID: "0000", resourceGroup: rg}
---
`

func TestReferences(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string // "" means valid
	}{
		{name: "base is valid", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: FederationSLO\nmetadata: {name: s}\nspec: {groupRef: sam}\n"},
		{name: "slo group", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: FederationSLO\nmetadata: {name: s}\nspec: {groupRef: other}\n", wantErr: `FederationSLO/s: spec.groupRef: no EventGroup named "other"; known: sam`},
		{name: "route peer", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: HybridRoute\nmetadata: {name: r}\nspec: {destinationCIDRs: [10.0.0.0/8], peerRef: dcx}\n", wantErr: `HybridRoute/r: spec.peerRef: no OverlayPeer named "dcx"; known: dc`},
		{name: "domain peer", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: AddressMobilityDomain\nmetadata: {name: lab2}\nspec: {prefix: 10.89.0.0/16, peerRef: nope}\n", wantErr: `AddressMobilityDomain/lab2: spec.peerRef: no OverlayPeer named "nope"`},
		{name: "claim domain", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: RemoteAddressClaim\nmetadata: {name: c}\nspec: {domainRef: lab9, address: 10.88.0.5}\n", wantErr: `spec.domainRef: no AddressMobilityDomain named "lab9"; known: lab`},
		{name: "claim delivery peer", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: RemoteAddressClaim\nmetadata: {name: c}\nspec: {domainRef: lab, address: 10.88.0.5, delivery: {peerRef: onprem-main}}\n", wantErr: `spec.delivery.peerRef: no OverlayPeer named "onprem-main"`},
		{name: "claim provider", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: RemoteAddressClaim\nmetadata: {name: c}\nspec: {domainRef: lab, address: 10.88.0.5, capture: {type: provider-secondary-ip, providerRef: example-provider}}\n", wantErr: `spec.capture.providerRef: no CloudProviderProfile named "example-provider"; known: azure-main`},
		{name: "claim inside domain", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: RemoteAddressClaim\nmetadata: {name: c}\nspec: {domainRef: lab, address: 10.88.0.0/24, delivery: {peerRef: dc}}\n"},
		{name: "claim prefix wider than domain", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: RemoteAddressClaim\nmetadata: {name: c}\nspec: {domainRef: lab, address: 10.88.0.0/8}\n", wantErr: "is outside the prefix 10.88.0.0/16"},
		{name: "mss peers", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: MSSClamp\nmetadata: {name: m}\nspec: {peerRefs: [dc, gone]}\n", wantErr: `MSSClamp/m: spec.peerRefs[1]: no OverlayPeer named "gone"`},
		{name: "policy profile", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: ProviderActionPolicy\nmetadata: {name: p}\nspec: {allowedProviderRefs: [aws-main]}\n", wantErr: `spec.allowedProviderRefs[0]: no CloudProviderProfile named "aws-main"`},
		{name: "policy provider mismatch", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: ProviderActionPolicy\nmetadata: {name: p}\nspec: {allowedProviders: [aws], allowedProviderRefs: [azure-main]}\n", wantErr: "profile azure-main is for provider azure, which allowedProviders does not list"},
		{name: "plugin profile", doc: "apiVersion: plugin.routerd.net/v1alpha1\nkind: Plugin\nmetadata: {name: x}\nspec: {module: x.wasm, grants: {providerRequest: {hosts: [management.azure.com], profileRefs: [aws-main]}}}\n", wantErr: `spec.grants.providerRequest.profileRefs[0]: no CloudProviderProfile named "aws-main"`},
		{name: "subscription hook", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventSubscription\nmetadata: {name: s}\nspec: {groupRef: sam, match: {types: [a.b]}, trigger: {pluginRef: planner}}\n", wantErr: "plugin planner does not enable the on_events hook (hooks: plan)"},
		{name: "two peers one node", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b1}\nspec: {groupRef: sam, nodeName: router-b}\n---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: b2}\nspec: {groupRef: sam, nodeName: router-b}\n", wantErr: `EventPeer/b2: spec.nodeName: node "router-b" is already the peer b1 of group sam`},
		{name: "peersFrom", doc: "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: g2}\nspec: {nodeName: a, auth: {secretFile: /s}, peersFrom: [{resource: EventPeer/x}, {resource: EventPeer/y, optional: true}]}\n", wantErr: `EventGroup/g2: spec.peersFrom[0].resource: no EventPeer named "x"`},
		{name: "override source", doc: "apiVersion: config.routerd.net/v1alpha1\nkind: DynamicOverridePolicy\nmetadata: {name: o}\nspec: {allow: [{source: EventSubscription/missing, targets: [{kind: RemoteAddressClaim}]}, {source: EventSubscription/*, targets: [{kind: HybridRoute}]}, {source: Operator/alice, targets: [{kind: HybridRoute}]}]}\n", wantErr: `spec.allow[0].source: no EventSubscription named "missing"`},
		{name: "same name different kinds", doc: "apiVersion: hybrid.routerd.net/v1alpha1\nkind: MSSClamp\nmetadata: {name: sam}\nspec: {interfaces: [eth0]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("t.yaml", []byte(base+tt.doc))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant a problem containing %q", err, tt.wantErr)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Fatalf("want exactly one problem, got %d:\n%v", n, err)
			}
		})
	}
}
