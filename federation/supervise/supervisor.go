package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"routerd.net/routerd/federation/retry"
)

// RestartJitter spreads the restart delays by ±20%, so children that die together do not
// restart in step.
const RestartJitter = 0.2

// Options configure a Supervisor.
type Options struct {
	// Binary is the routerd-eventd executable.
	Binary string
	// Args returns the arguments for group's child (default: --group <group>).
	Args func(group string) []string
	// Env is the children's environment (nil: the supervisor's own).
	Env []string
	// Stdout and Stderr receive the children's output (nil: discarded).
	Stdout, Stderr io.Writer
	// BackoffBase and BackoffMax bound the restart delay (defaults 500ms, 30s).
	BackoffBase, BackoffMax time.Duration
	// StableAfter resets the restart delay once a child ran this long (default 10s).
	StableAfter time.Duration
	// StopTimeout is how long a child gets after SIGTERM before SIGKILL (default 15s).
	StopTimeout time.Duration
	// Logger receives start, exit and restart lines.
	Logger *slog.Logger
}

// ChildStatus is one supervised child's state.
type ChildStatus struct {
	Group     string    `json:"group"`
	PID       int       `json:"pid,omitempty"`
	Running   bool      `json:"running"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	Restarts  int       `json:"restarts"`
	LastExit  string    `json:"lastExit,omitempty"`
	NextStart time.Time `json:"nextStart,omitzero"`
}

// Supervisor keeps one routerd-eventd child running per group.
type Supervisor struct {
	opts Options
	// after and rand are the clock of the restart and stop waits and the jitter source;
	// tests replace them (defaults time.After and math/rand/v2).
	after func(time.Duration) <-chan time.Time
	rand  func() float64

	mu       sync.Mutex
	ctx      context.Context
	children map[string]*child
	started  bool
	closed   bool
	wg       sync.WaitGroup
}

type child struct {
	group  string
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	status ChildStatus
}

// New validates opts.
func New(opts Options) (*Supervisor, error) {
	if opts.Binary == "" {
		return nil, errors.New("supervise: binary is empty")
	}
	if opts.Args == nil {
		opts.Args = func(group string) []string { return []string{"--group", group} }
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.BackoffBase, 500*time.Millisecond)
	def(&opts.BackoffMax, 30*time.Second)
	def(&opts.StableAfter, 10*time.Second)
	def(&opts.StopTimeout, 15*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{opts: opts, after: time.After, children: map[string]*child{}}, nil
}

// Start begins supervising; children run until SetGroups drops them or Shutdown.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return errors.New("supervise: supervisor already started or shut down")
	}
	s.started = true
	s.ctx = ctx
	return nil
}

// SetGroups makes the set of children match groups: children of new groups are started,
// those of groups no longer listed are stopped (SIGTERM, then SIGKILL after StopTimeout).
// It returns once removed children have exited.
func (s *Supervisor) SetGroups(groups []string) error {
	s.mu.Lock()
	if !s.started || s.closed {
		s.mu.Unlock()
		return errors.New("supervise: supervisor not running")
	}
	want := map[string]bool{}
	for _, g := range groups {
		want[g] = true
	}
	var stopping []*child
	for g, c := range s.children {
		if !want[g] {
			c.cancel()
			stopping = append(stopping, c)
			delete(s.children, g)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(want)) {
		if _, ok := s.children[g]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		c := &child{group: g, cancel: cancel, done: make(chan struct{}), status: ChildStatus{Group: g}}
		s.children[g] = c
		s.wg.Go(func() {
			defer close(c.done)
			s.keep(ctx, c)
		})
	}
	s.mu.Unlock()
	for _, c := range stopping {
		<-c.done
	}
	return nil
}

// Reload asks group's running child to reload its configuration (SIGHUP: routerd-eventd
// applies a changed EventGroup/EventPeer set without losing its outbox).
func (s *Supervisor) Reload(group string) error {
	s.mu.Lock()
	c, ok := s.children[group]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("supervise: reload %s: no such group", group)
	}
	c.mu.Lock()
	pid, running := c.status.PID, c.status.Running
	c.mu.Unlock()
	if !running || pid == 0 {
		return fmt.Errorf("supervise: reload %s: child not running (it gets the new config when it restarts)", group)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("supervise: reload %s: signal pid %d: %w", group, pid, err)
	}
	return nil
}

// Status returns the children sorted by group.
func (s *Supervisor) Status() []ChildStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChildStatus, 0, len(s.children))
	for _, g := range slices.Sorted(maps.Keys(s.children)) {
		c := s.children[g]
		c.mu.Lock()
		out = append(out, c.status)
		c.mu.Unlock()
	}
	return out
}

// Shutdown stops every child (SIGTERM, SIGKILL after StopTimeout) and waits for them or
// for ctx. Safe to call twice.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for g, c := range s.children {
		c.cancel()
		delete(s.children, g)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("supervise: shutdown: %w", ctx.Err())
	}
}

// Close is Shutdown bounded by StopTimeout plus a margin.
func (s *Supervisor) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout+5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// keep runs c's process until ctx ends, restarting it with backoff.
func (s *Supervisor) keep(ctx context.Context, c *child) {
	bo := retry.Policy{Base: s.opts.BackoffBase, Max: s.opts.BackoffMax, Jitter: RestartJitter, Rand: s.rand}.NewBackOff()
	log := s.opts.Logger.With("group", c.group)
	for restarts := 0; ; restarts++ {
		started := time.Now()
		err := s.runOnce(ctx, c, restarts)
		if ctx.Err() != nil {
			log.Info("supervise: child stopped", "exit", exitText(err))
			return
		}
		if time.Since(started) >= s.opts.StableAfter {
			bo.Reset()
		}
		delay := bo.NextBackOff()
		c.mu.Lock()
		c.status.Running, c.status.PID = false, 0
		c.status.LastExit = exitText(err)
		c.status.NextStart = time.Now().Add(delay)
		c.mu.Unlock()
		log.Warn("supervise: child exited, restarting", "exit", exitText(err), "after", delay)
		select {
		case <-ctx.Done():
			return
		case <-s.after(delay):
		}
	}
}

// runOnce starts the child and waits for it; when ctx ends it stops the child.
func (s *Supervisor) runOnce(ctx context.Context, c *child, restarts int) error {
	cmd := exec.Command(s.opts.Binary, s.opts.Args(c.group)...)
	cmd.Env = s.opts.Env
	cmd.Stdout, cmd.Stderr = s.opts.Stdout, s.opts.Stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("supervise: start %s for group %s: %w", s.opts.Binary, c.group, err)
	}
	c.mu.Lock()
	c.status = ChildStatus{Group: c.group, PID: cmd.Process.Pid, Running: true, StartedAt: time.Now(), Restarts: restarts, LastExit: c.status.LastExit}
	c.mu.Unlock()
	s.opts.Logger.Info("supervise: child started", "group", c.group, "pid", cmd.Process.Pid, "restarts", restarts)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		return err
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-waited:
		return err
	case <-s.after(s.opts.StopTimeout):
		s.opts.Logger.Warn("supervise: child ignored SIGTERM, killing", "group", c.group, "pid", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		return <-waited
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}
