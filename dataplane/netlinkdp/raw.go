package netlinkdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Attributes vishvananda/netlink v1.3.1 does not model: the protocol (ownership) markers
// of addresses and neighbor entries.
const (
	ifaProto    = 11 // IFA_PROTO (Linux 6.1)
	ndaProtocol = 12 // NDA_PROTOCOL (Linux 5.0)
	sizeNdmsg   = 12
)

// rawAddr is one interface address as dumped, with its protocol.
type rawAddr struct {
	Index  int
	Prefix netip.Prefix
	Proto  uint8
}

// rawNeigh is one proxy neighbor entry as dumped, with its protocol.
type rawNeigh struct {
	Index int
	Addr  netip.Addr
	Proto uint8
}

// request builds a route-netlink request on the backend's own socket.
func (b *Backend) request(msgType, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(msgType, flags)
	req.Sockets = b.sockets
	return req
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// addAddr adds prefix on link index with IFA_PROTO set; it fails with EEXIST when the
// address is already there (ours or foreign).
func (b *Backend) addAddr(index int, prefix netip.Prefix) error {
	req := b.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfAddrmsg(family(prefix.Addr()))
	msg.Prefixlen = uint8(prefix.Bits())
	msg.Index = uint32(index)
	req.AddData(msg)
	ip := prefix.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	req.AddData(nl.NewRtAttr(ifaProto, nl.Uint8Attr(dataplaneAddrProto)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// listAddrs dumps every interface address with its protocol.
func (b *Backend) listAddrs() ([]rawAddr, error) {
	req := b.request(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		return nil, err
	}
	var out []rawAddr
	for _, m := range msgs {
		if len(m) < unix.SizeofIfAddrmsg {
			continue
		}
		hdr := nl.DeserializeIfAddrmsg(m)
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
		if err != nil {
			return nil, fmt.Errorf("parse address message: %w", err)
		}
		var local, address []byte
		a := rawAddr{Index: int(hdr.Index)}
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_LOCAL:
				local = at.Value
			case unix.IFA_ADDRESS:
				address = at.Value
			case ifaProto:
				if len(at.Value) > 0 {
					a.Proto = at.Value[0]
				}
			}
		}
		if local == nil {
			local = address
		}
		ip, ok := netip.AddrFromSlice(local)
		if !ok {
			continue
		}
		a.Prefix = netip.PrefixFrom(ip.Unmap(), int(hdr.Prefixlen))
		out = append(out, a)
	}
	return out, nil
}

// addProxyNeigh adds a proxy neighbor entry for addr on link index with NDA_PROTOCOL set.
func (b *Backend) addProxyNeigh(index int, addr netip.Addr) error {
	req := b.request(unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(&netlink.Ndmsg{Family: uint8(family(addr)), Index: uint32(index), Flags: unix.NTF_PROXY, State: unix.NUD_PERMANENT})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, addr.AsSlice()))
	req.AddData(nl.NewRtAttr(ndaProtocol, nl.Uint8Attr(dataplaneNeighProto)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// delProxyNeigh deletes the proxy neighbor entry for addr on link index.
func (b *Backend) delProxyNeigh(index int, addr netip.Addr) error {
	return b.h.NeighDel(&netlink.Neigh{LinkIndex: index, Family: family(addr), Flags: unix.NTF_PROXY, IP: net.IP(addr.AsSlice())})
}

// listProxyNeighs dumps every proxy neighbor entry with its protocol.
func (b *Backend) listProxyNeighs() ([]rawNeigh, error) {
	req := b.request(unix.RTM_GETNEIGH, unix.NLM_F_DUMP)
	req.AddData(&netlink.Ndmsg{Family: unix.AF_UNSPEC, Flags: unix.NTF_PROXY})
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNEIGH)
	if err != nil {
		return nil, err
	}
	var out []rawNeigh
	for _, m := range msgs {
		if len(m) < sizeNdmsg || m[8+2]&unix.NTF_PROXY == 0 {
			continue
		}
		n := rawNeigh{Index: int(int32(binary.NativeEndian.Uint32(m[4:8])))}
		attrs, err := nl.ParseRouteAttr(m[sizeNdmsg:])
		if err != nil {
			return nil, fmt.Errorf("parse neighbor message: %w", err)
		}
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.NDA_DST:
				if ip, ok := netip.AddrFromSlice(at.Value); ok {
					n.Addr = ip.Unmap()
				}
			case ndaProtocol:
				if len(at.Value) > 0 {
					n.Proto = at.Value[0]
				}
			}
		}
		if n.Addr.IsValid() {
			out = append(out, n)
		}
	}
	return out, nil
}
