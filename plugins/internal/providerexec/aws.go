package providerexec

import (
	"bytes"
	"net/http"
	"net/url"

	"routerd.net/routerd/abi"
)

// ec2APIVersion is the EC2 Query API version the requests name.
const ec2APIVersion = "2016-11-15"

// AWS executes assign-secondary-ip / unassign-secondary-ip with the EC2 Query API
// (AssignPrivateIpAddresses / UnassignPrivateIpAddresses, POST / form-encoded).
func AWS(p *abi.ActionPlan, do Do) abi.ActionResult {
	nic, address, assign, bad := target(p, abi.ProviderAWS, abi.ActionAssignSecondaryIP, abi.ActionUnassignSecondaryIP)
	if bad != nil {
		return *bad
	}
	action, effect := "UnassignPrivateIpAddresses", address+" unassigned from "+nic
	if assign {
		action, effect = "AssignPrivateIpAddresses", address+" assigned to "+nic
	}
	form := url.Values{
		"Action":             {action},
		"Version":            {ec2APIVersion},
		"NetworkInterfaceId": {nic},
		"PrivateIpAddress.1": {address},
	}
	resp, bad := send(do, abi.ProviderRequest{
		ProfileRef: p.ProviderRef, Method: http.MethodPost, Path: "/",
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		Body:    []byte(form.Encode()),
	})
	if bad != nil {
		return *bad
	}
	if !ok2xx(resp) {
		return providerFailure(resp, xmlText(resp.Body, "Code"), xmlText(resp.Body, "Message"))
	}
	return done(abi.ActionSucceeded, resp, xmlText(resp.Body, "requestId"), effect)
}

// xmlText returns the text of the first <name> element of an EC2 response (EC2 answers
// flat, namespace-free elements; a full XML decoder costs a reflection-heavy package in
// the guest for two fields).
func xmlText(body []byte, name string) string {
	open := []byte("<" + name + ">")
	i := bytes.Index(body, open)
	if i < 0 {
		if name == "requestId" {
			return xmlText(body, "RequestID") // error responses spell it so
		}
		return ""
	}
	rest := body[i+len(open):]
	j := bytes.Index(rest, []byte("</"+name+">"))
	if j < 0 {
		return ""
	}
	return string(bytes.TrimSpace(rest[:j]))
}
