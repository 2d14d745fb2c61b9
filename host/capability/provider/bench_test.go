package provider_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/host/capability/provider/providertest"
)

// BenchmarkRequest prints the latency of one checked, signed request to each fake
// provider over loopback (credential cached, TLS token endpoint only on Azure's first
// call): BENCH provider_request_<provider>_p50_ms and _p99_ms. It runs its own bounded
// loop of 300 calls per provider.
func BenchmarkRequest(b *testing.B) {
	l := providertest.NewLab(b)
	ctx := context.Background()
	calls := []struct {
		name, grant string
		call        provider.Call
	}{
		{name: "aws", grant: "aws", call: provider.Call{ProfileRef: "aws-lab", Method: "POST", Path: "/", Body: ec2Form("AssignPrivateIpAddresses", "eni-a", "10.0.0.70")}},
		{name: "azure", grant: "azure", call: provider.Call{ProfileRef: "azure-lab", Method: "GET", Path: armNIC + "nic-1", Query: url.Values{"api-version": {providertest.ARMAPIVersion}}}},
		{name: "oci", grant: "oci", call: provider.Call{ProfileRef: "oci-lab", Method: "GET", Path: "/20160918/privateIps", Query: url.Values{"vnicId": {"ocid1.vnic.oc1..v"}}}},
	}
	const n = 300
	for _, c := range calls {
		took := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if _, err := l.Requester.Request(ctx, l.Grants[c.grant], c.call); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Printf("BENCH %s %.3f %s\n", "provider_request_"+c.name+"_p50_ms", ms(took[n/2]), "ms")
		fmt.Printf("BENCH %s %.3f %s\n", "provider_request_"+c.name+"_p99_ms", ms(took[n*99/100]), "ms")
	}
}
