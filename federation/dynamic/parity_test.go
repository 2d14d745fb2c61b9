package dynamic_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/plugins/event-to-remote-claim/claim"
	"routerd.net/routerd/schemas"
)

// TestStoredPartParity proposes the bundled event-to-remote-claim plugin's output for
// testdata/events/observed.json through the Manager into a real SQLite store, reads the
// parts back and requires every stored resource to be the plugin's document field for
// field (explicit false and zero values included), apart from the annotations routerd
// adds.
func TestStoredPartParity(t *testing.T) {
	data, err := os.ReadFile("../../testdata/events/observed.json")
	if err != nil {
		t.Fatal(err)
	}
	var events []abi.Event
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	req := &abi.Request{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest}
	req.Spec.Now, req.Spec.Events = now, events
	res := claim.Build(req) // the plugin's logic, run natively: the module outputs the same bytes

	b := subscribe.Batch{ID: "claims/1-10", Subscription: "claims", Group: "edge", Plugin: "event-to-remote-claim"}
	for i, e := range events {
		b.Events = append(b.Events, subscribe.Record{Seq: int64(i + 1), ID: e.ID, Group: e.Group, Type: e.Type,
			SourceNode: e.SourceNode, Subject: e.Subject, Payload: e.Payload})
	}

	st, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	mgr, err := dynamic.NewManager(dynamic.Options{Repo: dynamic.NewSQLRepo(st), Clock: clock.NewFake(now)})
	if err != nil {
		t.Fatal(err)
	}
	policy := &schemas.DynamicOverridePolicy{Metadata: schemas.ObjectMeta{Name: "claims"}, Spec: schemas.DynamicOverridePolicySpec{
		Allow: []schemas.OverrideAllow{{Source: "EventSubscription/claims", Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim"}}}}}}
	mgr.SetConfig(dynamic.Config{Policies: []*schemas.DynamicOverridePolicy{policy},
		Subscriptions: map[string]dynamic.Subscription{"claims": {Group: "edge", AllowedKinds: []string{"RemoteAddressClaim"}}}})
	ctx := context.Background()
	if err := mgr.HandleResult(ctx, b, subscribe.Result{TTL: 30 * time.Minute, Resources: res.Status.Resources, Doc: res}); err != nil {
		t.Fatal(err)
	}

	parts, err := mgr.List(ctx) // read back from SQLite
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]any{}
	for _, p := range parts {
		b, err := json.Marshal(p.Resource())
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		meta := doc["metadata"].(map[string]any)
		for _, k := range []string{dynamic.AnnotationSource, dynamic.AnnotationEventGroup, dynamic.AnnotationEventID, dynamic.AnnotationEventSubject} {
			if _, ok := meta["annotations"].(map[string]any)[k]; !ok {
				t.Errorf("part %s: annotation %s missing", p.Name, k)
			}
		}
		delete(meta, "annotations")
		stored[p.Name] = doc
	}
	if len(stored) != len(res.Status.Resources) {
		t.Fatalf("%d parts stored, want %d (one per proposed claim)", len(stored), len(res.Status.Resources))
	}
	for _, raw := range res.Status.Resources {
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		name := want["metadata"].(map[string]any)["name"].(string)
		if got := stored[name]; !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			t.Errorf("stored part %s differs from the plugin's output:\nplugin: %s\nstored: %s", name, raw, g)
		}
	}
}
