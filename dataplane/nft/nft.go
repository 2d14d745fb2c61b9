// Package nft manages routerd's own nftables table, "inet routerd", through
// google/nftables (netlink; the nft binary is never used). The table holds one base chain,
// "forward" (filter hook forward, priority mangle, policy accept), with the MSS clamp rules
// of every MSSClamp resource, both directions per overlay interface:
//
//	oifname "wg0" tcp flags syn tcp option maxseg size set rt mtu
//	iifname "wg0" tcp flags syn tcp option maxseg size > 1360 tcp option maxseg size set 1360
//
// Every rule carries a comment naming what it is ("routerd mss egress wg0 rtmtu"), by
// which Read recognises routerd's rules. The table is always replaced as a whole in one
// netlink transaction (one Flush), so the kernel never holds a half-updated rule set.
package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"routerd.net/routerd/dataplane"
)

// commentPrefix starts the comment of every rule routerd writes.
const commentPrefix = "routerd mss "

// Table returns routerd's table.
func Table() *nftables.Table {
	return &nftables.Table{Name: dataplane.TableName, Family: nftables.TableFamilyINet}
}

// Chain returns routerd's base chain in t.
func Chain(t *nftables.Table) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     dataplane.ChainName,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookForward,
		Priority: nftables.ChainPriorityMangle,
		Policy:   &accept,
	}
}

// Comment is the rule comment that marks m as routerd's.
func Comment(m dataplane.MSSRule) string {
	size := "rtmtu"
	if m.MSS != 0 {
		size = strconv.Itoa(m.MSS)
	}
	return commentPrefix + string(m.Direction) + " " + m.Dev + " " + size
}

// parseComment is the inverse of Comment.
func parseComment(c string) (dataplane.MSSRule, bool) {
	f := strings.Fields(strings.TrimPrefix(c, commentPrefix))
	if !strings.HasPrefix(c, commentPrefix) || len(f) != 3 {
		return dataplane.MSSRule{}, false
	}
	m := dataplane.MSSRule{Direction: dataplane.Direction(f[0]), Dev: f[1]}
	if m.Direction != dataplane.Egress && m.Direction != dataplane.Ingress {
		return dataplane.MSSRule{}, false
	}
	if f[2] != "rtmtu" {
		n, err := strconv.Atoi(f[2])
		if err != nil || n <= 0 {
			return dataplane.MSSRule{}, false
		}
		m.MSS = n
	}
	return m, true
}

// ifname is an interface name as nft compares it: NUL-padded to IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Exprs returns the expressions of the clamp rule m, exactly as nft compiles
// `oifname "wg0" tcp flags syn tcp option maxseg size set rt mtu` (or the fixed-size form).
func Exprs(m dataplane.MSSRule) []expr.Any {
	key := expr.MetaKeyOIFNAME
	if m.Direction == dataplane.Ingress {
		key = expr.MetaKeyIIFNAME
	}
	tcpMSS := func() *expr.Exthdr {
		return &expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2}
	}
	exprs := []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(m.Dev)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		// tcp flags syn: (flags & syn) != 0
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x02}, Xor: []byte{0x00}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0x00}},
	}
	if m.MSS == 0 {
		set := tcpMSS()
		set.SourceRegister = 1
		return append(exprs,
			&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
			set,
		)
	}
	size := binary.BigEndian.AppendUint16(nil, uint16(m.MSS))
	load, set := tcpMSS(), tcpMSS()
	load.DestRegister = 1
	set.SourceRegister = 1
	return append(exprs,
		load,
		&expr.Cmp{Op: expr.CmpOpGt, Register: 1, Data: size},
		&expr.Immediate{Register: 1, Data: size},
		set,
	)
}

// Queue adds to c's pending batch the messages that replace routerd's table by one holding
// rules (already normalized): the table is created if missing, deleted, and re-created
// with its chain and rules. With no rules the table is only removed. The caller sends
// the batch with one c.Flush(), which the kernel applies atomically.
func Queue(c *nftables.Conn, rules []dataplane.MSSRule) {
	t := Table()
	c.AddTable(t)
	c.DelTable(t)
	if len(rules) == 0 {
		return
	}
	t = c.AddTable(Table())
	ch := c.AddChain(Chain(t))
	for _, m := range rules {
		c.AddRule(&nftables.Rule{
			Table:    t,
			Chain:    ch,
			Exprs:    Exprs(m),
			UserData: userdata.AppendString(nil, userdata.TypeComment, Comment(m)),
		})
	}
}

// Replace atomically replaces routerd's table with one holding rules.
func Replace(c *nftables.Conn, rules []dataplane.MSSRule) error {
	Queue(c, rules)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: replace table inet %s (%d rules): %w", dataplane.TableName, len(rules), err)
	}
	return nil
}

// Contents is what Read found in routerd's table.
type Contents struct {
	// Present reports whether the table exists.
	Present bool
	// Rules are routerd's clamp rules whose expressions are exactly what Exprs builds.
	Rules []dataplane.MSSRule
	// Foreign describes every object in the table routerd did not write as it is now:
	// other chains, sets, flowtables, rules without routerd's comment, and routerd rules
	// or chains someone modified. Sorted.
	Foreign []string
}

// Read lists routerd's table through c.
func Read(c *nftables.Conn) (Contents, error) {
	var out Contents
	t, err := c.ListTableOfFamily(dataplane.TableName, nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return out, nil
		}
		return out, fmt.Errorf("nft: list table inet %s: %w", dataplane.TableName, err)
	}
	out.Present = true
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return out, fmt.Errorf("nft: list chains of inet %s: %w", dataplane.TableName, err)
	}
	want := Chain(t)
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != dataplane.TableName {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return out, fmt.Errorf("nft: list rules of inet %s %s: %w", dataplane.TableName, ch.Name, err)
		}
		if ch.Name != want.Name || !sameChain(ch, want) {
			out.Foreign = append(out.Foreign, fmt.Sprintf("chain %s (%s) with %d rules", ch.Name, describeChain(ch), len(rules)))
			continue
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			m, ok := parseComment(comment)
			switch {
			case !ok:
				out.Foreign = append(out.Foreign, fmt.Sprintf("rule handle %d in chain %s (comment %q, %d expressions)", r.Handle, ch.Name, comment, len(r.Exprs)))
			case !reflect.DeepEqual(visible(r.Exprs), visible(Exprs(m))):
				out.Foreign = append(out.Foreign, fmt.Sprintf("rule handle %d in chain %s: %q was modified", r.Handle, ch.Name, comment))
			default:
				out.Rules = append(out.Rules, m)
			}
		}
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return out, fmt.Errorf("nft: list sets of inet %s: %w", dataplane.TableName, err)
	}
	for _, s := range sets {
		out.Foreign = append(out.Foreign, "set "+s.Name)
	}
	fts, err := c.ListFlowtables(t)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return out, fmt.Errorf("nft: list flowtables of inet %s: %w", dataplane.TableName, err)
	}
	for _, f := range fts {
		out.Foreign = append(out.Foreign, "flowtable "+f.Name)
	}
	sort.Strings(out.Foreign)
	return out, nil
}

// visible drops the expressions google/nftables v0.3.0 cannot decode when it lists rules
// ("rt" and "byteorder" are skipped silently), so that a rule read back compares equal
// to the rule written. A change elsewhere in the rule, including a replaced "set rt mtu",
// still shows.
func visible(exprs []expr.Any) []expr.Any {
	out := make([]expr.Any, 0, len(exprs))
	for _, e := range exprs {
		switch e.(type) {
		case *expr.Rt, *expr.Byteorder:
			continue
		}
		out = append(out, e)
	}
	return out
}

func sameChain(a, b *nftables.Chain) bool {
	return a.Type == b.Type && a.Hooknum != nil && *a.Hooknum == *b.Hooknum &&
		a.Priority != nil && *a.Priority == *b.Priority &&
		a.Policy != nil && *a.Policy == *b.Policy
}

func describeChain(c *nftables.Chain) string {
	if c.Hooknum == nil {
		return "regular chain"
	}
	prio := "?"
	if c.Priority != nil {
		prio = strconv.Itoa(int(*c.Priority))
	}
	policy := "?"
	if c.Policy != nil {
		policy = map[nftables.ChainPolicy]string{nftables.ChainPolicyAccept: "accept", nftables.ChainPolicyDrop: "drop"}[*c.Policy]
	}
	return fmt.Sprintf("type %s hook %d priority %s policy %s", c.Type, *c.Hooknum, prio, policy)
}
