package clock

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		delays  []time.Duration
		stop    []int
		advance time.Duration
		want    []int
	}{
		{name: "in order", delays: []time.Duration{3, 1, 2}, advance: 3, want: []int{1, 2, 0}},
		{name: "only due ones", delays: []time.Duration{5, 1}, advance: 4, want: []int{1}},
		{name: "stopped never fires", delays: []time.Duration{1, 2}, stop: []int{0}, advance: 2, want: []int{1}},
		{name: "same deadline keeps creation order", delays: []time.Duration{2, 2, 1}, advance: 2, want: []int{2, 0, 1}},
		{name: "zero delay fires on Advance(0)", delays: []time.Duration{0}, advance: 0, want: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFake(start)
			var got []int
			var at []time.Time
			timers := make([]Timer, len(tt.delays))
			for i, d := range tt.delays {
				timers[i] = c.AfterFunc(d*time.Second, func() { got = append(got, i); at = append(at, c.Now()) })
			}
			for _, i := range tt.stop {
				if !timers[i].Stop() {
					t.Fatalf("Stop(%d) = false", i)
				}
			}
			c.Advance(tt.advance * time.Second)
			if !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("fired %v, want %v", got, tt.want)
			}
			for k, i := range got {
				if want := start.Add(tt.delays[i] * time.Second); !at[k].Equal(want) {
					t.Fatalf("timer %d saw Now %v, want %v", i, at[k], want)
				}
			}
			if !c.Now().Equal(start.Add(tt.advance * time.Second)) {
				t.Fatalf("Now = %v after Advance", c.Now())
			}
			for _, i := range got {
				if timers[i].Stop() {
					t.Fatalf("Stop after firing = true")
				}
			}
		})
	}
}

func TestFakeWaitFor(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	go c.AfterFunc(time.Second, func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !c.WaitFor(ctx, func(p []time.Time) bool { return len(p) == 1 }) {
		t.Fatal("WaitFor did not see the timer")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if c.WaitFor(short, func(p []time.Time) bool { return len(p) == 2 }) {
		t.Fatal("WaitFor reported a condition that never held")
	}
}

func TestRealClock(t *testing.T) {
	done := make(chan struct{})
	Real().AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("real AfterFunc never fired")
	}
}
