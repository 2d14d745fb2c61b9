package subscribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"routerd.net/routerd/federation/internal/clock"
)

// memStore is an in-memory Source, Cursors and RunRecorder.
type memStore struct {
	mu      sync.Mutex
	events  []Record
	cursors map[string]int64
	runs    []Run
	failGet error
}

func newMemStore() *memStore { return &memStore{cursors: map[string]int64{}} }

// add appends an event and returns its seq.
func (m *memStore) add(group, typ, source, subject string, payload map[string]string) int64 {
	return m.addExpiring(group, typ, source, subject, payload, time.Time{})
}

// addExpiring appends an event that expires at exp.
func (m *memStore) addExpiring(group, typ, source, subject string, payload map[string]string, exp time.Time) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := int64(len(m.events) + 1)
	id := fmt.Sprintf("ev%03d", seq)
	js, _ := json.Marshal(map[string]any{"id": id, "group": group, "type": typ, "sourceNode": source, "subject": subject, "payload": payload})
	m.events = append(m.events, Record{Seq: seq, ID: id, Group: group, Type: typ, SourceNode: source, Subject: subject, Payload: payload, JSON: js, ExpiresAt: exp})
	return seq
}

func (m *memStore) Events(_ context.Context, group string, types []string, after int64, limit int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.events {
		if r.Seq > after && r.Group == group && contains(types, r.Type) {
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (m *memStore) MaxSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.events)), nil
}

func (m *memStore) GetCursor(_ context.Context, name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGet != nil {
		return 0, m.failGet
	}
	return m.cursors[name], nil
}

func (m *memStore) SetCursor(_ context.Context, name string, seq int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursors[name] = seq
	return nil
}

func (m *memStore) cursor(name string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[name]
}

func (m *memStore) RecordRun(_ context.Context, r Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, r)
	return nil
}

func (m *memStore) allRuns() []Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Run(nil), m.runs...)
}

// call is one recorded plugin invocation.
type call struct {
	at      time.Time
	plugin  string
	hook    string
	batchID string
	seqs    []int64
	request []byte
}

// fakePlugin is an Invoker and Handler: it records calls, fails while fail > 0 and
// returns one resource per event.
type fakePlugin struct {
	clk   clock.Clock
	store *memStore
	calls chan call
	fail  atomic.Int32

	mu      sync.Mutex
	handled []string
}

func newFakePlugin(clk clock.Clock, st *memStore) *fakePlugin {
	return &fakePlugin{clk: clk, store: st, calls: make(chan call, 100)}
}

func (p *fakePlugin) Invoke(_ context.Context, plugin, hook string, request []byte) ([]byte, error) {
	var req struct {
		BatchID string `json:"batchID"`
		Spec    struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, err
	}
	c := call{at: p.clk.Now(), plugin: plugin, hook: hook, batchID: req.BatchID, request: request}
	for _, e := range req.Spec.Events {
		var seq int64
		fmt.Sscanf(e.ID, "ev%d", &seq)
		c.seqs = append(c.seqs, seq)
	}
	p.calls <- c
	if p.fail.Load() > 0 {
		p.fail.Add(-1)
		return nil, errors.New("plugin trapped")
	}
	res := `{"status":{"ttl":"30m","resources":[`
	for i := range c.seqs {
		if i > 0 {
			res += ","
		}
		res += fmt.Sprintf(`{"kind":"RemoteAddressClaim","n":%d}`, c.seqs[i])
	}
	return []byte(res + `]}}`), nil
}

func (p *fakePlugin) HandleResult(_ context.Context, b Batch, r Result) error {
	if len(r.Resources) != len(b.Events) {
		return fmt.Errorf("got %d resources for %d events", len(r.Resources), len(b.Events))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handled = append(p.handled, b.ID)
	return nil
}

// harness runs an Engine against memStore, fakePlugin and a fake clock, and lets a test
// wait until the engine has handled what it was told.
type harness struct {
	t      *testing.T
	start  time.Time
	clk    *clock.Fake
	store  *memStore
	plugin *fakePlugin
	eng    *Engine
	steps  chan struct{}
}

func newHarness(t *testing.T, st *memStore, opts Options) *harness {
	t.Helper()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	if st == nil {
		st = newMemStore()
	}
	h := &harness{t: t, start: start, clk: clk, store: st, plugin: newFakePlugin(clk, st), steps: make(chan struct{}, 1000)}
	opts.Source, opts.Cursors, opts.Recorder = st, st, st
	opts.Invoker, opts.Handler, opts.Clock = h.plugin, h.plugin, clk
	if opts.RetryJitter == 0 {
		opts.RetryJitter = -1
	}
	eng, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	eng.onStep = func() { h.steps <- struct{}{} }
	h.eng = eng
	t.Cleanup(func() { _ = eng.Close() })
	return h
}

// waitStep waits until a runner finished handling something and cond holds.
func (h *harness) waitStep(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-h.steps:
			if cond() {
				return
			}
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; status %+v", what, h.eng.Status())
		}
	}
}

// waitCall waits for the next plugin call.
func (h *harness) waitCall() call {
	h.t.Helper()
	select {
	case c := <-h.plugin.calls:
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatalf("timed out waiting for a plugin call; status %+v", h.eng.Status())
	}
	return call{}
}

func (h *harness) noCall() {
	h.t.Helper()
	select {
	case c := <-h.plugin.calls:
		h.t.Fatalf("unexpected plugin call %s at %v", c.batchID, c.at.Sub(h.start))
	default:
	}
}

func (h *harness) status(name string) Status {
	for _, s := range h.eng.Status() {
		if s.Name == name {
			return s
		}
	}
	return Status{}
}
