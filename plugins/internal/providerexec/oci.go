package providerexec

import (
	"net/http"
	"net/url"

	"github.com/valyala/fastjson"

	"routerd.net/routerd/abi"
)

// ociPrivateIPs is the Core Services path of privateIp objects.
const ociPrivateIPs = "/20160918/privateIps"

// OCI executes create-private-ip / delete-private-ip: it lists the VNIC's privateIps with
// the address (GET ?vnicId=&ipAddress=), then creates one (POST, with opc-retry-token set
// to the plan's idempotency key, so a retried create makes one object) or deletes the one
// found (DELETE /privateIps/{id}). An address already as wanted is "skipped".
func OCI(p *abi.ActionPlan, do Do) abi.ActionResult {
	vnic, address, create, bad := target(p, abi.ProviderOCI, abi.ActionCreatePrivateIP, abi.ActionDeletePrivateIP)
	if bad != nil {
		return *bad
	}
	q := url.Values{"vnicId": {vnic}, "ipAddress": {address}}
	list, bad := send(do, abi.ProviderRequest{ProfileRef: p.ProviderRef, Method: http.MethodGet, Path: ociPrivateIPs, Query: q.Encode()})
	if bad != nil {
		return *bad
	}
	if !ok2xx(list) {
		return ociFailure(list)
	}
	v, err := fastjson.ParseBytes(list.Body)
	if err != nil || v.Type() != fastjson.TypeArray {
		return failed("GET "+ociPrivateIPs+": the response is not a list of privateIps", "bad_response", false)
	}
	existing := ""
	for _, ip := range v.GetArray() {
		if string(ip.GetStringBytes("ipAddress")) == address {
			existing = string(ip.GetStringBytes("id"))
		}
	}
	switch {
	case create && existing != "":
		return done(abi.ActionSkipped, list, header(list, "opc-request-id"), address+" already exists on "+vnic+" as "+existing)
	case !create && existing == "":
		return done(abi.ActionSkipped, list, header(list, "opc-request-id"), address+" is already gone from "+vnic)
	}
	req := abi.ProviderRequest{ProfileRef: p.ProviderRef, Method: http.MethodDelete, Path: ociPrivateIPs + "/" + url.PathEscape(existing)}
	effect := address + " (" + existing + ") deleted from " + vnic
	if create {
		var a fastjson.Arena
		body := a.NewObject()
		body.Set("vnicId", a.NewString(vnic))
		body.Set("ipAddress", a.NewString(address))
		if name := p.Parameters["displayName"]; name != "" {
			body.Set("displayName", a.NewString(name))
		}
		req = abi.ProviderRequest{ProfileRef: p.ProviderRef, Method: http.MethodPost, Path: ociPrivateIPs,
			Headers: map[string]string{"Content-Type": "application/json", "opc-retry-token": p.IdempotencyKey},
			Body:    body.MarshalTo(nil)}
		effect = address + " created on " + vnic
	}
	resp, bad := send(do, req)
	if bad != nil {
		return *bad
	}
	if !ok2xx(resp) {
		return ociFailure(resp)
	}
	r := done(abi.ActionSucceeded, resp, header(resp, "opc-request-id"), effect)
	if create {
		if created, err := fastjson.ParseBytes(resp.Body); err == nil {
			r.Attributes["privateIpId"] = string(created.GetStringBytes("id"))
		}
	}
	return r
}

// ociFailure reads OCI's {"code", "message"}.
func ociFailure(resp *abi.ProviderResponse) abi.ActionResult {
	return jsonFailure(resp, []string{"code"}, []string{"message"})
}
