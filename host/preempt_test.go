package host

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"routerd.net/routerd/abi"
)

// TestDeadlineStopsSpinningGuest runs calls into a guest that never returns, from
// several goroutines at once, each ended by limits.timeout, the caller's deadline or the
// caller's cancel. Each must come back with its own error kind, and the plugin must keep
// serving. The stop flag is written by the deadline timer's goroutine and read by the
// guest's loop checks through the yield host function; `make unit` runs this test under
// the race detector (go test -race) as well.
func TestDeadlineStopsSpinningGuest(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "loop.wasm", pluginBytes(t, filepath.Join(hostileDir, "loop")))
	h := newHost(t, Options{BreakerThreshold: 1000})
	limits := Limits{Timeout: 300 * time.Millisecond, MemoryMiB: 64, WarmInstances: 2, MaxConcurrency: 4}
	if err := h.Configure(context.Background(), []Spec{{Name: "loop", Limits: limits}}); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDir(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, h, "loop"); st.Preemption != PreemptLoopCheck {
		t.Fatalf("preemption %q, want %q", st.Preemption, PreemptLoopCheck)
	}
	req := request(t)
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		hook abi.Hook
		want error
	}{
		{name: "limits.timeout", hook: abi.HookOnEvents, want: ErrTimeout,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "caller deadline", hook: abi.HookPlan, want: ErrTimeout,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			}},
		{name: "caller cancel", hook: abi.HookOnEvents, want: errCanceled,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				go cancel() // concurrently with the call entering the guest
				return ctx, cancel
			}},
	}
	const rounds = 2
	var wg sync.WaitGroup
	errs := make(chan error, len(tests)*rounds*2)
	for _, tt := range tests {
		for range rounds {
			wg.Go(func() {
				ctx, cancel := tt.ctx()
				defer cancel()
				_, err := h.Call(ctx, "loop", tt.hook, req)
				if !errors.Is(err, tt.want) {
					errs <- errors.New(tt.name + ": got " + errString(err) + ", want " + tt.want.Error())
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The host discards stopped instances and keeps serving the plugin.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Call(ctx, "loop", abi.HookPlan, req); !errors.Is(err, ErrTimeout) {
		t.Fatalf("call after the stopped ones: %v, want %v", err, ErrTimeout)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
