package transport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"routerd.net/routerd/schemas"
)

func TestFromSchemas(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("group.secret", "group-secret-0123456789\n")
	write("old.secret", "old-secret-0123456789")
	write("new.secret", "new-secret-0123456789")
	write("b.secret", "b-only-secret-0123456789")
	write("short.secret", "short")
	t.Setenv("H5_TEST_SECRET", "env-secret-0123456789")

	group := func(auth string) string {
		return "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata:\n  name: lab\nspec:\n  nodeName: a\n  listen:\n    port: 9555\n  auth:\n" + auth
	}
	peer := func(name, node, extra string) string {
		return fmt.Sprintf("---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata:\n  name: %s\nspec:\n  groupRef: lab\n  nodeName: %s\n  endpoint: http://127.0.0.1:9556\n%s", name, node, extra)
	}
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c GroupConfig)
	}{
		{
			name: "group secret file shared by all peers",
			yaml: group("    secretFile: group.secret\n") + peer("pb", "b", "") + peer("pc", "c", ""),
			check: func(t *testing.T, c GroupConfig) {
				if c.ListenAddress != "127.0.0.1:9555" || c.LocalNode != "a" || len(c.Peers) != 2 {
					t.Errorf("config = %+v", c)
				}
				if len(c.ReceiveKeys) != 1 || strings.Join(c.ReceiveKeys[0].Nodes, ",") != "pb-node,pc-node" && strings.Join(c.ReceiveKeys[0].Nodes, ",") != "b,c" {
					t.Errorf("receive keys = %v", c.ReceiveKeys)
				}
				if string(c.Peers[0].Key.Secret) != "group-secret-0123456789" || c.Peers[0].Key.ID != "" {
					t.Errorf("peer key = %v", c.Peers[0].Key)
				}
				if c.BatchSize != 256 || c.RetryBase.String() != "200ms" || c.TTLRefreshBefore.String() != "2m0s" {
					t.Errorf("delivery defaults = %+v", c)
				}
			},
		},
		{
			name: "rotation signs with the last key, accepts all",
			yaml: group("    keys:\n    - id: k1\n      secretFile: old.secret\n    - id: k2\n      secretFile: new.secret\n") + peer("pb", "b", ""),
			check: func(t *testing.T, c GroupConfig) {
				if len(c.ReceiveKeys) != 2 || c.ReceiveKeys[0].ID != "k1" || c.ReceiveKeys[1].ID != "k2" {
					t.Errorf("receive keys = %v", c.ReceiveKeys)
				}
				if c.Peers[0].Key.ID != "k2" || string(c.Peers[0].Key.Secret) != "new-secret-0123456789" {
					t.Errorf("signing key = %v", c.Peers[0].Key)
				}
			},
		},
		{
			name: "per-peer secret only from that peer",
			yaml: group("    secretRef: env:H5_TEST_SECRET\n") + peer("pb", "b", "  auth:\n    keys:\n    - id: b1\n      secretFile: b.secret\n") + peer("pc", "c", ""),
			check: func(t *testing.T, c GroupConfig) {
				var got []string
				for _, k := range c.ReceiveKeys {
					got = append(got, fmt.Sprintf("%s:%s:%v", k.ID, k.Secret[:3], k.Nodes))
				}
				if strings.Join(got, " ") != ":env:[c] b1:b-o:[b]" {
					t.Errorf("receive keys = %v", got)
				}
				if c.Peers[0].Key.ID != "b1" || c.Peers[1].Key.ID != "" || string(c.Peers[1].Key.Secret[:3]) != "env" {
					t.Errorf("signing keys = %v / %v", c.Peers[0].Key, c.Peers[1].Key)
				}
			},
		},
		{
			name: "receive-only peer without endpoint",
			yaml: group("    secretFile: group.secret\n") + strings.Replace(peer("pb", "b", ""), "  endpoint: http://127.0.0.1:9556\n", "", 1),
			check: func(t *testing.T, c GroupConfig) {
				if len(c.Peers) != 0 || len(c.ReceiveKeys) != 1 || c.ReceiveKeys[0].Nodes[0] != "b" {
					t.Errorf("config = %+v", c)
				}
			},
		},
		{
			name: "nats-jetstream without peers: group keys for any node, no HTTP receiver",
			yaml: group("    keys:\n    - id: k1\n      secretFile: old.secret\n    - id: k2\n      secretFile: new.secret\n  transport:\n    type: nats-jetstream\n    servers: [nats://127.0.0.1:4222]\n    credentialsFile: lab.creds\n    embedded: {storeDir: js}\n"),
			check: func(t *testing.T, c GroupConfig) {
				js := c.JetStream
				if js == nil || c.ListenAddress != "" || len(c.Peers) != 0 {
					t.Fatalf("config = %+v", c)
				}
				if js.Stream != "ROUTERD_LAB" || js.SubjectPrefix != "routerd" || js.MaxAge.String() != "168h0m0s" ||
					js.CredentialsFile != filepath.Join(dir, "lab.creds") || js.Embedded.StoreDir != filepath.Join(dir, "js") || js.Embedded.Listen != "127.0.0.1:4222" {
					t.Errorf("jetstream = %+v %+v", js, js.Embedded)
				}
				if js.SignKey.ID != "k2" || len(js.GroupKeys) != 2 || !js.GroupKeys[0].AnyNode || !js.GroupKeys[0].allows("anyone") {
					t.Errorf("keys = %v sign %v", js.GroupKeys, js.SignKey)
				}
			},
		},
		{
			name: "nats-jetstream with a push peer: bridge keeps the receiver",
			yaml: group("    secretFile: group.secret\n  transport: {type: nats-jetstream, servers: [nats://127.0.0.1:4222], stream: LAB}\n") + peer("pb", "b", ""),
			check: func(t *testing.T, c GroupConfig) {
				if c.JetStream == nil || c.JetStream.Stream != "LAB" || c.ListenAddress != "127.0.0.1:9555" || len(c.Peers) != 1 {
					t.Errorf("config = %+v", c)
				}
				if c.ReceiveKeys[0].AnyNode {
					t.Errorf("the push receiver's key must stay limited to the peers: %v", c.ReceiveKeys)
				}
			},
		},
		{name: "nats-jetstream with per-peer secrets only", yaml: strings.Replace(group("    secretFile: group.secret\n"), "  auth:\n    secretFile: group.secret\n", "  transport: {type: nats-jetstream, servers: [nats://127.0.0.1:4222]}\n", 1) + peer("pb", "b", "  auth:\n    secretFile: b.secret\n"), wantErr: "spec.transport.type nats-jetstream signs every message with the group key: set spec.auth.secretFile"},
		{name: "missing secret file", yaml: group("    secretFile: nope.secret\n") + peer("pb", "b", ""), wantErr: "secretFile"},
		{name: "short secret", yaml: group("    secretFile: short.secret\n") + peer("pb", "b", ""), wantErr: "shorter than"},
		{name: "key id twice", yaml: group("    keys:\n    - id: k1\n      secretFile: old.secret\n") + peer("pb", "b", "  auth:\n    keys:\n    - id: k1\n      secretFile: b.secret\n"), wantErr: `key id "k1" is used twice`},
		{name: "unreadable peer key", yaml: group("    secretFile: group.secret\n") + peer("pb", "b", "  auth:\n    secretFile: missing.secret\n"), wantErr: "EventPeer pb spec.auth.secretFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := schemas.Decode("lab.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			c, err := FromSchemas(cfg, "lab", dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-0123") {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
	cfg, err := schemas.Decode("lab.yaml", []byte(group("    secretFile: group.secret\n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromSchemas(cfg, "corp", dir); err == nil || !strings.Contains(err.Error(), `no EventGroup "corp"`) {
		t.Errorf("unknown group: %v", err)
	}
}

// TestFromSchemasPeersFrom: EventGroup spec.peersFrom is honoured by the transport.
func TestFromSchemasPeersFrom(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "group.secret"), []byte("group-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	group := func(peersFrom ...string) string {
		y := "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata:\n  name: lab\nspec:\n  nodeName: a\n  auth:\n    secretFile: group.secret\n  peersFrom:\n"
		for _, pf := range peersFrom {
			y += "  - " + pf + "\n"
		}
		return y
	}
	peer := func(name, groupRef, node string) string {
		return fmt.Sprintf("---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata:\n  name: %s\nspec:\n  groupRef: %s\n  nodeName: %s\n  endpoint: http://127.0.0.1:9556\n", name, groupRef, node)
	}
	const corp = "---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata:\n  name: corp\nspec:\n  nodeName: a\n  auth:\n    secretFile: group.secret\n"
	// gone is added to spec.peersFrom after loading (loading refuses a required
	// reference to a missing resource already; the transport must too).
	gone := schemas.PeersFrom{Resource: "OverlayPeer/gone"}
	overlay := func(name, remoteNode string) string {
		return fmt.Sprintf("---\napiVersion: hybrid.routerd.net/v1alpha1\nkind: OverlayPeer\nmetadata:\n  name: %s\nspec:\n  role: cloud\n  underlay:\n    type: wireguard\n    interface: wg0\n  remote:\n    nodeID: %s\n    address: 10.255.1.2\n", name, remoteNode)
	}
	peerNames := func(c GroupConfig) string {
		var out []string
		for _, p := range c.Peers {
			out = append(out, p.Name+"="+p.NodeName)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name      string
		yaml      string
		wantPeers string // pushed to: name=node
		wantNodes string // accepted from under the group key
		addGone   bool
		wantErr   string
	}{
		{name: "without peersFrom only the group's EventPeers",
			yaml: group() + peer("pb", "lab", "b") + corp + peer("px", "corp", "x"), wantPeers: "pb=b", wantNodes: "b"},
		{name: "an EventPeer of another group joins",
			yaml: group("resource: EventPeer/px") + peer("pb", "lab", "b") + corp + peer("px", "corp", "x"), wantPeers: "pb=b,px=x", wantNodes: "b,x"},
		{name: "an OverlayPeer stood for by the group's EventPeer of its remote node",
			yaml: group("resource: OverlayPeer/dc1") + peer("pb", "lab", "b") + overlay("dc1", "b"), wantPeers: "pb=b", wantNodes: "b"},
		{name: "an OverlayPeer without EventPeer is accepted from, not pushed to",
			yaml: group("resource: OverlayPeer/dc1") + peer("pb", "lab", "b") + overlay("dc1", "d"), wantPeers: "pb=b", wantNodes: "d,b"},
		{name: "a missing optional resource is skipped",
			yaml: group("resource: OverlayPeer/gone\n    optional: true") + peer("pb", "lab", "b"), wantPeers: "pb=b", wantNodes: "b"},
		{name: "a missing required resource is a config error",
			yaml: group("resource: EventPeer/pb") + peer("pb", "lab", "b"), addGone: true,
			wantErr: "transport: EventGroup lab spec.peersFrom[1]: OverlayPeer/gone is not in the config: add the resource, or set optional: true on the entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := schemas.Decode("lab.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if tt.addGone {
				g := cfg.Get("EventGroup", "lab").(*schemas.EventGroup)
				g.Spec.PeersFrom = append(g.Spec.PeersFrom, gone)
			}
			c, err := FromSchemas(cfg, "lab", dir)
			if tt.wantErr != "" {
				var me *MissingPeersFromError
				if err == nil || err.Error() != tt.wantErr || !errors.As(err, &me) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := peerNames(c); got != tt.wantPeers {
				t.Errorf("peers = %q, want %q", got, tt.wantPeers)
			}
			if len(c.ReceiveKeys) != 1 || strings.Join(c.ReceiveKeys[0].Nodes, ",") != tt.wantNodes {
				t.Errorf("receive keys = %v, want nodes %q", c.ReceiveKeys, tt.wantNodes)
			}
		})
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := Key{ID: "k1", Secret: []byte("super-secret-value-123"), Nodes: []string{"b"}}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, "super-secret") {
			t.Fatalf("key printed with its secret: %s", s)
		}
	}
}

// TestFromSchemasNoAuth: a group whose EventGroup names no secret (spec.auth absent or
// empty) is refused with one clear message, unless its peers bring their own secrets.
func TestFromSchemasNoAuth(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"group.secret": "group-secret-0123456789\n", "b.secret": "b-only-secret-0123456789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const group = "apiVersion: federation.routerd.net/v1alpha1\nkind: EventGroup\nmetadata:\n  name: lab\nspec:\n  nodeName: a\n  auth:\n    secretFile: group.secret\n"
	peer := func(name, node, extra string) string {
		return fmt.Sprintf("---\napiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata:\n  name: %s\nspec:\n  groupRef: lab\n  nodeName: %s\n  endpoint: http://127.0.0.1:9556\n%s", name, node, extra)
	}
	ownAuth := "  auth:\n    secretFile: b.secret\n"
	tests := []struct {
		name    string
		yaml    string
		wantErr string // exact; "" means success
	}{
		{name: "no peers", yaml: group, wantErr: "group lab has no auth: add spec.auth.secretFile"},
		{name: "peers without auth", yaml: group + peer("pb", "b", "") + peer("pc", "c", ""), wantErr: "group lab has no auth: add spec.auth.secretFile"},
		{name: "one peer with its own secret, one without", yaml: group + peer("pb", "b", ownAuth) + peer("pc", "c", ""), wantErr: "transport: EventPeer pc: no secret (set auth on the peer or on EventGroup lab)"},
		{name: "every peer with its own secret", yaml: group + peer("pb", "b", ownAuth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := schemas.Decode("lab.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			// The group as loaded without spec.auth (today's schema still requires it).
			cfg.Get("EventGroup", "lab").(*schemas.EventGroup).Spec.Auth = schemas.EventGroupAuth{}
			_, err = FromSchemas(cfg, "lab", dir)
			if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewDaemonRefusesNoAuth(t *testing.T) {
	cfg := GroupConfig{Group: "lab", LocalNode: "a", ListenAddress: "127.0.0.1:0",
		Peers: []Peer{{Name: "pb", NodeName: "b", Endpoint: "http://127.0.0.1:1"}}}
	_, err := NewDaemon(cfg, openStore(t, "a"), DaemonOptions{})
	var na *NoAuthError
	if !errors.As(err, &na) || err.Error() != "group lab has no auth: add spec.auth.secretFile" {
		t.Fatalf("err = %v, want the no-auth refusal", err)
	}
}
