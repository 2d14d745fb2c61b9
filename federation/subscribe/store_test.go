package subscribe

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/store"
)

// TestEngineOnSQLite runs the engine against a real store file: events inserted into
// SQLite reach the plugin, the cursor and the run history are persisted.
func TestEngineOnSQLite(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	ad := StoreAdapter{Store: st}
	now := time.Now()
	evs := []event.Event{
		event.New(testGroup, testType, "router-a", "10.88.60.9", map[string]string{"address": "10.88.60.9"}, 30*time.Minute, now),
		event.New("other", testType, "router-a", "10.88.60.10", nil, 30*time.Minute, now),
		event.New(testGroup, "neighbor.moved", "router-a", "10.88.60.11", nil, 30*time.Minute, now),
		event.New(testGroup, testType, "router-b", "10.88.60.12", nil, 30*time.Minute, now),
	}
	if _, err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	clk := clock.Real()
	p := newFakePlugin(clk, nil)
	eng, err := New(Options{Source: ad, Cursors: ad, Recorder: ad, Invoker: p, Handler: p, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Update([]Spec{testSpec()}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-p.calls:
		if c.batchID != "claims/1-4" || len(c.seqs) != 2 {
			t.Fatalf("batch %s", c.batchID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no plugin call")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := ad.GetCursor(ctx, "claims")
		if err != nil {
			t.Fatal(err)
		}
		if c == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d, want 4", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	runs, err := ad.Runs(ctx, "claims", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].State != "succeeded" || runs[0].Events != 2 || runs[0].FirstSeq != 1 || runs[0].LastSeq != 4 {
		t.Fatalf("runs %+v", runs)
	}
	// The events the plugin saw are the stored envelopes.
	recs, err := ad.Events(ctx, testGroup, []string{testType}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if want := []string{evs[0].ID, evs[3].ID}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("events %v, want %v", ids, want)
	}
	if seq, err := ad.MaxSeq(ctx); err != nil || seq != 4 {
		t.Fatalf("MaxSeq = %d, %v", seq, err)
	}
}

// decodingPlugin is fakePlugin behind the DecodingInvoker path.
type decodingPlugin struct {
	*fakePlugin
	decoded chan string
}

func (d decodingPlugin) InvokeDecode(ctx context.Context, plugin, hook string, request []byte, decode func([]byte) error) error {
	out, err := d.Invoke(ctx, plugin, hook, request)
	if err != nil {
		return err
	}
	d.decoded <- plugin
	return decode(out)
}

// TestEngineDecodesOnce: with an Invoker that can decode, the engine hands it its
// ParseResult instead of getting the bytes back (the host then skips its own scan).
func TestEngineDecodesOnce(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ad := StoreAdapter{Store: st}
	if _, err := st.InsertEvents(context.Background(), []event.Event{
		event.New(testGroup, testType, "router-b", "10.88.60.12", nil, 30*time.Minute, time.Now())}); err != nil {
		t.Fatal(err)
	}
	clk := clock.Real()
	p := decodingPlugin{newFakePlugin(clk, nil), make(chan string, 4)}
	eng, err := New(Options{Source: ad, Cursors: ad, Recorder: ad, Invoker: p, Handler: p, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Update([]Spec{testSpec()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.decoded:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not use InvokeDecode")
	}
}
