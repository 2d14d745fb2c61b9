// Package dataplane turns routerd's desired state into kernel objects: routes, interface
// addresses and proxy neighbors (netlink) and the rules of routerd's own nftables table.
//
// The model is declarative. A [State] lists every object routerd wants; a [Backend]
// reports the objects routerd owns right now; [Compute] produces the [Diff] between the
// two, and a [Reconciler] applies it. Applying the same State twice changes nothing the
// second time: the second Diff is empty. DryRun returns the same Diff without applying.
//
// Ownership is marked in the kernel itself, so a restarted routerd (or routerctl doctor)
// can tell routerd's objects from everyone else's:
//
//   - routes carry route protocol [RouteProtocol] (196, "routerd" in rt_protos);
//   - interface addresses carry address protocol [AddressProtocol] (IFA_PROTO);
//   - proxy neighbor entries carry neighbor protocol [NeighborProtocol] (NDA_PROTOCOL);
//   - nftables rules live in routerd's own table "inet routerd" ([TableName]).
//
// A backend lists and removes only objects carrying these markers; a foreign object is
// never touched, even when it has the same destination as one of ours.
//
// Backends: package dataplane/netlinkdp (the Linux kernel, inside a given network
// namespace), dataplane/fake (records what it would do as readable text; the dry-run
// backend of a daemon that is not root). Package dataplane must not import the plugin
// host (a test enforces it).
package dataplane
