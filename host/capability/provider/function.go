package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// requestIDHeader is the header each provider returns its request id in; the host
// passes the id back under the provider's own name.
var requestIDHeader = map[string]string{
	abi.ProviderAWS:   "x-amzn-RequestId",
	abi.ProviderAzure: "x-ms-request-id",
	abi.ProviderOCI:   "opc-request-id",
}

// Function returns the provider_request host function served by r. A call is allowed
// only when the plugin's grant (grants.providerRequest: profileRefs, hosts, methods,
// pathPrefixes) allows it and it serves the approved plan the host is executing (see
// Binding); a dry run sends only GETs. The answer carries the provider's status, body,
// Content-Type, ETag and request id — never a request header or anything of the
// credential.
func Function(r *Requester) capability.Function {
	return capability.Function{
		Name: abi.FuncProviderRequest,
		Granted: func(g *capability.Grants) bool {
			return len(g.ProviderRequest.Hosts) > 0 && len(g.ProviderRequest.ProfileRefs) > 0
		},
		Handle: func(ctx context.Context, c *capability.Call, req []byte) (any, error) {
			return handle(ctx, r, c, req)
		},
		Describe: func(req []byte) string {
			var pr abi.ProviderRequest
			if json.Unmarshal(req, &pr) != nil {
				return "malformed"
			}
			return "profile=" + pr.ProfileRef + " " + pr.Method + " " + pr.Path
		},
	}
}

func handle(ctx context.Context, r *Requester, c *capability.Call, req []byte) (any, error) {
	var pr abi.ProviderRequest
	if err := json.Unmarshal(req, &pr); err != nil {
		return nil, abi.NewError(abi.ErrCodeInvalidArgument, "provider_request: "+err.Error())
	}
	if pr.URL != "" {
		return nil, abi.NewError(abi.ErrCodeInvalidArgument, "provider_request: give path and query, not url: the host resolves the endpoint from the CloudProviderProfile")
	}
	query, err := url.ParseQuery(pr.Query)
	if err != nil {
		return nil, abi.NewError(abi.ErrCodeInvalidArgument, "provider_request: query: "+err.Error())
	}
	g := c.Grants.ProviderRequest
	grant := Grant{Plugin: c.Plugin, ProfileRefs: g.ProfileRefs, Hosts: g.Hosts, Methods: g.Methods, PathPrefixes: g.PathPrefixes}
	call := Call{ProfileRef: pr.ProfileRef, Method: strings.ToUpper(pr.Method), Path: pr.Path, Query: query, Body: pr.Body, Header: pr.Headers}
	b := BindingFrom(ctx)
	if b == nil {
		return nil, abi.NewError(abi.ErrCodeCapabilityDenied, "provider_request is available only while routerd executes an approved action plan")
	}
	if err := b.Allows(call); err != nil {
		return nil, abi.NewError(abi.ErrCodeCapabilityDenied, "provider_request: "+err.Error())
	}
	if c.DryRun && call.Method != http.MethodGet {
		if _, _, err := r.Check(grant, call); err != nil {
			return nil, toABI(err)
		}
		return nil, abi.NewError(abi.ErrCodeUnsupported, "provider_request: dry run: "+call.Method+" "+call.Path+" was checked but not sent")
	}
	resp, err := r.Request(ctx, grant, call)
	var perr *Error
	if err != nil && (!errors.As(err, &perr) || perr.Status == 0) {
		return nil, toABI(err)
	}
	b.Saw(call, resp)
	out := abi.ProviderResponse{StatusCode: resp.Status, Body: resp.Body, Headers: map[string]string{}}
	if resp.ContentType != "" {
		out.Headers["Content-Type"] = resp.ContentType
	}
	if resp.ETag != "" {
		out.Headers["ETag"] = resp.ETag
	}
	id := resp.RequestID
	if id == "" && perr != nil {
		id = perr.RequestID
	}
	if id != "" {
		out.Headers[requestIDHeader[b.Plan.Provider]] = id
	}
	return out, nil
}

// toABI maps a Requester error to the guest's error codes: a refusal is
// capability_denied, a retryable failure unavailable, anything else invalid_argument.
func toABI(err error) *abi.Error {
	var e *Error
	if !errors.As(err, &e) {
		return abi.NewError(abi.ErrCodeInternal, "provider_request failed")
	}
	switch e.Kind {
	case KindDenied:
		return abi.NewError(abi.ErrCodeCapabilityDenied, e.Reason)
	case KindRetryable:
		return abi.NewError(abi.ErrCodeUnavailable, e.Reason)
	}
	return abi.NewError(abi.ErrCodeInvalidArgument, e.Reason)
}
