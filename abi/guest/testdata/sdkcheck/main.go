// Command sdkcheck is a test plugin for the guest SDK: on_events mirrors the decoded
// request into a result, plan panics, and execute calls every host function and reports
// what they returned.
package main

import (
	"fmt"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{
		Name:         "sdkcheck",
		Version:      "0.0.1",
		Capabilities: []abi.Capability{abi.CapLog, abi.CapKV, abi.CapNow, abi.CapEventEmit},
	})
	guest.OnEvents(mirror)
	guest.Plan(func(*abi.Request) (*abi.Result, error) { panic("deliberate panic in plan") })
	guest.Execute(execute)
}

// mirror turns every part of the request into the result, so a test can check that the
// guest codec decoded and encoded all of it.
func mirror(req *abi.Request) (*abi.Result, error) {
	res := &abi.Result{Status: abi.ResultStatus{
		ObservedAt: req.Spec.Now,
		TTL:        "1m",
		Resources:  req.Spec.Context.Resources,
	}}
	for _, ev := range req.Spec.Events {
		attrs := map[string]string{"id": ev.ID, "group": ev.Group, "sourceNode": ev.SourceNode,
			"dedupeKey": ev.DedupeKey, "observedAt": ev.ObservedAt, "expiresAt": ev.ExpiresAt}
		for k, v := range ev.Payload {
			attrs["payload."+k] = v
		}
		res.Status.Events = append(res.Status.Events, abi.ResultEvent{Type: ev.Type, Message: ev.Subject, Attributes: attrs})
	}
	if p := req.Spec.ActionPlan; p != nil {
		res.Status.ActionPlans = append(res.Status.ActionPlans, *p)
	}
	res.Status.Directives = append(res.Status.Directives, abi.Directive{Op: "note",
		Target: abi.ObjectRef{APIVersion: req.APIVersion, Kind: req.Kind, Name: req.BatchID},
		Reason: fmt.Sprintf("%s/%s dryRun=%v", req.Spec.Trigger.Type, req.Spec.Trigger.Topic, req.Spec.DryRun)})
	return res, nil
}

// execute calls each host function and reports the outcome per call.
func execute(req *abi.Request) (*abi.Result, error) {
	var results []abi.ActionResult
	report := func(name string, attrs map[string]string, err error) {
		r := abi.ActionResult{Name: name, Outcome: abi.ActionSucceeded, Attributes: attrs}
		if err != nil {
			r.Outcome, r.Message = abi.ActionFailed, err.Error()
		}
		results = append(results, r)
	}
	report("log", nil, guest.Log(abi.LogWarn, "hello from sdkcheck", map[string]string{"batch": req.BatchID}))
	report("kv_set", nil, guest.KVSet("greeting", []byte("hi\x00there")))
	v, found, err := guest.KVGet("greeting")
	report("kv_get", map[string]string{"value": string(v), "found": fmt.Sprint(found)}, err)
	_, found, err = guest.KVGet("missing")
	report("kv_get_missing", map[string]string{"found": fmt.Sprint(found)}, err)
	now, err := guest.Now()
	report("now", map[string]string{"now": now.UTC().Format("2006-01-02T15:04:05Z07:00")}, err)
	id, err := guest.EmitEvent(abi.EmitRequest{Type: "routerd.test", Subject: "s"})
	report("event_emit", map[string]string{"id": id}, err)
	// Extism kernel features: plugin config, instance variables, the Extism log.
	mode, ok := guest.ConfigValue("mode")
	_, missing := guest.ConfigValue("missing")
	report("config", map[string]string{"mode": mode, "found": fmt.Sprint(ok), "missingFound": fmt.Sprint(missing)}, nil)
	calls, _ := guest.Var("calls")
	calls = append(calls, 'x')
	guest.SetVar("calls", calls)
	again, _ := guest.Var("calls")
	report("vars", map[string]string{"calls": string(again)}, nil)
	guest.ExtismLog("info", "sdkcheck execute ran")
	return &abi.Result{Status: abi.ResultStatus{ActionResults: results}}, nil
}

func main() {}
