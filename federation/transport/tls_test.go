package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"routerd.net/routerd/federation/transport/transporttest"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 (it is its own CA).
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "routerd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSDelivery(t *testing.T) {
	cert, key := writeTestCert(t, t.TempDir())
	tlsFiles := &TLSFiles{CertFile: cert, KeyFile: key, CAFile: cert}
	addrs := map[string]string{"a": freeAddr(t), "b": freeAddr(t)}
	cfgs := meshConfigs(t, []string{"a", "b"}, addrs)
	for _, n := range []string{"a", "b"} {
		c := cfgs[n]
		c.TLS = tlsFiles
		for i := range c.Peers {
			c.Peers[i].Endpoint = "https://" + c.Peers[i].Endpoint[len("http://"):]
		}
		cfgs[n] = c
	}
	a := startNode(t, "a", openStore(t, "a"), cfgs["a"])
	b := startNode(t, "b", openStore(t, "b"), cfgs["b"])
	a.emit(t, 10)
	transporttest.WaitUntil(t, 10*time.Second, "events over TLS", func() bool { return countEvents(t, b.st) == 10 })

	// A plain-HTTP sender cannot talk to the TLS receiver.
	plain := cfgs["a"]
	plain.TLS, plain.ListenAddress = nil, ""
	plain.Peers = []Peer{{Name: "peer-b", NodeName: "b", Endpoint: "http://" + addrs["b"], Key: Key{ID: "g1", Secret: secretGroup}}}
	c := startNode(t, "a", openStore(t, "a2"), plain)
	c.emit(t, 1)
	transporttest.WaitUntil(t, 10*time.Second, "plain push to fail", func() bool {
		h := c.d.Sender().Health()
		return len(h) == 1 && h[0].LastError != ""
	})
	if n := countEvents(t, b.st); n != 10 {
		t.Errorf("b holds %d events, want 10", n)
	}
}
