package nft

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"routerd.net/routerd/dataplane"
	"routerd.net/routerd/dataplane/internal/nstest"
)

// referenceRules are the rules of testdata/reference.nft, in the file's order.
var referenceRules = []dataplane.MSSRule{
	{Dev: "wg-hybrid", Direction: dataplane.Ingress},
	{Dev: "wg-hybrid", Direction: dataplane.Egress},
	{Dev: "gre1", Direction: dataplane.Ingress, MSS: 1360},
	{Dev: "gre1", Direction: dataplane.Egress, MSS: 1360},
}

// msgName renders a netfilter netlink message type readably.
func msgName(m netlink.Message) string {
	typ := uint16(m.Header.Type)
	switch typ {
	case unix.NFNL_MSG_BATCH_BEGIN:
		return "batch begin"
	case unix.NFNL_MSG_BATCH_END:
		return "batch end"
	}
	names := map[uint16]string{
		unix.NFT_MSG_NEWTABLE: "new table", unix.NFT_MSG_DELTABLE: "delete table",
		unix.NFT_MSG_NEWCHAIN: "new chain", unix.NFT_MSG_NEWRULE: "new rule",
	}
	if n, ok := names[typ&0xff]; ok && typ>>8 == unix.NFNL_SUBSYS_NFTABLES {
		return n
	}
	return fmt.Sprintf("type %#x", typ)
}

// TestQueueRecorded is tier one: a recorder stands in for the netlink socket and the
// replacement must be one batch (one transaction) in the documented order.
func TestQueueRecorded(t *testing.T) {
	tests := []struct {
		name  string
		rules []dataplane.MSSRule
		want  string
	}{
		{
			name:  "two rules",
			rules: referenceRules[:2],
			want:  "send 1: batch begin, new table, delete table, new table, new chain, new rule, new rule, batch end",
		},
		{
			name:  "no rules removes the table",
			rules: nil,
			want:  "send 1: batch begin, new table, delete table, batch end",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sends []string
			c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
				if len(req) == 0 {
					return nil, nil
				}
				names := make([]string, len(req))
				for i, m := range req {
					names[i] = msgName(m)
				}
				sends = append(sends, fmt.Sprintf("send %d: %s", len(sends)+1, strings.Join(names, ", ")))
				return req, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if err := Replace(c, tt.rules); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(sends, "\n"); got != tt.want {
				t.Errorf("recorded:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestCommentRoundTrip(t *testing.T) {
	for _, m := range referenceRules {
		t.Run(Comment(m), func(t *testing.T) {
			got, ok := parseComment(Comment(m))
			if !ok || got != m {
				t.Fatalf("parseComment(%q) = %+v, %v", Comment(m), got, ok)
			}
		})
	}
	for _, bad := range []string{"", "routerd mss", "routerd mss sideways wg0 rtmtu", "routerd mss egress wg0 -5", "other egress wg0 rtmtu"} {
		if _, ok := parseComment(bad); ok {
			t.Errorf("parseComment(%q) accepted", bad)
		}
	}
}

func requireNft(t *testing.T) {
	t.Helper()
	nstest.RequireBinary(t, "nft")
}

func conn(t *testing.T, ns *nstest.NS) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReference is tier two: nft compiles testdata/reference.nft in one namespace, the
// code writes the same rules in another; Read must recognise nft's rules as exactly
// routerd's, and both tables must list identically.
func TestReference(t *testing.T) {
	requireNft(t)
	ref, ours := nstest.New(t), nstest.New(t)
	ref.Exec(t, "nft", "-f", filepath.Join("testdata", "reference.nft"))
	if err := Replace(conn(t, ours), referenceRules); err != nil {
		t.Fatal(err)
	}
	got, err := Read(conn(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Foreign) > 0 {
		t.Errorf("rules compiled by nft not recognised as routerd's:\n%s", strings.Join(got.Foreign, "\n"))
	}
	if !reflect.DeepEqual(got.Rules, referenceRules) {
		t.Errorf("Read(reference) rules = %+v\nwant %+v", got.Rules, referenceRules)
	}
	list := func(ns *nstest.NS) string {
		return ns.Exec(t, "nft", "list", "table", "inet", dataplane.TableName)
	}
	if a, b := list(ref), list(ours); a != b {
		t.Errorf("nft list differs\n--- reference\n%s--- code\n%s", a, b)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "reference.nft"))
	if err != nil {
		t.Fatal(err)
	}
	if got := list(ours); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("nft list of the code's table\n%s\ndiffers from testdata/reference.nft\n%s", got, want)
	}
}

// TestKernelReplaceAndRead is tier three: apply, read back through netlink, foreign
// objects inside routerd's table reported and replaced, foreign tables untouched.
func TestKernelReplaceAndRead(t *testing.T) {
	requireNft(t)
	ns := nstest.New(t)
	c := conn(t, ns)
	if got, err := Read(c); err != nil || got.Present {
		t.Fatalf("fresh namespace: Read = %+v, %v; want no table", got, err)
	}
	ns.Exec(t, "nft", "add table inet other; add chain inet other c { type filter hook forward priority 0; }; add rule inet other c tcp dport 22 accept")
	if err := Replace(c, referenceRules[:2]); err != nil {
		t.Fatal(err)
	}
	got, err := Read(c)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Present || len(got.Foreign) != 0 || !reflect.DeepEqual(got.Rules, referenceRules[:2]) {
		t.Fatalf("after Replace: %+v", got)
	}

	// Someone adds to routerd's table: a foreign rule, a foreign chain, a set, and a
	// modified copy of one of routerd's rules.
	ns.Exec(t, "nft", `add rule inet routerd forward udp dport 53 accept; add chain inet routerd extra; add set inet routerd s { type ipv4_addr; }; add rule inet routerd forward oifname "x" tcp flags syn tcp option maxseg size set 1000 comment "routerd mss egress x rtmtu"`)
	got, err = Read(c)
	if err != nil {
		t.Fatal(err)
	}
	wantForeign := []string{"chain extra", "rule handle", "rule handle", "set s"}
	if len(got.Foreign) != len(wantForeign) {
		t.Fatalf("foreign = %q, want %d entries like %q", got.Foreign, len(wantForeign), wantForeign)
	}
	for i, w := range wantForeign {
		if !strings.HasPrefix(got.Foreign[i], w) {
			t.Errorf("foreign[%d] = %q, want prefix %q", i, got.Foreign[i], w)
		}
	}
	if !strings.Contains(strings.Join(got.Foreign, "\n"), `"routerd mss egress x rtmtu" was modified`) {
		t.Errorf("modified routerd rule not reported: %q", got.Foreign)
	}

	// Replacing the table removes everything foreign inside it, nothing outside it.
	if err := Replace(c, referenceRules[2:]); err != nil {
		t.Fatal(err)
	}
	got, err = Read(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Foreign) != 0 || !reflect.DeepEqual(got.Rules, referenceRules[2:]) {
		t.Fatalf("after second Replace: %+v", got)
	}
	other := ns.Exec(t, "nft", "list", "table", "inet", "other")
	if !strings.Contains(other, "tcp dport 22 accept") {
		t.Errorf("foreign table changed:\n%s", other)
	}

	// No rules: the table goes away, the foreign one stays.
	if err := Replace(c, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(c); err != nil || got.Present {
		t.Fatalf("after empty Replace: %+v, %v", got, err)
	}
	ns.Exec(t, "nft", "list", "table", "inet", "other")
}
