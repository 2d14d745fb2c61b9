package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/host"
)

// replayReport is the output of dry-run --replay.
type replayReport struct {
	Plugin     string        `json:"plugin"`
	Hook       string        `json:"hook"`
	Installed  replayVersion `json:"installed"`
	Candidate  replayVersion `json:"candidate"`
	Since      time.Time     `json:"since"`
	Events     int           `json:"events"`
	Batches    int           `json:"batches"`
	Identical  int           `json:"identical"`
	Differing  int           `json:"differing"`
	Diffs      []replayDiff  `json:"diffs"`
	Conclusion string        `json:"conclusion"`
}

// replayVersion describes one side of a replay.
type replayVersion struct {
	File       string  `json:"file"`
	Version    string  `json:"version"`
	Digest     string  `json:"digest"`
	DurationUs float64 `json:"durationUs"`
	Failures   int     `json:"failures"`
}

// replayDiff is one batch whose outputs differ.
type replayDiff struct {
	Batch          int      `json:"batch"`
	EventIDs       []string `json:"eventIDs"`
	InstalledError string   `json:"installedError,omitempty"`
	CandidateError string   `json:"candidateError,omitempty"`
	OnlyInstalled  []string `json:"onlyInstalled,omitempty"`
	OnlyCandidate  []string `json:"onlyCandidate,omitempty"`
	Changed        []string `json:"changed,omitempty"`
	Other          []string `json:"other,omitempty"`
}

func runReplay(cmd *cobra.Command, env *pluginEnv, name string, hook abi.Hook, o dryRunOptions) error {
	ctx := cmd.Context()
	now := time.Now()
	since, err := parseSince(o.replay, now)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.against); err != nil {
		return fmt.Errorf("--against %s: %w", o.against, err)
	}
	subName, _, subRes := subscriptionFor(env, name, o.subscription)
	o.since = since.Format(time.RFC3339Nano)
	f, err := eventFilter(o, subRes, now)
	if err != nil {
		return err
	}
	events, err := storeEvents(ctx, env, f)
	if err != nil {
		return err
	}
	ctxRes, err := contextFor(env, name)
	if err != nil {
		return err
	}
	h, err := env.newHost(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	spec, err := env.loadOne(ctx, h, name)
	if err != nil {
		return fmt.Errorf("installed version: %w", err)
	}
	cand := spec
	cand.Name, cand.Module, cand.SHA256, cand.Defaulted = name+"@candidate", filepath.Base(o.against), "", false
	if err := h.LoadFile(ctx, o.against, cand); err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	ins, _ := h.Inspect(name)
	can, _ := h.Inspect(cand.Name)
	rep := replayReport{
		Plugin: name, Hook: string(hook), Since: since, Events: len(events), Diffs: []replayDiff{},
		Installed: replayVersion{File: ins.File, Version: ins.Status.Version, Digest: ins.Status.Digest},
		Candidate: replayVersion{File: o.against, Version: can.Status.Version, Digest: can.Status.Digest},
	}
	size := o.batchSize
	if size <= 0 {
		size = 10
	}
	var tIns, tCan time.Duration
	for i, b := range batches(events, size) {
		if len(b) == 0 {
			continue
		}
		rep.Batches++
		in, err := subscribe.BuildRequestWith(subscribe.Batch{ID: fmt.Sprintf("dry-run-%d", i), Subscription: subName, Plugin: name, Context: ctxRes, Events: b},
			now, subscribe.RequestOptions{TriggerType: abi.TriggerDryRun, Topic: "replay", DryRun: true})
		if err != nil {
			return err
		}
		outA, trA, errA := h.CallTraced(ctx, name, hook, in)
		outB, trB, errB := h.CallTraced(ctx, cand.Name, hook, in)
		tIns += trA.Duration
		tCan += trB.Duration
		d := replayDiff{Batch: i}
		for _, e := range b {
			d.EventIDs = append(d.EventIDs, e.ID)
		}
		if errA != nil {
			rep.Installed.Failures++
			d.InstalledError = errA.Error()
		}
		if errB != nil {
			rep.Candidate.Failures++
			d.CandidateError = errB.Error()
		}
		same := errA == nil && errB == nil && compareResults(outA, outB, &d)
		if same || (errA != nil && errB != nil && ErrorKindEqual(errA, errB)) {
			rep.Identical++
			continue
		}
		rep.Differing++
		rep.Diffs = append(rep.Diffs, d)
	}
	rep.Installed.DurationUs = float64(tIns.Nanoseconds()) / 1e3
	rep.Candidate.DurationUs = float64(tCan.Nanoseconds()) / 1e3
	if rep.Differing == 0 {
		rep.Conclusion = fmt.Sprintf("identical on %d events in %d batches", rep.Events, rep.Batches)
	} else {
		rep.Conclusion = fmt.Sprintf("%d of %d batches differ", rep.Differing, rep.Batches)
	}
	if err := render(cmd, rep, func() *table { return replayTable(rep) }); err != nil {
		return err
	}
	if rep.Differing > 0 {
		return silentFailure
	}
	return nil
}

// ErrorKindEqual reports whether two call errors are of the same host error kind (both
// versions failing the same way is not a difference).
func ErrorKindEqual(a, b error) bool { return host.ErrorKind(a) == host.ErrorKind(b) }

// compareResults compares two PluginResults resource by resource (by Kind/name), then
// the rest of the status; it fills d and reports whether they are the same.
func compareResults(a, b []byte, d *replayDiff) bool {
	ra, errA := abi.DecodeResult(a)
	rb, errB := abi.DecodeResult(b)
	if errA != nil || errB != nil {
		d.Other = append(d.Other, "undecodable result")
		return false
	}
	ka, kb := resourceMap(ra.Status.Resources), resourceMap(rb.Status.Resources)
	for k, va := range ka {
		vb, ok := kb[k]
		switch {
		case !ok:
			d.OnlyInstalled = append(d.OnlyInstalled, k)
		case canonical(va) != canonical(vb):
			d.Changed = append(d.Changed, k)
		}
	}
	for k := range kb {
		if _, ok := ka[k]; !ok {
			d.OnlyCandidate = append(d.OnlyCandidate, k)
		}
	}
	slices.Sort(d.OnlyInstalled)
	slices.Sort(d.OnlyCandidate)
	slices.Sort(d.Changed)
	fields := []struct {
		name string
		a, b any
	}{
		{"status.ttl", ra.Status.TTL, rb.Status.TTL},
		{"status.directives", ra.Status.Directives, rb.Status.Directives},
		{"status.actionPlans", ra.Status.ActionPlans, rb.Status.ActionPlans},
		{"status.actionResults", ra.Status.ActionResults, rb.Status.ActionResults},
		{"status.events", ra.Status.Events, rb.Status.Events},
	}
	for _, f := range fields {
		if canonicalValue(f.a) != canonicalValue(f.b) {
			d.Other = append(d.Other, f.name)
		}
	}
	return len(d.OnlyInstalled)+len(d.OnlyCandidate)+len(d.Changed)+len(d.Other) == 0
}

// resourceMap keys resources by "Kind/name" (or their position when unnamed).
func resourceMap(res []json.RawMessage) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(res))
	for i, r := range res {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		key := fmt.Sprintf("resources[%d]", i)
		if json.Unmarshal(r, &head) == nil && head.Kind != "" {
			key = head.Kind + "/" + head.Metadata.Name
		}
		m[key] = r
	}
	return m
}

// canonical re-encodes JSON with sorted keys so formatting differences do not count.
func canonical(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return canonicalValue(v)
}

func canonicalValue(v any) string {
	b, _ := json.Marshal(v)
	var x any
	if json.Unmarshal(b, &x) != nil {
		return string(b)
	}
	c, _ := json.Marshal(x)
	return string(c)
}

func replayTable(r replayReport) *table {
	t := &table{header: []string{"BATCH", "EVENTS", "DIFFERENCE"}}
	for _, d := range r.Diffs {
		var parts []string
		if d.InstalledError != "" {
			parts = append(parts, "installed failed: "+truncateText(d.InstalledError, 100))
		}
		if d.CandidateError != "" {
			parts = append(parts, "candidate failed: "+truncateText(d.CandidateError, 100))
		}
		if len(d.OnlyInstalled) > 0 {
			parts = append(parts, "only installed: "+strings.Join(d.OnlyInstalled, ","))
		}
		if len(d.OnlyCandidate) > 0 {
			parts = append(parts, "only candidate: "+strings.Join(d.OnlyCandidate, ","))
		}
		if len(d.Changed) > 0 {
			parts = append(parts, "changed: "+strings.Join(d.Changed, ","))
		}
		if len(d.Other) > 0 {
			parts = append(parts, "differs in "+strings.Join(d.Other, ","))
		}
		t.addRow(d.Batch, strings.Join(d.EventIDs, ","), strings.Join(parts, "; "))
	}
	t.addRow("-", r.Events, fmt.Sprintf("installed %s (%s) vs candidate %s (%s): %s; %.0fµs vs %.0fµs",
		dash(r.Installed.Version), shortDigest(r.Installed.Digest), dash(r.Candidate.Version), shortDigest(r.Candidate.Digest),
		r.Conclusion, r.Installed.DurationUs, r.Candidate.DurationUs))
	return t
}
