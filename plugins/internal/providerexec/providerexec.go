// Package providerexec is the execute hook of the bundled provider plugins: it turns one
// approved ActionPlan (from plugins/internal/providerplan) into the provider's API
// requests, sends them through the host function provider_request — the host checks them
// against the plugin's grant and the approved plan, adds credentials and signs them; the
// plugin never holds a credential — and reports the outcome as an ActionResult.
//
// Executors are idempotent where the provider lets them be: before changing a NIC they
// read it (Azure, OCI) and report "skipped" when it is already as the plan wants; EC2's
// Query API has no read-free idempotency, so the host's idempotency key store is what
// keeps a repeated AWS execution from a second change.
package providerexec

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"routerd.net/routerd/abi"
)

// Do sends one provider request through the host: guest.ProviderRequest in a plugin, a
// fake in tests.
type Do func(abi.ProviderRequest) (*abi.ProviderResponse, error)

// Executor runs one approved plan with do and reports its outcome.
type Executor func(p *abi.ActionPlan, do Do) abi.ActionResult

// Attribute keys of an ActionResult.
const (
	// AttrRequestID is the provider's request id of the changing request.
	AttrRequestID = "requestId"
	// AttrHTTPStatus is the HTTP status of the last provider response.
	AttrHTTPStatus = "httpStatus"
	// AttrEffect says what changed (or why nothing had to).
	AttrEffect = "effect"
	// AttrErrorCode is the provider's (or the host's) error code of a failure.
	AttrErrorCode = "errorCode"
	// AttrRetryable is "true" when the failure is worth retrying (throttling, 5xx, a
	// timeout); the host makes the final call.
	AttrRetryable = "retryable"
)

// Execute is the execute hook body: it runs req.Spec.ActionPlan with ex.
func Execute(req *abi.Request, ex Executor, do Do) (*abi.Result, error) {
	p := req.Spec.ActionPlan
	if p == nil {
		return nil, abi.NewError(abi.ErrCodeInvalidArgument, "execute: the request has no spec.actionPlan")
	}
	r := ex(p, do)
	r.Name, r.IdempotencyKey = p.Name, p.IdempotencyKey
	return &abi.Result{Status: abi.ResultStatus{ObservedAt: req.Spec.Now, ActionResults: []abi.ActionResult{r}}}, nil
}

// target reads the plan's NIC and address and whether its action is add (adds the address)
// or remove; bad is the failed result when a parameter is missing or the action is neither.
func target(p *abi.ActionPlan, provider, add, remove string) (nic, address string, adding bool, bad *abi.ActionResult) {
	nic, address = p.Parameters[abi.ParamNIC], p.Parameters[abi.ParamAddress]
	var r abi.ActionResult
	switch {
	case nic == "" || address == "":
		r = failed("plan "+p.Name+" lacks parameters "+abi.ParamNIC+" and "+abi.ParamAddress, "invalid_plan", false)
	case p.Action != add && p.Action != remove:
		r = failed("action "+strconv.Quote(p.Action)+" is not a "+provider+" action of this plugin", "unsupported_action", false)
	default:
		return nic, address, p.Action == add, nil
	}
	return "", "", false, &r
}

func failed(msg, code string, retryable bool) abi.ActionResult {
	r := abi.ActionResult{Outcome: abi.ActionFailed, Message: msg, Attributes: map[string]string{AttrErrorCode: code}}
	if retryable {
		r.Attributes[AttrRetryable] = "true"
	}
	return r
}

// send calls do and turns a host-side failure (denied, timeout, unreachable) into a failed
// result; resp is nil then.
func send(do Do, req abi.ProviderRequest) (*abi.ProviderResponse, *abi.ActionResult) {
	resp, err := do(req)
	if err == nil && resp != nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		code, retryable := "host_error", false
		var e *abi.Error
		if errors.As(err, &e) {
			code = string(e.Code)
			retryable = e.Code == abi.ErrCodeUnavailable || e.Code == abi.ErrCodeLimitExceeded
		}
		r := failed(req.Method+" "+req.Path+": "+err.Error(), code, retryable)
		return nil, &r
	}
	return resp, nil
}

// providerFailure is the failed result for a provider's error response.
func providerFailure(resp *abi.ProviderResponse, code, msg string) abi.ActionResult {
	if code == "" {
		code = "http_" + strconv.Itoa(resp.StatusCode)
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	retryable := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
		strings.Contains(code, "Throttl") || code == "RequestLimitExceeded" || code == "TooManyRequests"
	r := failed("provider answered "+strconv.Itoa(resp.StatusCode)+" "+code+": "+msg, code, retryable)
	r.Attributes[AttrHTTPStatus] = strconv.Itoa(resp.StatusCode)
	return r
}

// done is the result of a successful or skipped execution.
func done(outcome string, resp *abi.ProviderResponse, requestID, effect string) abi.ActionResult {
	r := abi.ActionResult{Outcome: outcome, Message: effect, Attributes: map[string]string{AttrEffect: effect}}
	if resp != nil {
		r.Attributes[AttrHTTPStatus] = strconv.Itoa(resp.StatusCode)
	}
	if requestID != "" {
		r.Attributes[AttrRequestID] = requestID
	}
	return r
}

// jsonFailure is providerFailure with the code and message read from a JSON error body.
func jsonFailure(resp *abi.ProviderResponse, codePath, msgPath []string) abi.ActionResult {
	code, msg := "", ""
	if v, err := fastjson.ParseBytes(resp.Body); err == nil {
		code, msg = string(v.GetStringBytes(codePath...)), string(v.GetStringBytes(msgPath...))
	}
	return providerFailure(resp, code, msg)
}

// header returns a response header regardless of how the host spelled its name.
func header(resp *abi.ProviderResponse, name string) string {
	if v, ok := resp.Headers[name]; ok {
		return v
	}
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func ok2xx(resp *abi.ProviderResponse) bool { return resp.StatusCode >= 200 && resp.StatusCode < 300 }
