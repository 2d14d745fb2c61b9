package subscribe

import (
	"encoding/json"
	"fmt"
	"time"

	"routerd.net/routerd/abi"
)

// RequestOptions vary the PluginRequest BuildRequestWith encodes. The zero value is the
// daemon's subscription request.
type RequestOptions struct {
	// TriggerType is spec.trigger.type (default abi.TriggerEventSubscription).
	TriggerType string
	// Topic is spec.trigger.topic (default the batch's subscription).
	Topic string
	// DryRun sets spec.dryRun: the output will not be applied (routerctl plugin dry-run).
	DryRun bool
}

// BuildRequest encodes the on_events PluginRequest (abi.Request) the subscription engine
// sends for b: BuildRequestWith with the zero RequestOptions.
func BuildRequest(b Batch, now time.Time) ([]byte, error) {
	return BuildRequestWith(b, now, RequestOptions{})
}

// BuildRequestWith encodes the on_events PluginRequest (abi.Request) for b: batchID is
// b.ID, the trigger names the subscription (or o's trigger), events are the envelopes'
// JSON as they are (Record.JSON, never re-encoded), the context holds b.Context. It is
// the one request builder of the daemon and of `routerctl plugin dry-run`.
func BuildRequestWith(b Batch, now time.Time, o RequestOptions) ([]byte, error) {
	type spec struct {
		Trigger abi.Trigger       `json:"trigger"`
		Now     string            `json:"now"`
		Events  []json.RawMessage `json:"events"`
		Context struct {
			Resources []json.RawMessage `json:"resources"`
		} `json:"context"`
		DryRun bool `json:"dryRun,omitempty"`
	}
	req := struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		ABI        string `json:"abi"`
		BatchID    string `json:"batchID"`
		Spec       spec   `json:"spec"`
	}{APIVersion: abi.PluginAPIVersion, Kind: abi.KindPluginRequest, ABI: abi.RequestVersion, BatchID: b.ID}
	req.Spec.Trigger = abi.Trigger{Type: o.TriggerType, Topic: o.Topic}
	if req.Spec.Trigger.Type == "" {
		req.Spec.Trigger.Type = abi.TriggerEventSubscription
	}
	if req.Spec.Trigger.Topic == "" {
		req.Spec.Trigger.Topic = b.Subscription
	}
	req.Spec.DryRun = o.DryRun
	req.Spec.Now = now.UTC().Format(time.RFC3339Nano)
	req.Spec.Events = make([]json.RawMessage, 0, len(b.Events))
	for _, e := range b.Events {
		if len(e.JSON) == 0 {
			return nil, fmt.Errorf("subscribe: batch %s: event %s has no JSON", b.ID, e.ID)
		}
		req.Spec.Events = append(req.Spec.Events, e.JSON)
	}
	req.Spec.Context.Resources = b.Context
	if req.Spec.Context.Resources == nil {
		req.Spec.Context.Resources = []json.RawMessage{}
	}
	out, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("subscribe: batch %s: encode request: %w", b.ID, err)
	}
	return out, nil
}

// ParseResult decodes a PluginResult document with abi.DecodeResult (unknown fields are
// ignored, as a newer ABI minor may add some) and parses its TTL.
func ParseResult(data []byte) (Result, error) {
	doc, err := abi.DecodeResult(data)
	if err != nil {
		return Result{}, fmt.Errorf("decode result: %w", err)
	}
	res := Result{Resources: doc.Status.Resources, Doc: doc}
	if doc.Status.TTL != "" {
		d, err := time.ParseDuration(doc.Status.TTL)
		if err != nil || d < 0 {
			return Result{}, fmt.Errorf("decode result: status.ttl %q: want a duration such as 30m", doc.Status.TTL)
		}
		res.TTL = d
	}
	return res, nil
}
