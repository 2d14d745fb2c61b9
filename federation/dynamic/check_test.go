package dynamic_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

// TestProposedClaimsAreCheckedLikeStatic: a plugin's claim goes through the same semantic
// and reference checks as a claim in a config file, against the static config plus the
// live parts. testdata/config/valid has AddressMobilityDomain lab = 10.88.0.0/16.
func TestProposedClaimsAreCheckedLikeStatic(t *testing.T) {
	cfg, err := schemas.LoadDir("../../testdata/config/valid")
	if err != nil {
		t.Fatal(err)
	}
	claim := func(name, address, domain, peer string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":%q},
			"spec":{"domainRef":%q,"address":%q,"ownerSide":"onprem","delivery":{"peerRef":%q,"mode":"route"}}}`, name, domain, address, peer))
	}
	tests := []struct {
		name   string
		res    json.RawMessage
		reason string // "" = stored
		detail string
	}{
		{name: "inside the domain", res: claim("onprem-10-88-61-9", "10.88.61.9", "lab", "onprem-main")},
		{name: "outside the domain's prefix", res: claim("onprem-192-0-2-9", "192.0.2.9", "lab", "onprem-main"),
			reason: schemas.ProposedReference, detail: "outside the prefix 10.88.0.0/16 of domain lab"},
		{name: "not an address", res: claim("onprem-x", "not-an-ip", "lab", "onprem-main"),
			reason: "invalid", detail: "not-an-ip"},
		{name: "unknown domain", res: claim("onprem-10-88-60-10", "10.88.60.10", "nope", "onprem-main"),
			reason: schemas.ProposedReference, detail: "nope"},
		{name: "unknown overlay peer", res: claim("onprem-10-88-60-11", "10.88.60.11", "lab", "nobody"),
			reason: schemas.ProposedReference, detail: "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
			mgr, err := dynamic.NewManager(dynamic.Options{Repo: dynamic.NewSQLRepo(st), Clock: clock.NewFake(now)})
			if err != nil {
				t.Fatal(err)
			}
			mgr.SetConfig(dynamic.ConfigFrom(cfg))
			b := subscribe.Batch{ID: "b1", Subscription: "claims-from-peers", Group: "sam", Plugin: "event-to-remote-claim",
				Events: []subscribe.Record{{Seq: 1, ID: "ev1", Group: "sam", Type: "routerd.client.ipv4.observed", SourceNode: "router-b", Subject: "x"}}}
			ctx := context.Background()
			if err := mgr.HandleResult(ctx, b, subscribe.Result{TTL: 30 * time.Minute, Resources: []json.RawMessage{tt.res}}); err != nil {
				t.Fatal(err)
			}
			parts, _ := mgr.Live(ctx)
			audit, _ := st.ListAudit(ctx, store.AuditFilter{})
			var rejected []string
			for _, a := range audit {
				if a.Outcome == "rejected" || strings.Contains(a.Action, "reject") {
					rejected = append(rejected, a.Action+" "+a.Detail)
				}
			}
			if tt.reason == "" {
				if len(parts) != 1 || len(rejected) != 0 {
					t.Fatalf("parts %d, rejections %q; want the claim stored", len(parts), rejected)
				}
				return
			}
			if len(parts) != 0 {
				t.Fatalf("the claim became a live part")
			}
			if len(rejected) != 1 || !strings.Contains(rejected[0], tt.reason) || !strings.Contains(rejected[0], tt.detail) {
				t.Fatalf("audit = %q, want one rejection naming %q and %q", rejected, tt.reason, tt.detail)
			}
		})
	}
}
