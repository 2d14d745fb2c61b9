package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/remediation"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
)

// TestDoctorFederationPeers runs doctor federation against peers on 127.0.0.1: a real
// receiver, one answering garbage, one that never answers, one that is not listening,
// one with another key id and a clock 10 minutes ahead; and a state dir without a store.
func TestDoctorFederationPeers(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "peer.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := []byte("doctor-federation-secret-0123")
	recv, err := transport.NewReceiver(transport.ReceiverOptions{Group: "lab", LocalNode: "good", Store: st,
		Keys: []transport.Key{{ID: "k1", Secret: secret, Nodes: []string{"a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(recv)
	t.Cleanup(good.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<html>not a status</html>")
	}))
	t.Cleanup(garbage.Close)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	skewed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(transport.Status{Protocol: transport.ProtocolV1, Group: "lab", Node: "skewed",
			Time: time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339Nano), KeyIDs: []string{"k0"}})
	}))
	t.Cleanup(skewed.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lab.key"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata: {name: lab}\nspec:\n  nodeName: a\n  auth:\n    keys: [{id: k1, secretFile: lab.key}]\n"
	for _, p := range []struct{ name, endpoint string }{
		{"good", good.URL}, {"garbage", garbage.URL}, {"hang", hang.URL}, {"dead", dead}, {"skewed", skewed.URL},
	} {
		cfg += fmt.Sprintf("---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata: {name: %s}\nspec: {groupRef: lab, nodeName: %s, endpoint: %q}\n", p.name, p.name, p.endpoint)
	}
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
	if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out := runCLI(t, "doctor", "federation", "--config-dir", dir, "--state-dir", t.TempDir(), "--settings", settingsFile, "--peer-timeout", "500ms", "-o", "json")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("doctor federation took %s: a probe is not bounded by --peer-timeout", took)
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if code != exitDoctorFail || rep.OK || rep.Status != checkFail {
		t.Fatalf("exit %d, ok %v, status %s; want exit %d and fail\n%s", code, rep.OK, rep.Status, exitDoctorFail, out)
	}
	find := func(name, peer string) doctorCheck {
		t.Helper()
		for _, c := range rep.Checks {
			if c.Name == name && c.Peer == peer {
				return c
			}
		}
		t.Fatalf("no %s check for peer %q\n%s", name, peer, out)
		return doctorCheck{}
	}
	tests := []struct {
		name, check, peer, status, remediation, detail string
	}{
		{name: "receiver answers", check: checkPeerReachable, peer: "good", status: checkOK},
		{name: "key id accepted", check: checkPeerKeyID, peer: "good", status: checkOK},
		{name: "clock in sync", check: checkClockSkew, peer: "good", status: checkOK},
		{name: "garbage", check: checkPeerReachable, peer: "garbage", status: checkFail, remediation: remediation.CheckPeerConnectivity, detail: "decode"},
		{name: "hang", check: checkPeerReachable, peer: "hang", status: checkFail, remediation: remediation.CheckPeerConnectivity, detail: "no answer within 500ms"},
		{name: "dead", check: checkPeerReachable, peer: "dead", status: checkFail, remediation: remediation.CheckPeerConnectivity, detail: "connection refused"},
		{name: "other key id", check: checkPeerKeyID, peer: "skewed", status: checkFail, detail: "accepts key ids: k0"},
		{name: "clock ahead", check: checkClockSkew, peer: "skewed", status: checkFail, detail: "Synchronise both clocks"},
		{name: "missing store", check: "store", status: checkFail, detail: "does not exist"},
		{name: "config-only check still runs", check: "expected-delivery-no-endpoint", status: checkOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := find(tt.check, tt.peer)
			if c.Status != tt.status || c.Remediation != tt.remediation || !strings.Contains(strings.Join(c.Details, "\n"), tt.detail) {
				t.Errorf("%s/%s = %+v, want status %s, remediation %q, a detail containing %q", tt.check, tt.peer, c, tt.status, tt.remediation, tt.detail)
			}
		})
	}
}

// TestDoctorFederationFindings: a store with a failed delivery and a stale TTL gives the
// COMPAT checks' findings with their remediation actions; the peer at 127.0.0.1:1 does
// not answer.
func TestDoctorFederationFindings(t *testing.T) {
	state, conf := healthState(t)
	settingsFile := filepath.Join(t.TempDir(), "routerd.yaml")
	if err := os.WriteFile(settingsFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runCLI(t, "doctor", "federation", "--config-dir", conf, "--state-dir", state, "--settings", settingsFile, "--peer-timeout", "1s", "-o", "json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if code != exitDoctorFail {
		t.Fatalf("exit %d, want %d\n%s", code, exitDoctorFail, out)
	}
	want := map[string]string{
		"failed-deliveries": remediation.RetryFailedDeliveries,
		"stale-ttl":         remediation.ForceRepushStaleTTL,
		checkPeerReachable:  remediation.CheckPeerConnectivity,
	}
	for _, c := range rep.Checks {
		if r, ok := want[c.Name]; ok && c.Peer == "b" && c.Status != checkOK {
			if c.Remediation != r {
				t.Errorf("%s: remediation %q, want %q", c.Name, c.Remediation, r)
			}
			delete(want, c.Name)
		}
	}
	if len(want) > 0 {
		t.Fatalf("no failing finding for %v\n%s", want, out)
	}
}
