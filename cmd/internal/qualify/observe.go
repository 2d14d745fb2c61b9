package qualify

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/remediation"
	"routerd.net/routerd/federation/slo"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/schemas"
)

// scenario is the running state of one scenario: its recorder and its routers.
type scenario struct {
	r    *runner
	res  *ScenarioResult
	name string
	c    *cluster

	mu   sync.Mutex
	step string
	last time.Time
	// emitMu guards emitted and seqAddr (the restart scenario emits from a goroutine).
	emitMu sync.Mutex
	// emitted maps group -> source node -> event ids emitted there.
	emitted map[string]map[string][]string
	seqAddr int
	// accounted is set once account has run.
	accounted bool
}

// emittedIDs returns a copy of the ids emitted at from in group.
func (s *scenario) emittedIDs(group, from string) []string {
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	return append([]string(nil), s.emitted[group][from]...)
}

// begin records the start of a step (and ends the previous one).
func (s *scenario) begin(step string) {
	s.mu.Lock()
	now := time.Now()
	if s.step != "" {
		s.res.Steps = append(s.res.Steps, Step{Name: s.step, MS: float64(now.Sub(s.last).Microseconds()) / 1000})
	}
	s.step, s.last = step, now
	s.mu.Unlock()
	if s.r.opts.Verbose {
		s.r.printf("  %-13s %s", s.name, step)
	}
	if s.r.opts.OnStep != nil {
		s.r.opts.OnStep(s.name, step)
	}
}

func (s *scenario) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.step
}

// check records an assertion.
func (s *scenario) check(name, expected, actual string, ok bool) {
	s.mu.Lock()
	s.res.Assertions = append(s.res.Assertions, Assertion{Name: name, Expected: expected, Actual: actual, OK: ok})
	s.mu.Unlock()
}

func (s *scenario) checkInt(name string, expected, actual int) {
	s.check(name, fmt.Sprint(expected), fmt.Sprint(actual), expected == actual)
}

func (s *scenario) note(format string, args ...any) {
	s.mu.Lock()
	s.res.Notes = append(s.res.Notes, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// close ends the last step and tears the routers down; for a failed scenario the
// routers' logs are kept in the evidence dir first (logs/).
func (s *scenario) close(failed bool) {
	s.begin("teardown")
	if failed && s.c != nil {
		s.keepLogs()
	}
	if s.c != nil {
		if err := s.c.close(); err != nil {
			s.note("teardown: %v", err)
		}
	}
	s.mu.Lock()
	if n := len(s.res.Steps); n > 0 && s.res.Steps[n-1].Name == "teardown" {
		s.mu.Unlock()
		return
	}
	s.res.Steps = append(s.res.Steps, Step{Name: "teardown", MS: float64(time.Since(s.last).Microseconds()) / 1000})
	s.step = ""
	s.mu.Unlock()
}

// up prepares and starts routers names.
func (s *scenario) up(ctx context.Context, dir string, names ...string) error {
	s.begin("start " + strings.Join(names, ", "))
	c, err := newCluster(ctx, s.r, dir, names, s.name)
	if c != nil {
		s.c = c
	}
	if err != nil {
		return err
	}
	for _, n := range c.nodes {
		if err := c.start(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// emit stores n new events of group at router from (as routerd does for an observation)
// and remembers their ids. Each has its own address, so each becomes its own claim.
func (s *scenario) emit(ctx context.Context, from *node, group string, n int, ttl time.Duration) ([]event.Event, error) {
	st, err := store.Open(from.storePath(), store.Options{BusyTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("open %s's store: %w", from.name, err)
	}
	defer st.Close()
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	var evs []event.Event
	for range n {
		s.seqAddr++
		addr := fmt.Sprintf("10.88.%d.%d", 1+s.seqAddr/250, 1+s.seqAddr%250)
		payload := map[string]string{"address": addr, "domain": "lab", "ownerSide": "onprem", "peerRef": "onprem-main"}
		evs = append(evs, event.New(group, eventType, from.name, addr, payload, ttl, time.Now()))
	}
	if _, err := st.InsertEvents(ctx, evs); err != nil {
		return nil, fmt.Errorf("emit at %s: %w", from.name, err)
	}
	if s.emitted == nil {
		s.emitted = map[string]map[string][]string{}
	}
	if s.emitted[group] == nil {
		s.emitted[group] = map[string][]string{}
	}
	for _, e := range evs {
		s.emitted[group][from.name] = append(s.emitted[group][from.name], e.ID)
	}
	return evs, nil
}

// readStore opens n's store read-only for one query function.
func readStore[T any](n *node, fn func(*store.Store) (T, error)) (T, error) {
	var zero T
	st, err := health.OpenStore(n.storePath())
	if err != nil {
		return zero, err
	}
	defer st.Close()
	return fn(st)
}

// storedIDs returns the ids (with expiry) of group's events in n's store.
func storedIDs(ctx context.Context, n *node, group string) (map[string]time.Time, error) {
	return readStore(n, func(st *store.Store) (map[string]time.Time, error) {
		rows, err := st.ReadDB().QueryContext(ctx, `SELECT id, COALESCE(expires_at, 0) FROM events WHERE group_name = ?`, group)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]time.Time{}
		for rows.Next() {
			var id string
			var exp int64
			if err := rows.Scan(&id, &exp); err != nil {
				return nil, err
			}
			out[id] = time.Unix(0, exp)
		}
		return out, rows.Err()
	})
}

// missing returns how many of ids n has not stored (group's events).
func missing(ctx context.Context, n *node, group string, ids []string) (int, error) {
	have, err := storedIDs(ctx, n, group)
	if err != nil {
		return 0, err
	}
	k := 0
	for _, id := range ids {
		if _, ok := have[id]; !ok {
			k++
		}
	}
	return k, nil
}

// waitDelivered waits until every receiver of group in the cluster has every event the
// other routers emitted in group.
func (s *scenario) waitDelivered(ctx context.Context, group string) error {
	s.begin("wait until every " + group + " event reached every peer")
	return poll(ctx, "every "+group+" event at every peer", 25*time.Millisecond, func() (bool, error) {
		for _, to := range s.c.nodes {
			if !to.inGroup(group) {
				continue
			}
			k, err := missing(ctx, to, group, s.expectedAt(to, group))
			if err != nil || k > 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// waitClaims waits until router n has a claim for every lab event the others emitted.
func (s *scenario) waitClaims(ctx context.Context, n *node) error {
	s.begin("wait until " + n.name + " turned every event into a claim")
	want := s.expectedAt(n, groupLab)
	return poll(ctx, n.name+" to claim every event", 25*time.Millisecond, func() (bool, error) {
		eff, err := effects(ctx, n)
		if err != nil {
			return false, nil
		}
		for _, id := range want {
			if eff.claims[id] == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// expectedAt lists the events n must receive in group (those others emitted).
func (s *scenario) expectedAt(n *node, group string) []string {
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	var ids []string
	for from, l := range s.emitted[group] {
		if from != n.name && n.inGroup(group) {
			ids = append(ids, l...)
		}
	}
	sort.Strings(ids)
	return ids
}

// effectCounts are the delivery effects of events at one router.
type effectCounts struct {
	// claims maps event id -> number of dynamic parts naming it.
	claims map[string]int
	// generations maps event id -> the generation of its part (1 = written once).
	generations map[string]int64
	// runs maps event id -> number of succeeded subscription runs whose batch held it.
	runs map[string]int
	// failedRuns counts failed subscription runs.
	failedRuns int
}

// effects reads the subscription runs and dynamic parts of n.
func effects(ctx context.Context, n *node) (effectCounts, error) {
	return readStore(n, func(st *store.Store) (effectCounts, error) {
		e := effectCounts{claims: map[string]int{}, generations: map[string]int64{}, runs: map[string]int{}}
		db := st.ReadDB()
		if err := each(ctx, db, `SELECT generation, event_ids FROM dynamic_parts WHERE source = ?`, []any{"EventSubscription/" + subscriptionName}, func(r *sql.Rows) error {
			var gen int64
			var ids string
			if err := r.Scan(&gen, &ids); err != nil {
				return err
			}
			var l []string
			if err := json.Unmarshal([]byte(ids), &l); err != nil {
				return err
			}
			for _, id := range l {
				e.claims[id]++
				e.generations[id] = gen
			}
			return nil
		}); err != nil {
			return e, err
		}
		// Events of the subscription's group from other nodes, by seq.
		seqs := map[int64]string{}
		if err := each(ctx, db, `SELECT seq, id FROM events WHERE group_name = ? AND source_node != ?`, []any{groupLab, n.name}, func(r *sql.Rows) error {
			var seq int64
			var id string
			if err := r.Scan(&seq, &id); err != nil {
				return err
			}
			seqs[seq] = id
			return nil
		}); err != nil {
			return e, err
		}
		err := each(ctx, db, `SELECT state, first_seq, last_seq FROM subscription_runs WHERE subscription = ?`, []any{subscriptionName}, func(r *sql.Rows) error {
			var state string
			var first, last int64
			if err := r.Scan(&state, &first, &last); err != nil {
				return err
			}
			if state == "failed" {
				e.failedRuns++
				return nil
			}
			if state != "succeeded" {
				return nil
			}
			for seq, id := range seqs {
				if seq >= first && seq <= last {
					e.runs[id]++
				}
			}
			return nil
		})
		return e, err
	})
}

func each(ctx context.Context, db *sql.DB, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// account checks, for every router and group, that nothing emitted elsewhere is missing
// (lost) and that no event had more than one effect (duplicated), records the
// assertions and adds the counts to the result. Effects are counted for the lab group's
// subscription: an event in more than one succeeded run, more than one claim, or a claim
// written more than once (generation > 1).
func (s *scenario) account(ctx context.Context, groups ...string) error {
	s.begin("count lost and duplicated events")
	s.accounted = true
	for _, g := range groups {
		for _, n := range s.c.nodes {
			want := s.expectedAt(n, g)
			if len(want) == 0 {
				continue
			}
			lost, err := missing(ctx, n, g, want)
			if err != nil {
				return fmt.Errorf("read %s's store: %w", n.name, err)
			}
			s.res.Lost += lost
			s.checkInt(fmt.Sprintf("%s lost at %s (of %d)", g, n.name, len(want)), 0, lost)
			if g != groupLab {
				continue
			}
			eff, err := effects(ctx, n)
			if err != nil {
				return fmt.Errorf("read %s's effects: %w", n.name, err)
			}
			dup := 0
			for _, id := range want {
				if eff.runs[id] > 1 || eff.claims[id] > 1 || eff.generations[id] > 1 {
					dup++
				}
			}
			s.res.Duplicated += dup
			s.checkInt(fmt.Sprintf("%s duplicated at %s (runs, claims, generations)", g, n.name), 0, dup)
		}
	}
	return nil
}

// fedState gathers the federation health state of n (config dir and store, read-only).
func fedState(ctx context.Context, n *node) (health.State, error) {
	cfg, err := schemas.LoadDir(n.confDir)
	if err != nil {
		return health.State{}, fmt.Errorf("load %s: %w", n.confDir, err)
	}
	st, serr := health.OpenStore(n.storePath())
	if st != nil {
		defer st.Close()
	}
	return health.Gather(ctx, health.Input{Config: cfg, Store: st, StoreErr: serr, Now: time.Now()}), nil
}

// doctor returns n's federation findings (warn and fail only), its SLO report and plan.
type doctorView struct {
	Worst    string
	Problems []health.Finding
	SLO      slo.Report
	Plan     remediation.Plan
}

func doctor(ctx context.Context, n *node) (doctorView, error) {
	st, err := fedState(ctx, n)
	if err != nil {
		return doctorView{}, err
	}
	fs := health.Check(st)
	v := doctorView{Worst: health.Worst(fs), Plan: remediation.PlanFor(fs)}
	for _, f := range fs {
		if f.Severity != health.SeverityOK {
			v.Problems = append(v.Problems, f)
		}
	}
	v.SLO, err = slo.Evaluate(st)
	return v, err
}

func (v doctorView) problems() string {
	if len(v.Problems) == 0 {
		return "none"
	}
	var l []string
	for _, f := range v.Problems {
		l = append(l, fmt.Sprintf("%s %s %s/%s", f.Check, f.Severity, f.Group, f.Peer))
	}
	return strings.Join(l, "; ")
}

func (v doctorView) violations(group string) []string {
	var l []string
	for _, g := range v.SLO.Federation.SLO.Groups {
		if group != "" && g.Group != group {
			continue
		}
		for _, x := range g.Violations {
			l = append(l, fmt.Sprintf("%s:%s %s", g.Group, x.Check, x.Severity))
		}
	}
	return l
}

func (v doctorView) actions() []string {
	var l []string
	for _, a := range v.Plan.Actions {
		l = append(l, fmt.Sprintf("%s %s/%s", a.Action, a.TargetGroup, a.TargetPeer))
	}
	return l
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, "; ")
}

// waitHealthy polls n's doctor until it is healthy (no warn or fail finding).
func (s *scenario) waitHealthy(ctx context.Context, n *node) (doctorView, error) {
	s.begin("wait until doctor is healthy on " + n.name)
	var v doctorView
	err := poll(ctx, "doctor healthy on "+n.name, 50*time.Millisecond, func() (bool, error) {
		var err error
		v, err = doctor(ctx, n)
		return err == nil && v.Worst == health.SeverityOK && len(v.violations("")) == 0, nil
	})
	if err != nil {
		err = fmt.Errorf("%w (last findings: %s)", err, v.problems())
	}
	return v, err
}

// keepLogs copies each router's log to <evidence>/logs/c<cycle>-<scenario>-<router>.log.
func (s *scenario) keepLogs() {
	dir := filepath.Join(s.r.opts.EvidenceDir, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.note("keep logs: %v", err)
		return
	}
	for _, n := range s.c.nodes {
		b, err := os.ReadFile(n.logPath())
		if err != nil {
			continue
		}
		dst := filepath.Join(dir, fmt.Sprintf("c%d-%s-%s.log", s.res.Cycle, s.name, n.name))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			s.note("keep logs: %v", err)
			continue
		}
		s.note("log of %s kept in %s", n.name, dst)
	}
}

// maxLatency returns the largest received_at - observed_at of the events ids in n's store.
func maxLatency(ctx context.Context, n *node, group string, ids []string) (time.Duration, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	return readStore(n, func(st *store.Store) (time.Duration, error) {
		var worst time.Duration
		err := each(ctx, st.ReadDB(), `SELECT id, COALESCE(observed_at, 0), received_at FROM events WHERE group_name = ?`, []any{group}, func(r *sql.Rows) error {
			var id string
			var obs, rcv int64
			if err := r.Scan(&id, &obs, &rcv); err != nil {
				return err
			}
			if want[id] && obs > 0 {
				worst = max(worst, time.Duration(rcv-obs))
			}
			return nil
		})
		return worst, err
	})
}
