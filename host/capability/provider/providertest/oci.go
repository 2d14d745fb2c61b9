package providertest

import (
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// OCIAPIVersion is the path prefix of the OCI core services API.
const OCIAPIVersion = "/20160918"

// OCIKey is a test API signing key.
type OCIKey struct {
	// PEM is the private key (PKCS#1 PEM), as a user's key file holds it.
	PEM string
	// Public verifies signatures.
	Public *rsa.PublicKey
	// Fingerprint is the MD5 of the public key, colon-separated, as OCI shows it.
	Fingerprint string
}

// NewOCIKey makes a fresh 2048-bit RSA signing key.
func NewOCIKey(t testing.TB) OCIKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(der)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02x", b)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return OCIKey{PEM: string(p), Public: &k.PublicKey, Fingerprint: strings.Join(hexes, ":")}
}

// OCIOptions configure the fake OCI core API.
type OCIOptions struct {
	// Tenancy, User and Key are the one valid signing identity.
	Tenancy, User string
	Key           OCIKey
	// VNICs are the VNIC OCIDs and their secondary private IPs at start.
	VNICs map[string][]string
	// Now is the fake's clock for the date check (default time.Now).
	Now func() time.Time
}

// PrivateIP is the OCI PrivateIp resource (the fields the fake keeps).
type PrivateIP struct {
	ID          string `json:"id"`
	VnicID      string `json:"vnicId"`
	IPAddress   string `json:"ipAddress"`
	DisplayName string `json:"displayName,omitempty"`
	IsPrimary   bool   `json:"isPrimary"`
}

// OCI is a fake OCI core services API (privateIps).
type OCI struct {
	base
	// URL is the endpoint, http://127.0.0.1:port.
	URL  string
	opts OCIOptions

	mu    sync.Mutex
	vnics map[string]bool
	ips   map[string]*PrivateIP // by id
	n     int
}

// NewOCI starts a fake OCI; it stops when the test ends.
func NewOCI(t testing.TB, opts OCIOptions) *OCI {
	t.Helper()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &OCI{base: newBase("opc"), opts: opts, vnics: map[string]bool{}, ips: map[string]*PrivateIP{}}
	for vnic, ips := range opts.VNICs {
		f.vnics[vnic] = true
		for _, ip := range ips {
			f.add(vnic, ip, "")
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = srv.URL
	t.Cleanup(func() { f.stop(); srv.Close() })
	return f
}

// add creates a private IP (f.mu held or during setup).
func (f *OCI) add(vnic, ip, name string) *PrivateIP {
	f.n++
	p := &PrivateIP{ID: fmt.Sprintf("ocid1.privateip.oc1..fake%04d", f.n), VnicID: vnic, IPAddress: ip, DisplayName: name}
	f.ips[p.ID] = p
	return p
}

// Addresses returns the private IPs on vnic, sorted.
func (f *OCI) Addresses(vnic string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.ips {
		if p.VnicID == vnic {
			out = append(out, p.IPAddress)
		}
	}
	sort.Strings(out)
	return out
}

// ociErr writes the OCI error shape.
func (f *OCI) ociErr(w http.ResponseWriter, status int, code, msg string) {
	if code == "" {
		code = map[bool]string{true: "TooManyRequests", false: "InternalServerError"}[status == http.StatusTooManyRequests]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("opc-request-id", f.nextID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func (f *OCI) ok(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("opc-request-id", f.nextID())
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// serve handles privateIps requests.
func (f *OCI) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		f.ociErr(w, http.StatusBadRequest, "InvalidParameter", "cannot read body")
		return
	}
	if msg := f.verify(r, body); msg != "" {
		f.ociErr(w, http.StatusUnauthorized, "NotAuthenticated", msg)
		return
	}
	if fl, ok := f.fault(); ok {
		f.serveFault(w, r, fl, f.ociErr)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, OCIAPIVersion+"/privateIps")
	if !ok {
		f.ociErr(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
		return
	}
	id := strings.TrimPrefix(rest, "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && id == "":
		var in struct {
			VnicID      string `json:"vnicId"`
			IPAddress   string `json:"ipAddress"`
			DisplayName string `json:"displayName"`
		}
		if err := json.Unmarshal(body, &in); err != nil || in.VnicID == "" || in.IPAddress == "" {
			f.ociErr(w, http.StatusBadRequest, "InvalidParameter", "vnicId and ipAddress are required.")
			return
		}
		if !f.vnics[in.VnicID] {
			f.ociErr(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
			return
		}
		for _, p := range f.ips {
			if p.IPAddress == in.IPAddress {
				f.ociErr(w, http.StatusConflict, "Conflict", fmt.Sprintf("IP address %s is already assigned in the subnet.", in.IPAddress))
				return
			}
		}
		f.ok(w, http.StatusOK, f.add(in.VnicID, in.IPAddress, in.DisplayName))
	case r.Method == http.MethodGet && id == "":
		vnic := r.URL.Query().Get("vnicId")
		if vnic == "" {
			f.ociErr(w, http.StatusBadRequest, "MissingParameter", "One of subnetId, vnicId or vlanId is required.")
			return
		}
		out := []*PrivateIP{}
		for _, p := range f.ips {
			if p.VnicID == vnic {
				out = append(out, p)
			}
		}
		slices.SortFunc(out, func(a, b *PrivateIP) int { return strings.Compare(a.ID, b.ID) })
		f.ok(w, http.StatusOK, out)
	case r.Method == http.MethodGet:
		p, ok := f.ips[id]
		if !ok {
			f.ociErr(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
			return
		}
		f.ok(w, http.StatusOK, p)
	case r.Method == http.MethodDelete && id != "":
		if _, ok := f.ips[id]; !ok {
			f.ociErr(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
			return
		}
		delete(f.ips, id)
		f.ok(w, http.StatusNoContent, nil)
	default:
		f.ociErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The method is not allowed on this resource.")
	}
}

// verify checks the OCI HTTP signature (draft-cavage signatures, rsa-sha256) against
// the test public key; it returns why it failed, or "".
func (f *OCI) verify(r *http.Request, body []byte) string {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Signature ")
	if !ok {
		return "The required information to complete authentication was not provided."
	}
	params := map[string]string{}
	for _, part := range strings.Split(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		params[k] = strings.Trim(v, `"`)
	}
	if params["version"] != "1" || params["algorithm"] != "rsa-sha256" {
		return "Unsupported signature version or algorithm."
	}
	if want := f.opts.Tenancy + "/" + f.opts.User + "/" + f.opts.Key.Fingerprint; params["keyId"] != want {
		return "The required information to complete authentication was not provided or was incorrect (keyId)."
	}
	headers := strings.Fields(params["headers"])
	required := []string{"date", "(request-target)", "host"}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		required = append(required, "content-length", "content-type", "x-content-sha256")
		sum := sha256.Sum256(body)
		if r.Header.Get("x-content-sha256") != base64.StdEncoding.EncodeToString(sum[:]) {
			return "x-content-sha256 does not match the body."
		}
	}
	for _, h := range required {
		if !slices.Contains(headers, h) {
			return "Header " + h + " must be signed."
		}
	}
	date := r.Header.Get("Date")
	if date == "" {
		date = r.Header.Get("x-date")
	}
	when, err := http.ParseTime(date)
	if err != nil {
		return "Date header is missing or malformed."
	}
	if d := f.opts.Now().Sub(when); d > 5*time.Minute || d < -5*time.Minute {
		return "Date is more than 5 minutes from the server's clock."
	}
	lines := make([]string, len(headers))
	for i, h := range headers {
		var v string
		switch h {
		case "(request-target)":
			v = strings.ToLower(r.Method) + " " + r.URL.RequestURI()
		case "host":
			v = r.Host
		case "content-length":
			v = fmt.Sprint(len(body))
		default:
			v = r.Header.Get(h)
		}
		lines[i] = h + ": " + v
	}
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil {
		return "Signature is not base64."
	}
	digest := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	if rsa.VerifyPKCS1v15(f.opts.Key.Public, crypto.SHA256, digest[:], sig) != nil {
		return "The required information to complete authentication was not provided or was incorrect (signature)."
	}
	return ""
}
