package providertest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// EC2 API facts the fake checks.
const (
	// EC2Version is the Query API version the fake accepts.
	EC2Version = "2016-11-15"
	ec2XMLNS   = "http://ec2.amazonaws.com/doc/2016-11-15/"
	amzDate    = "20060102T150405Z"
)

// EC2Options configure the fake EC2.
type EC2Options struct {
	// Region is the SigV4 region requests must be scoped to (default us-east-1).
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are the one valid key.
	AccessKeyID, SecretAccessKey, SessionToken string
	// NICs are the network interfaces and their secondary private IPs at start.
	NICs map[string][]string
	// Now is the fake's clock for the request-time check (default time.Now).
	Now func() time.Time
}

// EC2 is a fake EC2 Query API.
type EC2 struct {
	base
	// URL is the endpoint, http://127.0.0.1:port.
	URL  string
	opts EC2Options

	mu   sync.Mutex
	nics map[string][]string
}

// NewEC2 starts a fake EC2; it stops when the test ends.
func NewEC2(t testing.TB, opts EC2Options) *EC2 {
	t.Helper()
	f, stop := StartEC2(opts)
	t.Cleanup(stop)
	return f
}

// StartEC2 starts a fake EC2 outside a test (the cloud demo); stop shuts it down.
func StartEC2(opts EC2Options) (f *EC2, stop func()) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f = &EC2{base: newBase("ec2"), opts: opts, nics: map[string][]string{}}
	for nic, ips := range opts.NICs {
		f.nics[nic] = slices.Clone(ips)
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = srv.URL
	return f, func() { f.stop(); srv.Close() }
}

// Addresses returns the secondary private IPs on nic (nil for an unknown NIC).
func (f *EC2) Addresses(nic string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nics[nic])
}

// ec2Error is the EC2 error document.
type ec2Error struct {
	XMLName   xml.Name       `xml:"Response"`
	Errors    []ec2ErrorItem `xml:"Errors>Error"`
	RequestID string         `xml:"RequestID"`
}

type ec2ErrorItem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// writeErr writes an EC2 error.
func (f *EC2) writeErr(w http.ResponseWriter, status int, code, msg string) {
	if code == "" {
		code = map[bool]string{true: "RequestLimitExceeded", false: "InternalError"}[status == http.StatusServiceUnavailable]
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(ec2Error{Errors: []ec2ErrorItem{{Code: code, Message: msg}}, RequestID: f.nextID()})
}

// serve handles one Query API request.
func (f *EC2) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		f.writeErr(w, http.StatusBadRequest, "InvalidRequest", "cannot read body")
		return
	}
	if status, code, msg := f.verify(r, body); status != 0 {
		f.writeErr(w, status, code, msg)
		return
	}
	if fl, ok := f.fault(); ok {
		f.serveFault(w, r, fl, f.writeErr)
		return
	}
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		if form, err = url.ParseQuery(string(body)); err != nil {
			f.writeErr(w, http.StatusBadRequest, "InvalidParameterValue", "body is not form-encoded")
			return
		}
	}
	if v := form.Get("Version"); v != EC2Version {
		f.writeErr(w, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("Version %q is not supported; use %s", v, EC2Version))
		return
	}
	nic := form.Get("NetworkInterfaceId")
	var ips []string
	for i := 1; ; i++ {
		ip := form.Get(fmt.Sprintf("PrivateIpAddress.%d", i))
		if ip == "" {
			break
		}
		ips = append(ips, ip)
	}
	switch action := form.Get("Action"); action {
	case "AssignPrivateIpAddresses":
		f.assign(w, nic, ips, form.Get("AllowReassignment") == "true")
	case "UnassignPrivateIpAddresses":
		f.unassign(w, nic, ips)
	default:
		f.writeErr(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action))
	}
}

func (f *EC2) assign(w http.ResponseWriter, nic string, ips []string, reassign bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nics[nic]; !ok {
		f.writeErr(w, http.StatusBadRequest, "InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", nic))
		return
	}
	if len(ips) == 0 {
		f.writeErr(w, http.StatusBadRequest, "MissingParameter", "PrivateIpAddress.1 is required")
		return
	}
	for _, ip := range ips {
		for other, have := range f.nics {
			if other != nic && slices.Contains(have, ip) && !reassign {
				f.writeErr(w, http.StatusBadRequest, "PrivateIpAddressInUse", fmt.Sprintf("Address %s is in use by %s.", ip, other))
				return
			}
		}
	}
	for _, ip := range ips {
		for other := range f.nics {
			if other != nic {
				f.nics[other] = slices.DeleteFunc(f.nics[other], func(s string) bool { return s == ip })
			}
		}
		if !slices.Contains(f.nics[nic], ip) {
			f.nics[nic] = append(f.nics[nic], ip)
		}
	}
	type item struct {
		IP string `xml:"privateIpAddress"`
	}
	out := struct {
		XMLName   xml.Name `xml:"AssignPrivateIpAddressesResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		NIC       string   `xml:"networkInterfaceId"`
		Assigned  []item   `xml:"assignedPrivateIpAddressesSet>item"`
	}{XMLNS: ec2XMLNS, RequestID: f.nextID(), NIC: nic}
	for _, ip := range ips {
		out.Assigned = append(out.Assigned, item{ip})
	}
	writeXML(w, out)
}

func (f *EC2) unassign(w http.ResponseWriter, nic string, ips []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	have, ok := f.nics[nic]
	if !ok {
		f.writeErr(w, http.StatusBadRequest, "InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", nic))
		return
	}
	for _, ip := range ips {
		if !slices.Contains(have, ip) {
			f.writeErr(w, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("Some of the specified addresses are not assigned to interface %s", nic))
			return
		}
	}
	f.nics[nic] = slices.DeleteFunc(have, func(s string) bool { return slices.Contains(ips, s) })
	writeXML(w, struct {
		XMLName   xml.Name `xml:"UnassignPrivateIpAddressesResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Return    bool     `xml:"return"`
	}{XMLNS: ec2XMLNS, RequestID: f.nextID(), Return: true})
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

// verify checks the SigV4 signature as EC2 does: it rebuilds the request from what
// was received (the signed headers only), signs it again with the test secret, and
// compares the Authorization headers. It returns a status and EC2 error code on failure.
func (f *EC2) verify(r *http.Request, body []byte) (int, string, string) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return http.StatusBadRequest, "IncompleteSignature", "Authorization header requires a valid Credential"
	}
	if scope[0] != f.opts.AccessKeyID {
		return http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"
	}
	if scope[2] != f.opts.Region || scope[3] != "ec2" {
		return http.StatusUnauthorized, "AuthFailure", fmt.Sprintf("Credential should be scoped to a valid region and service ec2, not %s/%s", scope[2], scope[3])
	}
	when, err := time.Parse(amzDate, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return http.StatusBadRequest, "IncompleteSignature", "X-Amz-Date is missing or malformed"
	}
	if d := f.opts.Now().Sub(when); d > 15*time.Minute || d < -15*time.Minute {
		return http.StatusBadRequest, "RequestExpired", "Request has expired."
	}
	if tok := r.Header.Get("X-Amz-Security-Token"); tok != f.opts.SessionToken {
		return http.StatusUnauthorized, "AuthFailure", "The security token included in the request is invalid."
	}
	sum := sha256.Sum256(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hex.EncodeToString(sum[:]) {
		return http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided x-amz-content-sha256 header does not match what was computed."
	}
	// The request as the client signed it: same method, URL and signed headers.
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	re, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, "InvalidRequest", "cannot rebuild request"
	}
	re.ContentLength = 0
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			re.ContentLength = int64(len(body))
		default:
			if vs := r.Header.Values(h); vs != nil {
				re.Header[http.CanonicalHeaderKey(h)] = vs
			}
		}
	}
	creds := aws.Credentials{AccessKeyID: f.opts.AccessKeyID, SecretAccessKey: f.opts.SecretAccessKey, SessionToken: f.opts.SessionToken}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, re, hex.EncodeToString(sum[:]), "ec2", f.opts.Region, when); err != nil {
		return http.StatusInternalServerError, "InternalError", "cannot recompute signature"
	}
	if !hmac.Equal([]byte(re.Header.Get("Authorization")), []byte(auth)) {
		return http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return 0, "", ""
}
