package providerexec

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"routerd.net/routerd/abi"
)

// recorder is a Do that answers from a script and records every request.
type recorder struct {
	answers []answer
	got     []abi.ProviderRequest
}

type answer struct {
	status  int
	body    string
	headers map[string]string
	err     error
}

func (r *recorder) do(req abi.ProviderRequest) (*abi.ProviderResponse, error) {
	r.got = append(r.got, req)
	if len(r.answers) == 0 {
		return nil, abi.NewError(abi.ErrCodeInternal, "test: no answer scripted")
	}
	a := r.answers[0]
	r.answers = r.answers[1:]
	if a.err != nil {
		return nil, a.err
	}
	return &abi.ProviderResponse{StatusCode: a.status, Body: []byte(a.body), Headers: a.headers}, nil
}

func plan(action string, params map[string]string) *abi.ActionPlan {
	p := map[string]string{abi.ParamNIC: "nic-1", abi.ParamAddress: "10.88.60.9"}
	for k, v := range params {
		p[k] = v
	}
	return &abi.ActionPlan{Name: "p1", Action: action, ProviderRef: "main", IdempotencyKey: "k1", Parameters: p}
}

const nicJSON = `{"name":"router-nic","etag":"W/\"1\"","properties":{"ipConfigurations":[
	{"name":"ipconfig1","properties":{"privateIPAddress":"10.88.60.4","primary":true,"subnet":{"id":"/subnets/edge"}}},
	{"name":"routerd-10-88-60-7","properties":{"privateIPAddress":"10.88.60.7","primary":false,"subnet":{"id":"/subnets/edge"}}}]}}`

func TestExecutors(t *testing.T) {
	tests := []struct {
		name     string
		ex       Executor
		plan     *abi.ActionPlan
		answers  []answer
		outcome  string
		attrs    map[string]string // expected attributes (subset)
		requests []string          // "METHOD path?query" of each request sent
		check    func(t *testing.T, reqs []abi.ProviderRequest)
	}{
		{name: "aws assign", ex: AWS, plan: plan(abi.ActionAssignSecondaryIP, nil),
			answers: []answer{{status: 200, body: `<AssignPrivateIpAddressesResponse><requestId>req-1</requestId><return>true</return></AssignPrivateIpAddressesResponse>`}},
			outcome: abi.ActionSucceeded, attrs: map[string]string{AttrRequestID: "req-1", AttrHTTPStatus: "200"},
			requests: []string{"POST /"},
			check: func(t *testing.T, reqs []abi.ProviderRequest) {
				form, _ := url.ParseQuery(string(reqs[0].Body))
				if form.Get("Action") != "AssignPrivateIpAddresses" || form.Get("NetworkInterfaceId") != "nic-1" || form.Get("PrivateIpAddress.1") != "10.88.60.9" || form.Get("Version") == "" {
					t.Errorf("form = %v", form)
				}
				if reqs[0].ProfileRef != "main" {
					t.Errorf("profileRef = %q", reqs[0].ProfileRef)
				}
			}},
		{name: "aws unassign", ex: AWS, plan: plan(abi.ActionUnassignSecondaryIP, nil),
			answers: []answer{{status: 200, body: `<UnassignPrivateIpAddressesResponse><requestId>req-2</requestId></UnassignPrivateIpAddressesResponse>`}},
			outcome: abi.ActionSucceeded, attrs: map[string]string{AttrRequestID: "req-2"}, requests: []string{"POST /"},
			check: func(t *testing.T, reqs []abi.ProviderRequest) {
				if !strings.Contains(string(reqs[0].Body), "Action=UnassignPrivateIpAddresses") {
					t.Errorf("body = %s", reqs[0].Body)
				}
			}},
		{name: "aws provider error is final", ex: AWS, plan: plan(abi.ActionAssignSecondaryIP, nil),
			answers: []answer{{status: 400, body: `<Response><Errors><Error><Code>InvalidNetworkInterfaceID.NotFound</Code><Message>no such ENI</Message></Error></Errors><RequestID>req-3</RequestID></Response>`}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "InvalidNetworkInterfaceID.NotFound", AttrHTTPStatus: "400"}, requests: []string{"POST /"}},
		{name: "aws throttling is retryable", ex: AWS, plan: plan(abi.ActionAssignSecondaryIP, nil),
			answers: []answer{{status: 503, body: `<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>`}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "RequestLimitExceeded", AttrRetryable: "true"}, requests: []string{"POST /"}},
		{name: "aws garbage 500 is retryable", ex: AWS, plan: plan(abi.ActionAssignSecondaryIP, nil),
			answers: []answer{{status: 500, body: "\x00\xffnot xml"}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "http_500", AttrRetryable: "true"}, requests: []string{"POST /"}},
		{name: "host refusal is reported with its code", ex: AWS, plan: plan(abi.ActionAssignSecondaryIP, nil),
			answers: []answer{{err: abi.NewError(abi.ErrCodeCapabilityDenied, "path / not granted")}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "capability_denied"}, requests: []string{"POST /"}},
		{name: "host unavailable is retryable", ex: AWS, plan: plan(abi.ActionAssignSecondaryIP, nil),
			answers: []answer{{err: abi.NewError(abi.ErrCodeUnavailable, "timeout")}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrRetryable: "true"}, requests: []string{"POST /"}},
		{name: "unknown action", ex: AWS, plan: plan("reboot", nil),
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "unsupported_action"}, requests: []string{}},
		{name: "plan without parameters", ex: OCI, plan: &abi.ActionPlan{Name: "p", Action: abi.ActionCreatePrivateIP},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "invalid_plan"}, requests: []string{}},

		{name: "azure assign adds a configuration in the primary's subnet", ex: Azure,
			plan:    plan(abi.ActionAssignSecondaryIP, map[string]string{"subscriptionID": "s", "resourceGroup": "rg", "ipConfigurationName": "routerd-10-88-60-9"}),
			answers: []answer{{status: 200, body: nicJSON}, {status: 200, body: `{}`, headers: map[string]string{"X-Ms-Request-Id": "arm-1"}}},
			outcome: abi.ActionSucceeded, attrs: map[string]string{AttrRequestID: "arm-1"},
			requests: []string{"GET /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1?api-version=2023-09-01",
				"PUT /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1?api-version=2023-09-01"},
			check: func(t *testing.T, reqs []abi.ProviderRequest) {
				var nic struct {
					Properties struct {
						IPConfigurations []struct {
							Name       string
							Properties struct {
								PrivateIPAddress string
								Subnet           struct{ ID string }
							}
						}
					}
				}
				if err := json.Unmarshal(reqs[1].Body, &nic); err != nil {
					t.Fatal(err)
				}
				cfgs := nic.Properties.IPConfigurations
				if len(cfgs) != 3 || cfgs[2].Name != "routerd-10-88-60-9" || cfgs[2].Properties.PrivateIPAddress != "10.88.60.9" || cfgs[2].Properties.Subnet.ID != "/subnets/edge" {
					t.Errorf("PUT body configurations = %+v", cfgs)
				}
				if reqs[1].Headers["If-Match"] != `W/"1"` {
					t.Errorf("If-Match = %q", reqs[1].Headers["If-Match"])
				}
			}},
		{name: "azure assign of a present address is skipped", ex: Azure,
			plan:    plan(abi.ActionAssignSecondaryIP, map[string]string{abi.ParamAddress: "10.88.60.7", abi.ParamNIC: "/subscriptions/s/x/nic"}),
			answers: []answer{{status: 200, body: nicJSON}},
			outcome: abi.ActionSkipped, requests: []string{"GET /subscriptions/s/x/nic?api-version=2023-09-01"}},
		{name: "azure unassign removes the configuration", ex: Azure,
			plan:     plan(abi.ActionUnassignSecondaryIP, map[string]string{abi.ParamAddress: "10.88.60.7", abi.ParamNIC: "/subscriptions/s/x/nic"}),
			answers:  []answer{{status: 200, body: nicJSON}, {status: 200, body: `{}`}},
			outcome:  abi.ActionSucceeded,
			requests: []string{"GET /subscriptions/s/x/nic?api-version=2023-09-01", "PUT /subscriptions/s/x/nic?api-version=2023-09-01"},
			check: func(t *testing.T, reqs []abi.ProviderRequest) {
				if strings.Contains(string(reqs[1].Body), "10.88.60.7") || !strings.Contains(string(reqs[1].Body), "10.88.60.4") {
					t.Errorf("PUT body = %s", reqs[1].Body)
				}
			}},
		{name: "azure never removes the primary", ex: Azure,
			plan:    plan(abi.ActionUnassignSecondaryIP, map[string]string{abi.ParamAddress: "10.88.60.4", abi.ParamNIC: "/subscriptions/s/x/nic"}),
			answers: []answer{{status: 200, body: nicJSON}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "primary_ip"}, requests: []string{"GET /subscriptions/s/x/nic?api-version=2023-09-01"}},
		{name: "azure error body is read", ex: Azure,
			plan:    plan(abi.ActionAssignSecondaryIP, map[string]string{abi.ParamNIC: "/subscriptions/s/x/nic"}),
			answers: []answer{{status: 404, body: `{"error":{"code":"ResourceNotFound","message":"nope"}}`}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "ResourceNotFound"}, requests: []string{"GET /subscriptions/s/x/nic?api-version=2023-09-01"}},
		{name: "azure garbage NIC", ex: Azure,
			plan:    plan(abi.ActionAssignSecondaryIP, map[string]string{abi.ParamNIC: "/subscriptions/s/x/nic"}),
			answers: []answer{{status: 200, body: `[1,2`}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "bad_response"}, requests: []string{"GET /subscriptions/s/x/nic?api-version=2023-09-01"}},

		{name: "oci create", ex: OCI, plan: plan(abi.ActionCreatePrivateIP, map[string]string{"displayName": "routerd-10-88-60-9"}),
			answers: []answer{{status: 200, body: `[]`}, {status: 200, body: `{"id":"ocid1.privateip.oc1..new","ipAddress":"10.88.60.9"}`, headers: map[string]string{"opc-request-id": "oci-1"}}},
			outcome: abi.ActionSucceeded, attrs: map[string]string{AttrRequestID: "oci-1", "privateIpId": "ocid1.privateip.oc1..new"},
			requests: []string{"GET /20160918/privateIps?ipAddress=10.88.60.9&vnicId=nic-1", "POST /20160918/privateIps"},
			check: func(t *testing.T, reqs []abi.ProviderRequest) {
				if reqs[1].Headers["opc-retry-token"] != "k1" {
					t.Errorf("opc-retry-token = %q, want the idempotency key", reqs[1].Headers["opc-retry-token"])
				}
				var body map[string]string
				if err := json.Unmarshal(reqs[1].Body, &body); err != nil || body["vnicId"] != "nic-1" || body["ipAddress"] != "10.88.60.9" || body["displayName"] != "routerd-10-88-60-9" {
					t.Errorf("POST body = %s (%v)", reqs[1].Body, err)
				}
			}},
		{name: "oci create of an existing address is skipped", ex: OCI, plan: plan(abi.ActionCreatePrivateIP, nil),
			answers: []answer{{status: 200, body: `[{"id":"ocid1.privateip.oc1..old","ipAddress":"10.88.60.9"}]`}},
			outcome: abi.ActionSkipped, requests: []string{"GET /20160918/privateIps?ipAddress=10.88.60.9&vnicId=nic-1"}},
		{name: "oci delete", ex: OCI, plan: plan(abi.ActionDeletePrivateIP, nil),
			answers:  []answer{{status: 200, body: `[{"id":"ocid1.privateip.oc1..old","ipAddress":"10.88.60.9"}]`}, {status: 204}},
			outcome:  abi.ActionSucceeded,
			requests: []string{"GET /20160918/privateIps?ipAddress=10.88.60.9&vnicId=nic-1", "DELETE /20160918/privateIps/ocid1.privateip.oc1..old"}},
		{name: "oci delete of an absent address is skipped", ex: OCI, plan: plan(abi.ActionDeletePrivateIP, nil),
			answers: []answer{{status: 200, body: `[]`}},
			outcome: abi.ActionSkipped, requests: []string{"GET /20160918/privateIps?ipAddress=10.88.60.9&vnicId=nic-1"}},
		{name: "oci error body is read", ex: OCI, plan: plan(abi.ActionCreatePrivateIP, nil),
			answers: []answer{{status: 200, body: `[]`}, {status: 429, body: `{"code":"TooManyRequests","message":"slow down"}`}},
			outcome: abi.ActionFailed, attrs: map[string]string{AttrErrorCode: "TooManyRequests", AttrRetryable: "true"},
			requests: []string{"GET /20160918/privateIps?ipAddress=10.88.60.9&vnicId=nic-1", "POST /20160918/privateIps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answers: tt.answers}
			res, err := Execute(&abi.Request{Spec: abi.RequestSpec{ActionPlan: tt.plan}}, tt.ex, rec.do)
			if err != nil {
				t.Fatal(err)
			}
			r := res.Status.ActionResults[0]
			if r.Outcome != tt.outcome || r.Name != tt.plan.Name || r.IdempotencyKey != tt.plan.IdempotencyKey {
				t.Errorf("result = %+v, want outcome %s", r, tt.outcome)
			}
			for k, v := range tt.attrs {
				if r.Attributes[k] != v {
					t.Errorf("attribute %s = %q, want %q (all: %v)", k, r.Attributes[k], v, r.Attributes)
				}
			}
			if _, ok := tt.attrs[AttrRetryable]; !ok && r.Attributes[AttrRetryable] != "" {
				t.Errorf("unexpectedly retryable: %v", r.Attributes)
			}
			sent := []string{}
			for _, q := range rec.got {
				line := q.Method + " " + q.Path
				if q.Query != "" {
					line += "?" + q.Query
				}
				sent = append(sent, line)
			}
			if strings.Join(sent, "\n") != strings.Join(tt.requests, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(sent, "\n"), strings.Join(tt.requests, "\n"))
			}
			if len(rec.answers) != 0 {
				t.Errorf("%d scripted answers unused", len(rec.answers))
			}
			if tt.check != nil && len(rec.got) == len(tt.requests) {
				tt.check(t, rec.got)
			}
		})
	}
}

func TestExecuteWithoutPlan(t *testing.T) {
	if _, err := Execute(&abi.Request{}, AWS, nil); err == nil || !strings.Contains(err.Error(), "spec.actionPlan") {
		t.Fatalf("err = %v", err)
	}
}
