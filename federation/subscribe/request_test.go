package subscribe

import (
	"encoding/json"
	"testing"
	"time"

	"routerd.net/routerd/abi"
)

func TestBuildRequestWith(t *testing.T) {
	b := Batch{ID: "claims/1-1", Subscription: "claims", Events: []Record{{ID: "e1", JSON: json.RawMessage(`{"id":"e1","group":"lab","type":"t"}`)}}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		opts  RequestOptions
		typ   string
		topic string
		dry   bool
	}{
		{name: "subscription (zero options)", typ: abi.TriggerEventSubscription, topic: "claims"},
		{name: "dry-run", opts: RequestOptions{TriggerType: abi.TriggerDryRun, Topic: "routerctl", DryRun: true}, typ: abi.TriggerDryRun, topic: "routerctl", dry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := BuildRequestWith(b, now, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var req abi.Request
			if err := json.Unmarshal(out, &req); err != nil {
				t.Fatal(err)
			}
			if req.BatchID != b.ID || req.Spec.Trigger.Type != tt.typ || req.Spec.Trigger.Topic != tt.topic || req.Spec.DryRun != tt.dry ||
				!req.Spec.Now.Equal(now) || len(req.Spec.Events) != 1 || req.Spec.Events[0].ID != "e1" {
				t.Fatalf("request %s", out)
			}
			if tt.opts == (RequestOptions{}) {
				same, err := BuildRequest(b, now)
				if err != nil || string(same) != string(out) {
					t.Fatalf("BuildRequest differs from BuildRequestWith with zero options:\n%s\n%s", same, out)
				}
			}
		})
	}
}
