// Package nstest creates throwaway network namespaces for the dataplane's kernel tests.
// Every namespace has a unique name, is deleted by t.Cleanup even when the test fails,
// and the tests skip (with the reason) when not run as root.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// RequireRoot skips t unless the process is root and can create network namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test: needs iproute2's ip to create network namespaces")
	}
}

// Name returns a unique namespace name starting with prefix (at most 15 characters).
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n := prefix + hex.EncodeToString(b)
	if len(n) > 15 {
		n = n[len(n)-15:]
	}
	return n
}

// NS is a network namespace created for one test.
type NS struct {
	// Name is the namespace name (ip netns).
	Name string
	// Handle is an open handle (file descriptor) of the namespace.
	Handle netns.NsHandle
}

// New creates a namespace with loopback up and registers its deletion with t.Cleanup.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	name := Name("rdt")
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	ns := &NS{Name: name, Handle: h}
	ns.IP(t, "link", "set", "lo", "up")
	return ns
}

// IP runs `ip -n NS args...` and returns its output; it fails the test on error.
func (ns *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"-n", ns.Name}, args...)...)
}

// Exec runs a command inside the namespace (ip netns exec) and returns its output; it
// fails the test on error.
func (ns *NS) Exec(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns.Name}, args...)...)
}

// Link creates an up interface called name in the namespace: one end of a veth pair
// whose other end ("name-p", also up) stays in the namespace. (Dummy interfaces would do,
// but not every kernel has the dummy module.)
func (ns *NS) Link(t testing.TB, name string) {
	t.Helper()
	peer := name + "-p"
	if len(peer) > 15 {
		t.Fatalf("interface name %q too long for a veth peer name", name)
	}
	ns.IP(t, "link", "add", name, "type", "veth", "peer", "name", peer)
	ns.IP(t, "link", "set", name, "up")
	ns.IP(t, "link", "set", peer, "up")
}

// Veth joins a (interface nameA) and b (nameB) with a veth pair and sets both ends up.
func Veth(t testing.TB, a *NS, nameA string, b *NS, nameB string) {
	t.Helper()
	a.IP(t, "link", "add", nameA, "type", "veth", "peer", "name", nameB, "netns", b.Name)
	a.IP(t, "link", "set", nameA, "up")
	b.IP(t, "link", "set", nameB, "up")
}

// Run runs a command and returns its combined output; it fails the test on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// RequireBinary skips t when a tool the test uses to set up or read back the kernel
// (nft, ping) is not installed; routerd itself never runs them.
func RequireBinary(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("kernel test: needs %s to set up or read back the kernel (apt install nftables iputils-ping)", n)
		}
	}
}

// Ping pings addr from inside the namespace: one echo every 200 ms until a reply or 3 s
// have passed (a fresh veth pair may drop the very first packet). A destination without
// a route fails at once.
func (ns *NS) Ping(addr string) error {
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "ping", "-n", "-c", "1", "-i", "0.2", "-w", "3", addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w: %s", addr, ns.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
