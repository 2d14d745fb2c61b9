// Package providertest has in-process fakes of the cloud provider APIs routerd calls,
// served by httptest on 127.0.0.1: EC2 (Query API AssignPrivateIpAddresses /
// UnassignPrivateIpAddresses), Azure Resource Manager networkInterfaces (GET/PUT) with a
// Microsoft Entra token endpoint, and OCI privateIps (create, delete, list).
//
// Each fake authenticates requests the way the real service does, independently of
// package sign: EC2 recomputes the SigV4 signature with the test key, ARM accepts only
// bearer tokens its token endpoint issued, OCI verifies the RSA signature over the
// signing string with the test public key. A wrong signature is rejected with the
// provider's error shape, so a broken signer fails a test.
//
// The fakes keep state (which private IPs are on which NIC), count requests (rejected
// ones too), and can be told to misbehave (Fault: a status, a provider error code,
// garbage, or hanging until the client gives up).
package providertest

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// Fault makes the next request misbehave instead of being served.
type Fault struct {
	// Status is the HTTP status to answer (with the provider's error shape and Code).
	Status int
	// Code is the provider error code (default: "InternalError" style per provider).
	Code string
	// Raw, when set, is written as the whole body instead of the error shape (for
	// garbage answers), with Status (default 200).
	Raw string
	// Hang blocks until the client goes away, for timeout tests.
	Hang bool
}

// base is what every fake shares: counters, request ids and queued faults.
type base struct {
	requests atomic.Int64
	ids      atomic.Int64
	prefix   string

	mu     sync.Mutex
	faults []Fault
	done   chan struct{}
	once   sync.Once
}

func newBase(prefix string) base { return base{prefix: prefix, done: make(chan struct{})} }

// Requests is the number of HTTP requests the fake received, served or rejected.
func (b *base) Requests() int64 { return b.requests.Load() }

// Inject queues faults; each is used by one following request.
func (b *base) Inject(f ...Fault) {
	b.mu.Lock()
	b.faults = append(b.faults, f...)
	b.mu.Unlock()
}

// nextID returns a fresh request id.
func (b *base) nextID() string { return fmt.Sprintf("%s-%08d", b.prefix, b.ids.Add(1)) }

// fault pops the next queued fault.
func (b *base) fault() (Fault, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.faults) == 0 {
		return Fault{}, false
	}
	f := b.faults[0]
	b.faults = b.faults[1:]
	return f, true
}

// stop releases hanging requests (before the server closes).
func (b *base) stop() { b.once.Do(func() { close(b.done) }) }

// serveFault answers r with f; errShape writes the provider's error document.
func (b *base) serveFault(w http.ResponseWriter, r *http.Request, f Fault, errShape func(w http.ResponseWriter, status int, code, msg string)) {
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
		return
	}
	if f.Raw != "" {
		if f.Status == 0 {
			f.Status = http.StatusOK
		}
		w.WriteHeader(f.Status)
		fmt.Fprint(w, f.Raw)
		return
	}
	errShape(w, f.Status, f.Code, "injected fault")
}
