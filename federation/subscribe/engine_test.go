package subscribe

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testGroup = "lab"
	testType  = "routerd.client.ipv4.observed"
)

func testSpec() Spec {
	return Spec{Name: "claims", Group: testGroup, Types: []string{testType}, Plugin: "event-to-remote-claim"}
}

func TestSpecMatches(t *testing.T) {
	base := Record{Group: testGroup, Type: testType, SourceNode: "router-a", Subject: "10.88.60.9",
		Payload: map[string]string{"address": "10.88.60.9", "ownerSide": "onprem"}}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	tests := []struct {
		name string
		spec func(*Spec)
		rec  Record
		want bool
	}{
		{name: "plain match", rec: base, want: true},
		{name: "other group", rec: with(func(r *Record) { r.Group = "other" }), want: false},
		{name: "other type", rec: with(func(r *Record) { r.Type = "neighbor.moved" }), want: false},
		{name: "source included", spec: func(s *Spec) { s.SourceNodes = []string{"router-b", "router-a"} }, rec: base, want: true},
		{name: "source not included", spec: func(s *Spec) { s.SourceNodes = []string{"router-b"} }, rec: base, want: false},
		{name: "source excluded", spec: func(s *Spec) { s.ExcludeSourceNodes = []string{"router-a"} }, rec: base, want: false},
		{name: "exclude other source", spec: func(s *Spec) { s.ExcludeSourceNodes = []string{"router-c"} }, rec: base, want: true},
		{name: "subject prefix", spec: func(s *Spec) { s.SubjectPrefixes = []string{"192.", "10.88."} }, rec: base, want: true},
		{name: "subject prefix miss", spec: func(s *Spec) { s.SubjectPrefixes = []string{"10.99."} }, rec: base, want: false},
		{name: "payload equal", spec: func(s *Spec) { s.Payload = map[string]string{"ownerSide": "onprem"} }, rec: base, want: true},
		{name: "payload differs", spec: func(s *Spec) { s.Payload = map[string]string{"ownerSide": "cloud"} }, rec: base, want: false},
		{name: "payload key missing", spec: func(s *Spec) { s.Payload = map[string]string{"domain": "lab"} }, rec: base, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec()
			if tt.spec != nil {
				tt.spec(&s)
			}
			if got := s.Matches(tt.rec); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

// step is one moment of a timer scenario: at offset `at`, `add` events arrive, or a batch
// of `expect` seqs must be dispatched at exactly that offset (not earlier).
type step struct {
	at     time.Duration
	add    int
	expect []int64
}

func TestBatchTimers(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		window   time.Duration
		debounce time.Duration
		maxBatch int
		steps    []step
	}{
		{name: "no window no debounce dispatches at once", steps: []step{
			{at: 0, add: 1}, {at: 0, expect: []int64{1}},
			{at: 10 * ms, add: 2}, {at: 10 * ms, expect: []int64{2, 3}},
		}},
		{name: "batchWindow from the first event", window: 100 * ms, steps: []step{
			{at: 0, add: 1}, {at: 30 * ms, add: 1}, {at: 90 * ms, add: 1}, {at: 100 * ms, expect: []int64{1, 2, 3}},
			{at: 150 * ms, add: 1}, {at: 250 * ms, expect: []int64{4}},
		}},
		{name: "debounce restarts on each event", debounce: 50 * ms, steps: []step{
			{at: 0, add: 1}, {at: 30 * ms, add: 1}, {at: 70 * ms, add: 1}, {at: 120 * ms, expect: []int64{1, 2, 3}},
		}},
		{name: "debounce bounded by batchWindow", window: 100 * ms, debounce: 50 * ms, steps: []step{
			{at: 0, add: 1}, {at: 40 * ms, add: 1}, {at: 80 * ms, add: 1}, {at: 100 * ms, expect: []int64{1, 2, 3}},
		}},
		{name: "debounce quiet before the window ends", window: 200 * ms, debounce: 50 * ms, steps: []step{
			{at: 0, add: 1}, {at: 20 * ms, add: 1}, {at: 70 * ms, expect: []int64{1, 2}},
			{at: 100 * ms, add: 1}, {at: 150 * ms, expect: []int64{3}},
		}},
		{name: "full batch goes at once, the rest waits its window", window: time.Second, maxBatch: 2, steps: []step{
			{at: 0, add: 3}, {at: 0, expect: []int64{1, 2}}, {at: time.Second, expect: []int64{3}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, Options{})
			spec := testSpec()
			spec.BatchWindow, spec.Debounce, spec.MaxBatchEvents = tt.window, tt.debounce, tt.maxBatch
			if err := h.eng.Update([]Spec{spec}); err != nil {
				t.Fatal(err)
			}
			h.waitStep("start", func() bool { return h.status("claims").State == StateIdle })
			pending := 0
			for i, s := range tt.steps {
				at := h.start.Add(s.at)
				if s.add > 0 {
					h.clk.Set(at)
					for range s.add {
						h.store.add(testGroup, testType, "router-a", "10.0.0.1", nil)
					}
					pending += s.add
					h.eng.Notify()
					now := i+1 < len(tt.steps) && tt.steps[i+1].expect != nil && tt.steps[i+1].at == s.at
					if !now {
						want := pending
						h.waitStep("events queued", func() bool {
							st := h.status("claims")
							return st.Pending == want && st.State == StateWaiting
						})
						h.noCall()
					}
					continue
				}
				if !immediate(tt.steps, i) {
					// The runner armed its timer for exactly this moment, and nothing fires before.
					if p := h.clk.Pending(); len(p) == 0 || !p[0].Equal(at) {
						t.Fatalf("step %d: timers armed at %v, want first at +%v", i, offsets(h.start, p), s.at)
					}
					h.clk.Set(at.Add(-time.Nanosecond))
					h.noCall()
					h.clk.Set(at)
				}
				c := h.waitCall()
				if !c.at.Equal(at) {
					t.Fatalf("step %d: dispatched at +%v, want +%v", i, c.at.Sub(h.start), s.at)
				}
				if !reflect.DeepEqual(c.seqs, s.expect) {
					t.Fatalf("step %d: batch %v, want %v", i, c.seqs, s.expect)
				}
				pending -= len(s.expect)
				want := pending
				h.waitStep("batch handled", func() bool {
					st := h.status("claims")
					return st.Pending == want && st.State != StateRunning
				})
			}
			h.noCall()
		})
	}
}

func immediate(steps []step, i int) bool {
	return i > 0 && steps[i-1].add > 0 && steps[i-1].at == steps[i].at
}

func offsets(start time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, x := range ts {
		out[i] = x.Sub(start)
	}
	return out
}

func TestRetryWithBackoffKeepsBatchID(t *testing.T) {
	h := newHarness(t, nil, Options{RetryBase: 200 * time.Millisecond, RetryMax: 300 * time.Millisecond})
	h.plugin.fail.Store(3)
	if err := h.eng.Update([]Spec{testSpec()}); err != nil {
		t.Fatal(err)
	}
	h.waitStep("start", func() bool { return h.status("claims").State == StateIdle })
	h.store.add(testGroup, testType, "router-a", "10.0.0.1", nil)
	h.store.add(testGroup, testType, "router-a", "10.0.0.2", nil)
	h.eng.Notify()

	// Attempts at +0 (fails), +200ms (fails), +500ms (fails; backoff capped at 300ms), +800ms ok.
	wantAt := []time.Duration{0, 200 * time.Millisecond, 500 * time.Millisecond, 800 * time.Millisecond}
	for i, off := range wantAt {
		if i > 0 {
			h.waitStep("retry armed", func() bool { return h.status("claims").State == StateRetrying })
			st := h.status("claims")
			if st.LastError == "" || st.Attempts != i || st.Failures != int64(i) {
				t.Fatalf("attempt %d: status %+v, want lastError set, attempts=failures=%d", i, st, i)
			}
			if st.NextRetryAt == nil || !st.NextRetryAt.Equal(h.start.Add(off)) {
				t.Fatalf("attempt %d: nextRetryAt %v, want +%v", i, st.NextRetryAt, off)
			}
			if c := h.store.cursor("claims"); c != 0 {
				t.Fatalf("cursor moved to %d while the batch fails", c)
			}
			h.clk.Set(h.start.Add(off))
		}
		c := h.waitCall()
		if !c.at.Equal(h.start.Add(off)) || c.batchID != "claims/1-2" {
			t.Fatalf("attempt %d: call %s at +%v, want claims/1-2 at +%v", i, c.batchID, c.at.Sub(h.start), off)
		}
	}
	h.waitStep("success", func() bool { return h.status("claims").State == StateIdle })
	st := h.status("claims")
	if st.Cursor != 2 || st.Batches != 1 || st.Failures != 3 || st.LastError != "" || st.Pending != 0 {
		t.Fatalf("status after recovery %+v", st)
	}
	runs := h.store.allRuns()
	var outcomes []string
	for _, r := range runs {
		outcomes = append(outcomes, r.Outcome)
		if r.BatchID != "claims/1-2" || r.Events != 2 {
			t.Fatalf("run %+v", r)
		}
	}
	if strings.Join(outcomes, ",") != "error,error,error,ok" || runs[3].Attempt != 4 || runs[3].Resources != 2 {
		t.Fatalf("runs %+v", runs)
	}
}

func TestCursorSurvivesRestart(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, st, Options{})
	spec := testSpec()
	spec.ExcludeSourceNodes = []string{"router-b"}
	if err := h.eng.Update([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	h.waitStep("start", func() bool { return h.status("claims").State == StateIdle })
	st.add(testGroup, testType, "router-a", "10.0.0.1", nil)
	st.add(testGroup, testType, "router-a", "10.0.0.2", nil)
	h.eng.Notify()
	if c := h.waitCall(); c.batchID != "claims/1-2" {
		t.Fatalf("first batch %s", c.batchID)
	}
	h.waitStep("cursor", func() bool { return st.cursor("claims") == 2 })
	// An event that does not match still moves the cursor, once nothing is pending.
	st.add(testGroup, testType, "router-b", "10.0.0.3", nil)
	h.eng.Notify()
	h.waitStep("skip", func() bool { return st.cursor("claims") == 3 })
	// A batch that fails is retried after a restart with the same id.
	h.plugin.fail.Store(1)
	st.add(testGroup, testType, "router-a", "10.0.0.4", nil)
	h.eng.Notify()
	if c := h.waitCall(); c.batchID != "claims/4-4" {
		t.Fatalf("failing batch %s", c.batchID)
	}
	h.waitStep("retrying", func() bool { return h.status("claims").State == StateRetrying })
	if err := h.eng.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	st.add(testGroup, testType, "router-a", "10.0.0.5", nil)

	h2 := newHarness(t, st, Options{})
	if err := h2.eng.Update([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	c := h2.waitCall()
	if c.batchID != "claims/4-5" || !reflect.DeepEqual(c.seqs, []int64{4, 5}) {
		t.Fatalf("after restart: batch %s %v, want claims/4-5 [4 5]", c.batchID, c.seqs)
	}
	h2.waitStep("cursor", func() bool { return st.cursor("claims") == 5 })
	h2.noCall()
}

func TestWatchSeesEventsFromAnotherProcess(t *testing.T) {
	h := newHarness(t, nil, Options{PollInterval: 20 * time.Millisecond})
	if err := h.eng.Update([]Spec{testSpec()}); err != nil {
		t.Fatal(err)
	}
	h.waitStep("start", func() bool { return h.status("claims").State == StateIdle })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.eng.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	if !h.clk.WaitFor(ctx, func(p []time.Time) bool { return len(p) == 1 }) {
		t.Fatal("watch armed no poll timer")
	}
	h.store.add(testGroup, testType, "router-a", "10.0.0.1", nil) // no Notify: only the poll sees it
	h.noCall()
	h.clk.Advance(20 * time.Millisecond)
	c := h.waitCall()
	if c.batchID != "claims/1-1" || !c.at.Equal(h.start.Add(20*time.Millisecond)) {
		t.Fatalf("call %s at +%v", c.batchID, c.at.Sub(h.start))
	}
}

func TestUpdate(t *testing.T) {
	h := newHarness(t, nil, Options{})
	a, b := testSpec(), testSpec()
	b.Name = "other"
	if err := h.eng.Update([]Spec{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := len(h.eng.Status()); got != 2 {
		t.Fatalf("%d subscriptions, want 2", got)
	}
	b.BatchWindow = time.Second
	if err := h.eng.Update([]Spec{b}); err != nil {
		t.Fatal(err)
	}
	st := h.eng.Status()
	if len(st) != 1 || st[0].Name != "other" {
		t.Fatalf("status after update %+v", st)
	}
	bad := []struct {
		name  string
		specs []Spec
		want  string
	}{
		{name: "no types", specs: []Spec{{Name: "x", Group: "g", Plugin: "p"}}, want: "match.types is empty"},
		{name: "no plugin", specs: []Spec{{Name: "x", Group: "g", Types: []string{"t"}}}, want: "pluginRef is empty"},
		{name: "duplicate", specs: []Spec{a, a}, want: "listed twice"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := h.eng.Update(tt.specs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Update error %v, want %q", err, tt.want)
			}
		})
	}
	if len(h.eng.Status()) != 1 {
		t.Fatal("a refused update changed the running set")
	}
	_ = h.eng.Close()
	if err := h.eng.Update([]Spec{a}); err == nil {
		t.Fatal("Update after Close succeeded")
	}
}

func TestRequestAndResult(t *testing.T) {
	b := Batch{ID: "s/1-2", Subscription: "s", Events: []Record{
		{Seq: 1, ID: "a", JSON: json.RawMessage(`{"id":"a"}`)}, {Seq: 2, ID: "b", JSON: json.RawMessage(`{"id":"b"}`)}}}
	req, err := BuildRequest(b, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginRequest","abi":"routerd.plugin/v1.0","batchID":"s/1-2",` +
		`"spec":{"trigger":{"type":"EventSubscription","topic":"s"},"now":"2026-01-02T03:04:05Z","events":[{"id":"a"},{"id":"b"}],"context":{"resources":[]}}}`
	if string(req) != want {
		t.Fatalf("request\n%s\nwant\n%s", req, want)
	}
	b.Context = []json.RawMessage{json.RawMessage(`{"kind":"AddressMobilityDomain","metadata":{"name":"lab"}}`)}
	req, err = BuildRequest(b, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil || !strings.Contains(string(req), `"context":{"resources":[{"kind":"AddressMobilityDomain","metadata":{"name":"lab"}}]}`) {
		t.Fatalf("request with context: %s %v", req, err)
	}
	if _, err := BuildRequest(Batch{ID: "x", Events: []Record{{ID: "e"}}}, time.Now()); err == nil {
		t.Fatal("request with an event without JSON accepted")
	}

	tests := []struct {
		name    string
		in      string
		wantTTL time.Duration
		wantN   int
		wantErr string
	}{
		{name: "claims", in: `{"status":{"ttl":"30m","resources":[{"kind":"A"},{"kind":"B"}]}}`, wantTTL: 30 * time.Minute, wantN: 2},
		{name: "no ttl", in: `{"apiVersion":"plugin.routerd.net/v1alpha1","kind":"PluginResult","status":{}}`},
		{name: "unknown fields ignored", in: `{"status":{"future":1,"resources":[{}]},"extra":true}`, wantN: 1},
		{name: "bad ttl", in: `{"status":{"ttl":"soon"}}`, wantErr: "status.ttl"},
		{name: "not json", in: `garbage`, wantErr: "decode result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseResult([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || r.TTL != tt.wantTTL || len(r.Resources) != tt.wantN {
				t.Fatalf("ParseResult = %+v, %v", r, err)
			}
		})
	}
}

func TestCursorLoadRetried(t *testing.T) {
	st := newMemStore()
	st.failGet = errors.New("database is locked")
	h := newHarness(t, st, Options{RetryBase: time.Second})
	if err := h.eng.Update([]Spec{testSpec()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !h.clk.WaitFor(ctx, func(p []time.Time) bool { return len(p) == 1 }) {
		t.Fatal("no retry timer after a failed cursor load")
	}
	if s := h.status("claims"); s.State != StateStarting || !strings.Contains(s.LastError, "locked") {
		t.Fatalf("status %+v", s)
	}
	st.mu.Lock()
	st.failGet = nil
	st.mu.Unlock()
	h.clk.Advance(time.Second)
	h.waitStep("started", func() bool { return h.status("claims").State == StateIdle })
}

// TestUpdateChangedSpecResumesFromCursor: a changed subscription restarts from its
// durable cursor (nothing dispatched twice) and runs with the new settings.
func TestUpdateChangedSpecResumesFromCursor(t *testing.T) {
	h := newHarness(t, nil, Options{})
	spec := testSpec()
	if err := h.eng.Update([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	h.waitStep("start", func() bool { return h.status("claims").State == StateIdle })
	h.store.add(testGroup, testType, "router-a", "10.0.0.1", nil)
	h.eng.Notify()
	if c := h.waitCall(); c.batchID != "claims/1-1" {
		t.Fatalf("batch %s", c.batchID)
	}
	h.waitStep("cursor", func() bool { return h.store.cursor("claims") == 1 })
	spec.BatchWindow = 50 * time.Millisecond
	if err := h.eng.Update([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	h.waitStep("restart", func() bool { return h.status("claims").State == StateIdle })
	h.noCall()
	h.clk.Set(h.start.Add(time.Second))
	h.store.add(testGroup, testType, "router-a", "10.0.0.2", nil)
	h.eng.Notify()
	h.waitStep("waiting", func() bool { return h.status("claims").State == StateWaiting })
	h.clk.Set(h.start.Add(time.Second + 50*time.Millisecond))
	if c := h.waitCall(); c.batchID != "claims/2-2" || !c.at.Equal(h.start.Add(time.Second+50*time.Millisecond)) {
		t.Fatalf("batch %s at +%v", c.batchID, c.at.Sub(h.start))
	}
}

func TestExpiredEventsSkipped(t *testing.T) {
	h := newHarness(t, nil, Options{})
	if err := h.eng.Update([]Spec{testSpec()}); err != nil {
		t.Fatal(err)
	}
	h.waitStep("start", func() bool { return h.status("claims").State == StateIdle })
	h.store.addExpiring(testGroup, testType, "router-a", "10.0.0.1", nil, h.start)                // expired now
	h.store.addExpiring(testGroup, testType, "router-a", "10.0.0.2", nil, h.start.Add(time.Hour)) // live
	h.eng.Notify()
	c := h.waitCall()
	if !reflect.DeepEqual(c.seqs, []int64{2}) || c.batchID != "claims/2-2" {
		t.Fatalf("batch %s %v, want only the live event 2", c.batchID, c.seqs)
	}
	h.waitStep("cursor", func() bool { return h.store.cursor("claims") == 2 })
}
