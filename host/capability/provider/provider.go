// Package provider is the host side of provider_request: a plugin names a
// CloudProviderProfile and asks for one HTTP call (method, path, query, body); the host
// checks the call against the plugin's grant (profile, host, method, path prefix),
// builds the URL from the profile's endpoint, signs it with the profile's credential
// (package sign), sends it with a timeout and a bounded answer, and maps the outcome to
// retryable or final. The plugin never chooses the host and never sees a credential:
// neither the request's headers nor anything derived from the credential is returned.
//
// Not yet wired: the Wasm host function, the ProviderActionPolicy gate, approvals and
// the executor plugins that call Request (see docs/providers.md).
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"routerd.net/routerd/host/capability/provider/credential"
	"routerd.net/routerd/host/capability/provider/sign"
)

// Defaults of Requester.
const (
	// DefaultTimeout bounds one provider call (signing, sending and reading).
	DefaultTimeout = 15 * time.Second
	// DefaultMaxResponse bounds a provider's answer.
	DefaultMaxResponse = 1 << 20
	// MaxRequestBody bounds what a plugin may send.
	MaxRequestBody = 256 << 10
)

// Profile is a CloudProviderProfile as the host uses it.
type Profile struct {
	// Name is the profile's metadata.name.
	Name string
	// Provider is aws, azure or oci.
	Provider string
	// Region is the provider region (aws, oci).
	Region string
	// Endpoint overrides the provider's API base URL (https; http only to a loopback
	// address, for test doubles).
	Endpoint string
	// Signer adds the credential (required).
	Signer sign.Signer
	// Invalidate, when set, is called after the provider rejected the credential (401,
	// or an AWS auth error code), so that the next call fetches a fresh one (for example
	// credential.Cached.Invalidate after a rotation).
	Invalidate func()
}

// BaseURL returns the profile's API base URL: Endpoint, or the provider's public
// endpoint for Region.
//
// # Errors
//
// An endpoint that is not an absolute https URL (or http to loopback), or a missing
// region.
func (p Profile) BaseURL() (*url.URL, error) {
	raw := p.Endpoint
	if raw == "" {
		switch p.Provider {
		case credential.ProviderAWS:
			if p.Region == "" {
				return nil, fmt.Errorf("CloudProviderProfile %s: spec.region is required for aws", p.Name)
			}
			raw = "https://ec2." + p.Region + ".amazonaws.com"
		case credential.ProviderAzure:
			raw = "https://management.azure.com"
		case credential.ProviderOCI:
			if p.Region == "" {
				return nil, fmt.Errorf("CloudProviderProfile %s: spec.region is required for oci", p.Name)
			}
			raw = "https://iaas." + p.Region + ".oraclecloud.com"
		default:
			return nil, fmt.Errorf("CloudProviderProfile %s: provider %q: want aws, azure or oci", p.Name, p.Provider)
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("CloudProviderProfile %s: spec.endpoint %q: want scheme://host[:port] without path, query or user", p.Name, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("CloudProviderProfile %s: spec.endpoint %q: http is allowed only to a loopback address (test doubles); use https", p.Name, raw)
		}
	default:
		return nil, fmt.Errorf("CloudProviderProfile %s: spec.endpoint %q: want https", p.Name, raw)
	}
	u.Path = ""
	return u, nil
}

// Grant is what one plugin may ask for. Everything is denied unless listed.
type Grant struct {
	// Plugin names the plugin, for messages.
	Plugin string
	// ProfileRefs are the CloudProviderProfiles it may use.
	ProfileRefs []string
	// Hosts are the API hosts (host or host:port, as in the URL) it may reach.
	Hosts []string
	// Methods are the HTTP methods it may use (GET, PUT, POST, DELETE).
	Methods []string
	// PathPrefixes are the URL paths it may reach; a prefix matches whole segments
	// ("/20160918/privateIps" matches "/20160918/privateIps/ocid..." but not
	// "/20160918/privateIpsX").
	PathPrefixes []string
}

// Call is one request a plugin asks for.
type Call struct {
	// ProfileRef names the CloudProviderProfile.
	ProfileRef string `json:"profileRef"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the URL path, starting with "/", already clean.
	Path string `json:"path"`
	// Query is the URL query.
	Query url.Values `json:"query,omitempty"`
	// Body is the request body (form-encoded for the EC2 Query API, JSON otherwise).
	Body []byte `json:"body,omitempty"`
	// Header holds allowed extra headers only (AllowedHeaders).
	Header map[string]string `json:"header,omitempty"`
}

// AllowedHeaders are the headers a plugin may set (canonical form); everything else,
// Authorization and Host in particular, is the host's.
var AllowedHeaders = []string{"Content-Type", "If-Match", "If-None-Match", "Opc-Retry-Token", "X-Ms-Client-Request-Id"}

// Response is a provider's answer as the plugin sees it: no request header, nothing of
// the credential.
type Response struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// RequestID is the provider's request id (EC2 requestId, x-ms-request-id,
	// opc-request-id).
	RequestID string `json:"requestId,omitempty"`
	// ContentType is the answer's Content-Type.
	ContentType string `json:"contentType,omitempty"`
	// ETag is the answer's ETag, for conditional updates.
	ETag string `json:"etag,omitempty"`
	// Body is the answer (at most the Requester's MaxResponse bytes).
	Body []byte `json:"body,omitempty"`
}

// Kinds of Error.
const (
	// KindDenied: the grant does not allow the call; nothing was sent.
	KindDenied = "denied"
	// KindRetryable: a timeout, a transport error, a 5xx or throttling; try again later.
	KindRetryable = "retryable"
	// KindFinal: the provider refused (4xx), answered garbage, or the credential could
	// not be used; trying again will not help.
	KindFinal = "final"
)

// Error is a failed call. It never contains a secret.
type Error struct {
	// Kind is KindDenied, KindRetryable or KindFinal.
	Kind string `json:"kind"`
	// Reason says what went wrong and, where known, the fix.
	Reason string `json:"reason"`
	// Status is the HTTP status (0 when nothing was answered).
	Status int `json:"status,omitempty"`
	// Code is the provider's error code (InvalidNetworkInterfaceID.NotFound, ...).
	Code string `json:"code,omitempty"`
	// RequestID is the provider's request id, when it answered.
	RequestID string `json:"requestId,omitempty"`
}

func (e *Error) Error() string {
	s := "provider request " + e.Kind + ": " + e.Reason
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

// Retryable reports whether err is an *Error of KindRetryable.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindRetryable
}

// Requester sends provider calls.
type Requester struct {
	// Profiles returns the profile named ref (false when there is none).
	Profiles func(ref string) (Profile, bool)
	// Client sends requests (default: a client without proxy that follows no
	// redirect).
	Client *http.Client
	// Timeout bounds one call (default DefaultTimeout).
	Timeout time.Duration
	// MaxResponse bounds an answer (default DefaultMaxResponse).
	MaxResponse int64
	// Log receives one line per call (method, host, path, status; never a query, a
	// body or a header).
	Log *slog.Logger
}

// noRedirect keeps a provider's redirect from taking a signed request elsewhere.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var defaultClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}, CheckRedirect: noRedirect}

// denied builds a KindDenied error.
func denied(g Grant, format string, args ...any) *Error {
	return &Error{Kind: KindDenied, Reason: fmt.Sprintf("plugin %s: ", g.Plugin) + fmt.Sprintf(format, args...)}
}

// pathAllowed reports whether p is under one of prefixes (whole segments).
func pathAllowed(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if p == pre || (strings.HasPrefix(p, pre) && (strings.HasSuffix(pre, "/") || p[len(pre)] == '/')) {
			return true
		}
	}
	return false
}

// cleanPath reports whether p is absolute and clean (a trailing slash aside) and holds no
// escape, query or fragment, so that a prefix check on it means what it says.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#%\\") {
		return false
	}
	trimmed := p
	if len(p) > 1 {
		trimmed = strings.TrimSuffix(p, "/")
	}
	return path.Clean(p) == trimmed
}

// Check checks c against g and the profile and returns the URL the call would reach.
// Request calls it first; it sends nothing.
//
// # Errors
//
// An *Error of KindDenied naming the rule that refused the call.
func (r *Requester) Check(g Grant, c Call) (Profile, *url.URL, error) {
	if !slices.Contains(g.ProfileRefs, c.ProfileRef) {
		return Profile{}, nil, denied(g, "profile %q is not granted (grants.providerRequest.profileRefs: %s)", c.ProfileRef, strings.Join(g.ProfileRefs, ", "))
	}
	p, ok := r.Profiles(c.ProfileRef)
	if !ok {
		return Profile{}, nil, denied(g, "no CloudProviderProfile named %q", c.ProfileRef)
	}
	base, err := p.BaseURL()
	if err != nil {
		return Profile{}, nil, &Error{Kind: KindDenied, Reason: err.Error()}
	}
	if !slices.Contains(g.Hosts, base.Host) {
		return Profile{}, nil, denied(g, "host %s of profile %s is not granted (grants.providerRequest.hosts: %s)", base.Host, p.Name, strings.Join(g.Hosts, ", "))
	}
	if !slices.Contains(g.Methods, c.Method) {
		return Profile{}, nil, denied(g, "method %q is not granted (grants.providerRequest.methods: %s)", c.Method, strings.Join(g.Methods, ", "))
	}
	if !cleanPath(c.Path) {
		return Profile{}, nil, denied(g, "path %q must be clean and absolute (no .., //, %%, ? or #)", c.Path)
	}
	if !pathAllowed(c.Path, g.PathPrefixes) {
		return Profile{}, nil, denied(g, "path %s is not granted (grants.providerRequest.pathPrefixes: %s)", c.Path, strings.Join(g.PathPrefixes, ", "))
	}
	for k := range c.Header {
		if !slices.Contains(AllowedHeaders, http.CanonicalHeaderKey(k)) {
			return Profile{}, nil, denied(g, "header %q may not be set by a plugin (allowed: %s)", k, strings.Join(AllowedHeaders, ", "))
		}
	}
	if len(c.Body) > MaxRequestBody {
		return Profile{}, nil, denied(g, "body of %d bytes is larger than %d", len(c.Body), MaxRequestBody)
	}
	u := *base
	u.Path = c.Path
	u.RawQuery = c.Query.Encode()
	return p, &u, nil
}

// Request checks c against g, signs it with the profile's credential and sends it.
// A 2xx answer is returned with a nil error; any other answer is returned together with
// an *Error (KindFinal for 4xx and garbage, KindRetryable for 5xx, throttling,
// timeouts and transport errors). A call the grant refuses returns an *Error of
// KindDenied and sends nothing.
func (r *Requester) Request(ctx context.Context, g Grant, c Call) (Response, error) {
	p, u, err := r.Check(g, c)
	if err != nil {
		return Response{}, err
	}
	timeout, maxResp, client := r.Timeout, r.MaxResponse, r.Client
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if maxResp <= 0 {
		maxResp = DefaultMaxResponse
	}
	if client == nil {
		client = defaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, c.Method, u.String(), bytes.NewReader(c.Body))
	if err != nil {
		return Response{}, &Error{Kind: KindFinal, Reason: "build request: " + err.Error()}
	}
	if len(c.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range c.Header {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Content-Type") == "" && len(c.Body) > 0 {
		ct := "application/json"
		if p.Provider == credential.ProviderAWS {
			ct = "application/x-www-form-urlencoded; charset=utf-8"
		}
		req.Header.Set("Content-Type", ct)
	}
	if err := p.Signer.Sign(ctx, req, c.Body); err != nil {
		kind := KindFinal
		if ctx.Err() != nil {
			kind = KindRetryable
		}
		return Response{}, &Error{Kind: kind, Reason: fmt.Sprintf("profile %s: credentials: %v", p.Name, err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		reason := fmt.Sprintf("%s %s%s: %v", c.Method, u.Host, c.Path, errors.Unwrap(err))
		if ctx.Err() != nil {
			reason = fmt.Sprintf("%s %s%s: no answer within %s", c.Method, u.Host, c.Path, timeout)
		}
		r.log(ctx, c, u, 0, start, KindRetryable)
		return Response{}, &Error{Kind: KindRetryable, Reason: reason}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResp+1))
	out := Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), ETag: resp.Header.Get("ETag"), Body: body}
	if err != nil {
		r.log(ctx, c, u, resp.StatusCode, start, KindRetryable)
		out.Body = nil
		return out, &Error{Kind: KindRetryable, Status: resp.StatusCode, Reason: fmt.Sprintf("%s %s%s: reading the answer: %v", c.Method, u.Host, c.Path, errors.Unwrap(err))}
	}
	if int64(len(body)) > maxResp {
		r.log(ctx, c, u, resp.StatusCode, start, KindFinal)
		out.Body = nil
		return out, &Error{Kind: KindFinal, Status: resp.StatusCode, Reason: fmt.Sprintf("answer larger than %d bytes", maxResp)}
	}
	perr := parseAnswer(p.Provider, resp, body)
	out.RequestID = perr.RequestID
	if perr.Kind != "" {
		if p.Invalidate != nil && (resp.StatusCode == http.StatusUnauthorized || slices.Contains(authCodes, perr.Code)) {
			p.Invalidate()
		}
		perr.Reason = fmt.Sprintf("%s %s%s: %s", c.Method, u.Host, c.Path, perr.Reason)
		r.log(ctx, c, u, resp.StatusCode, start, perr.Kind)
		return out, perr
	}
	r.log(ctx, c, u, resp.StatusCode, start, "ok")
	return out, nil
}

func (r *Requester) log(ctx context.Context, c Call, u *url.URL, status int, start time.Time, outcome string) {
	if r.Log == nil {
		return
	}
	r.Log.LogAttrs(ctx, slog.LevelInfo, "provider request", slog.String("profile", c.ProfileRef), slog.String("method", c.Method),
		slog.String("host", u.Host), slog.String("path", c.Path), slog.Int("status", status), slog.String("outcome", outcome),
		slog.Duration("took", time.Since(start)))
}

// authCodes are provider error codes that mean the credential was not accepted.
var authCodes = []string{"AuthFailure", "SignatureDoesNotMatch", "ExpiredToken", "InvalidClientTokenId", "UnrecognizedClientException", "InvalidAuthenticationToken", "NotAuthenticated"}

// throttleCodes are provider error codes that mean "slow down" whatever the status.
var throttleCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequests", "ServiceUnavailable", "Unavailable", "InternalError", "InternalServerError"}

// parseAnswer reads the request id and, for an error status, the provider's error code,
// and classifies the answer. A zero Kind means success.
func parseAnswer(provider string, resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch provider {
	case credential.ProviderAWS:
		var doc struct {
			RequestID  string `xml:"requestId"`
			RequestID2 string `xml:"RequestID"`
			Errors     []struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Errors>Error"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			e.Kind, e.Reason = classify(resp.StatusCode, "answer is not EC2 XML")
			if ok {
				e.Kind = KindFinal
			}
			return e
		}
		e.RequestID = doc.RequestID + doc.RequestID2
		if len(doc.Errors) > 0 {
			e.Code, e.Reason = doc.Errors[0].Code, doc.Errors[0].Message
		}
	case credential.ProviderAzure, credential.ProviderOCI:
		e.RequestID = resp.Header.Get("X-Ms-Request-Id")
		if provider == credential.ProviderOCI {
			e.RequestID = resp.Header.Get("Opc-Request-Id")
		}
		switch {
		case ok && len(body) > 0 && !json.Valid(body):
			e.Kind, e.Reason = KindFinal, fmt.Sprintf("answered %d: answer is not JSON", resp.StatusCode)
			return e
		case !ok && len(body) > 0:
			var doc struct {
				Error *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				e.Kind, e.Reason = classify(resp.StatusCode, "answer is not JSON")
				return e
			}
			if doc.Error != nil {
				e.Code, e.Reason = doc.Error.Code, doc.Error.Message
			} else {
				e.Code, e.Reason = doc.Code, doc.Message
			}
		}
	}
	if ok {
		return &Error{RequestID: e.RequestID}
	}
	kind, reason := classify(resp.StatusCode, e.Reason)
	if slices.Contains(throttleCodes, e.Code) {
		kind = KindRetryable
	}
	e.Kind, e.Reason = kind, reason
	return e
}

// classify maps a status to a kind; reason defaults to the status text.
func classify(status int, reason string) (string, string) {
	if reason == "" {
		reason = fmt.Sprintf("answered %d %s", status, http.StatusText(status))
	} else {
		reason = fmt.Sprintf("answered %d: %s", status, reason)
	}
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return KindRetryable, reason
	default:
		return KindFinal, reason
	}
}
