package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
)

// MinSecretBytes is the shortest secret accepted from a secret file.
const MinSecretBytes = 16

// Key is one shared HMAC secret. ID is what the X-Routerd-Key-Id header names ("" for a
// key without an id, which is then only found by trying it). Nodes lists the node names
// allowed to sign with it: a group-wide key lists every peer of the group, a per-peer key
// only that peer.
type Key struct {
	ID     string
	Secret []byte
	Nodes  []string
	// AnyNode lets the key sign for any node (but the receiving one): the group key of a
	// brokered group (nats-jetstream), whose members are not listed as EventPeers.
	AnyNode bool
}

// String hides the secret so a Key can never be logged by accident.
func (k Key) String() string {
	if k.AnyNode {
		return fmt.Sprintf("Key{ID:%q, nodes:any}", k.ID)
	}
	return fmt.Sprintf("Key{ID:%q, nodes:%v}", k.ID, k.Nodes)
}

// GoString hides the secret from %#v.
func (k Key) GoString() string { return k.String() }

// allows reports whether node may sign with k.
func (k Key) allows(node string) bool { return k.AnyNode || slices.Contains(k.Nodes, node) }

// ReadSecretFile reads a secret from path. Surrounding whitespace (a trailing newline)
// is removed. The error names the file but never its content.
func ReadSecretFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("transport: secret file: empty path")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("transport: read secret file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("transport: secret file %s: secret shorter than %d bytes", path, MinSecretBytes)
	}
	return b, nil
}

// Sign returns the v1 signature: lowercase hex HMAC-SHA256 keyed by secret over
// timestamp + "\n" + body.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return hex.EncodeToString(signRaw(secret, strconv.FormatInt(timestamp, 10), body))
}

func signRaw(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'\n'})
	m.Write(body)
	return m.Sum(nil)
}

// verifySig reports whether sig (raw bytes, already hex-decoded) is the signature of
// timestamp and body under secret, in constant time.
func verifySig(secret []byte, timestamp string, body, sig []byte) bool {
	return hmac.Equal(signRaw(secret, timestamp, body), sig)
}
