package providerexec

import (
	"net/http"
	"strings"

	"github.com/valyala/fastjson"

	"routerd.net/routerd/abi"
)

// armAPIVersion is the Microsoft.Network API version of the networkInterfaces requests.
const armAPIVersion = "2023-09-01"

// Azure executes assign-secondary-ip / unassign-secondary-ip on an ARM network interface:
// GET the NIC, add or remove the IP configuration that holds the address, PUT it back
// with If-Match on the NIC's etag (a concurrent change makes the PUT fail instead of
// being overwritten). An address already as wanted is "skipped".
func Azure(p *abi.ActionPlan, do Do) abi.ActionResult {
	nic, address, assign, bad := target(p, abi.ProviderAzure, abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP)
	if bad != nil {
		return *bad
	}
	path := nic
	if !strings.HasPrefix(nic, "/subscriptions/") {
		path = "/subscriptions/" + p.Parameters["subscriptionID"] + "/resourceGroups/" + p.Parameters["resourceGroup"] +
			"/providers/Microsoft.Network/networkInterfaces/" + nic
	}
	get, bad := send(do, abi.ProviderRequest{ProfileRef: p.ProviderRef, Method: http.MethodGet, Path: path, Query: "api-version=" + armAPIVersion})
	if bad != nil {
		return *bad
	}
	if !ok2xx(get) {
		return armFailure(get)
	}
	var parser fastjson.Parser
	doc, err := parser.ParseBytes(get.Body)
	if err != nil || doc.Get("properties", "ipConfigurations") == nil {
		return failed("GET "+path+": the response is not a network interface", "bad_response", false)
	}
	configs := doc.GetArray("properties", "ipConfigurations")
	var arena fastjson.Arena
	kept := arena.NewArray()
	n, found, subnet := 0, false, ""
	for _, c := range configs {
		if string(c.GetStringBytes("properties", "privateIPAddress")) == address {
			found = true
			if !assign {
				if c.GetBool("properties", "primary") {
					return failed(address+" is the primary IP configuration of "+nic+"; routerd never removes it", "primary_ip", false)
				}
				continue
			}
		}
		if subnet == "" || c.GetBool("properties", "primary") {
			subnet = string(c.GetStringBytes("properties", "subnet", "id"))
		}
		kept.SetArrayItem(n, c)
		n++
	}
	switch {
	case assign && found:
		return done(abi.ActionSkipped, get, header(get, "x-ms-request-id"), address+" is already on "+nic)
	case !assign && !found:
		return done(abi.ActionSkipped, get, header(get, "x-ms-request-id"), address+" is already gone from "+nic)
	case assign:
		if subnet == "" {
			return failed(nic+" has no IP configuration with a subnet to place "+address+" in", "bad_response", false)
		}
		props := arena.NewObject()
		props.Set("privateIPAddress", arena.NewString(address))
		props.Set("privateIPAllocationMethod", arena.NewString("Static"))
		props.Set("primary", arena.NewFalse())
		sub := arena.NewObject()
		sub.Set("id", arena.NewString(subnet))
		props.Set("subnet", sub)
		cfg := arena.NewObject()
		cfg.Set("name", arena.NewString(orDefault(p.Parameters["ipConfigurationName"], "routerd-"+address)))
		cfg.Set("properties", props)
		kept.SetArrayItem(n, cfg)
	}
	doc.Get("properties").Set("ipConfigurations", kept)
	headers := map[string]string{"Content-Type": "application/json"}
	if etag := string(doc.GetStringBytes("etag")); etag != "" {
		headers["If-Match"] = etag
	}
	put, bad := send(do, abi.ProviderRequest{ProfileRef: p.ProviderRef, Method: http.MethodPut, Path: path,
		Query: "api-version=" + armAPIVersion, Headers: headers, Body: doc.MarshalTo(nil)})
	if bad != nil {
		return *bad
	}
	if !ok2xx(put) {
		return armFailure(put)
	}
	effect := address + " assigned to " + nic
	if !assign {
		effect = address + " unassigned from " + nic
	}
	return done(abi.ActionSucceeded, put, header(put, "x-ms-request-id"), effect)
}

// armFailure reads ARM's {"error": {"code", "message"}}.
func armFailure(resp *abi.ProviderResponse) abi.ActionResult {
	return jsonFailure(resp, []string{"error", "code"}, []string{"error", "message"})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
