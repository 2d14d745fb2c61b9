package dynamic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"routerd.net/routerd/federation/internal/clock"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

// Annotations stamped on every resource a subscription produces (COMPAT.md).
const (
	AnnotationSource       = "routerd.net/dynamic-source"
	AnnotationEventGroup   = "routerd.net/event-group"
	AnnotationEventID      = "routerd.net/event-id"
	AnnotationEventSubject = "routerd.net/event-subject"
)

// DefaultTTL is a part's lifetime when neither the plugin nor the group says otherwise.
const DefaultTTL = 30 * time.Minute

// Rejection reasons (the reason attribute of routerd_dynamic_parts_rejected_total).
const (
	ReasonInvalid        = "invalid"
	ReasonKindNotAllowed = "kind_not_allowed"
	ReasonPolicyDenied   = "policy_denied"
	ReasonStaticConflict = "static_conflict"
)

// Withdrawal reasons.
const (
	WithdrawExpired   = "expired"
	WithdrawDirective = "directive"
	WithdrawOperator  = "operator"
)

// Subscription is what the manager needs to know about one EventSubscription.
type Subscription struct {
	// Group is the subscription's event group.
	Group string
	// AllowedKinds are the Kinds its plugin's output may become (default
	// [RemoteAddressClaim]).
	AllowedKinds []string
	// DefaultTTL applies when the plugin result has no ttl (default DefaultTTL).
	DefaultTTL time.Duration
}

// Config is the part of the static configuration the manager enforces.
type Config struct {
	// Policies are the DynamicOverridePolicy resources.
	Policies []*schemas.DynamicOverridePolicy
	// Subscriptions by name.
	Subscriptions map[string]Subscription
	// Static holds "Kind/name" of every static resource, for conflict checks.
	Static map[string]bool
	// Check, when set, is a further semantic check of every proposed resource (see
	// CheckFunc); a resource it refuses is rejected. LiveCheck sets it.
	Check CheckFunc
	// StaticConfig is the loaded configuration the proposals are checked against (see
	// LiveCheck); ConfigFrom sets it.
	StaticConfig *schemas.Config
	// SkipPolicy skips the static conflict check and the override policy: only for
	// `routerctl plugin dry-run` without a configuration, which has neither. The daemon
	// never sets it (an empty Config allows nothing).
	SkipPolicy bool
}

// Resolution returns the conflict resolution the policies ask for: the first one set,
// else StaticWins.
func (c Config) Resolution() string {
	for _, p := range c.Policies {
		if p.Spec.ConflictResolution != "" {
			return p.Spec.ConflictResolution
		}
	}
	return StaticWins
}

// Options are the Manager's dependencies; Repo is required. The Manager keeps the parts
// in memory in front of Repo, so it must be Repo's only writer while it runs. Audit
// entries (applied, rejected, withdrawn) are committed with the parts they concern.
type Options struct {
	Repo Repo
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// MeterProvider defaults to the no-op provider.
	MeterProvider metric.MeterProvider
	// OnChange is called (without locks held) after the set of live parts changed.
	OnChange func()
}

// Manager validates plugin output into DynamicConfigParts, enforces the override policy,
// stores parts and withdraws expired ones. It is the subscription engine's Handler.
type Manager struct {
	opts Options
	log  *slog.Logger
	clk  clock.Clock
	kick chan struct{}

	applied   metric.Int64Counter
	rejected  metric.Int64Counter
	withdrawn metric.Int64Counter

	mu  sync.RWMutex
	cfg Config
	// writeMu serialises read-modify-write of parts.
	writeMu sync.Mutex
}

var _ subscribe.Handler = (*Manager)(nil)

// NewManager returns a Manager with an empty Config (which allows nothing).
func NewManager(opts Options) (*Manager, error) {
	if opts.Repo == nil {
		return nil, errNoRepo
	}
	opts.Repo = &cachedRepo{repo: opts.Repo}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = noop.NewMeterProvider()
	}
	m := &Manager{opts: opts, log: opts.Logger, clk: opts.Clock, kick: make(chan struct{}, 1)}
	meter := opts.MeterProvider.Meter("routerd.net/routerd/federation/dynamic")
	var errs []error
	var err error
	m.applied, err = meter.Int64Counter("routerd_dynamic_parts_applied_total",
		metric.WithDescription("Dynamic config parts stored (created or replaced), by source kind and resource kind."))
	errs = append(errs, err)
	m.rejected, err = meter.Int64Counter("routerd_dynamic_parts_rejected_total",
		metric.WithDescription("Proposed dynamic resources refused, by reason."))
	errs = append(errs, err)
	m.withdrawn, err = meter.Int64Counter("routerd_dynamic_parts_withdrawn_total",
		metric.WithDescription("Dynamic config parts withdrawn, by reason (expired, directive, operator)."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dynamic: metrics: %w", err)
	}
	// The series of the fixed reasons start at 0, so rate() over them works from the start.
	ctx := context.Background()
	for _, r := range []string{ReasonInvalid, ReasonKindNotAllowed, ReasonPolicyDenied, ReasonStaticConflict, ReasonCheckFailed} {
		m.rejected.Add(ctx, 0, metric.WithAttributes(attribute.String("reason", r)))
	}
	for _, r := range []string{WithdrawExpired, WithdrawDirective, WithdrawOperator} {
		m.withdrawn.Add(ctx, 0, metric.WithAttributes(attribute.String("reason", r)))
	}
	return m, nil
}

// SetConfig replaces the enforced configuration (on start and on every reload).
func (m *Manager) SetConfig(c Config) {
	m.mu.Lock()
	m.cfg = c
	m.mu.Unlock()
}

func (m *Manager) config() Config {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cfg
}

// SourceOf returns the part source of a subscription: EventSubscription/<name>.
func SourceOf(subscription string) string { return "EventSubscription/" + subscription }

// HandleResult turns a plugin result into parts with Propose (decoded strictly, checked
// against the subscription's allowed Kinds, static config and the override policy,
// stamped) and stores them; delete directives withdraw parts of the same source. A
// refused resource is audited, counted and logged, never stored; only a storage failure
// is returned (the engine then retries the batch).
func (m *Manager) HandleResult(ctx context.Context, b subscribe.Batch, r subscribe.Result) (err error) {
	cfg := m.config()
	source := SourceOf(b.Subscription)
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	var lookupErr error
	prev := func(kind, name string) (Part, bool) {
		p, err := m.opts.Repo.Get(ctx, source, kind, name)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && lookupErr == nil {
				lookupErr = err
			}
			return Part{}, false
		}
		return p, true
	}
	now := m.clk.Now()
	if cfg.Check == nil && cfg.StaticConfig != nil {
		var scanErr error
		cfg = cfg.liveCheck(source, func(yield func(Part)) {
			if err := m.scanLive(ctx, now, yield); err != nil && scanErr == nil {
				scanErr = err
			}
		})
		defer func() {
			if scanErr != nil && err == nil {
				err = fmt.Errorf("dynamic: batch %s: live parts: %w", b.ID, scanErr)
			}
		}()
	}
	out := Propose(cfg, b, r, now, prev)
	if lookupErr != nil {
		return fmt.Errorf("dynamic: batch %s: %w", b.ID, lookupErr)
	}
	w := &write{pending: map[string]Part{}}
	for _, x := range out.Rejections {
		m.reject(w, source, x.Target, x.Reason, x.Detail)
	}
	for _, pp := range out.Parts {
		p, op, target := pp.Part, pp.Operation, pp.Part.Kind+"/"+pp.Part.Name
		w.put(p, pp.Changed)
		w.metrics = append(w.metrics, func(ctx context.Context) {
			m.applied.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", p.Kind), attribute.String("operation", op)))
		})
		w.ch.Audit = append(w.ch.Audit, store.AuditEntry{Time: now, Actor: source, Action: "dynamic." + op, Target: target, Outcome: "applied",
			Detail: fmt.Sprintf("generation %d, expires %s, event %s, policy %s", p.Generation, p.ExpiresAt.UTC().Format(time.RFC3339), strings.Join(p.EventIDs, ","), pp.Policy)})
		m.log.Debug("dynamic: part proposed", "source", source, "target", target, "generation", p.Generation, "event", strings.Join(p.EventIDs, ","))
	}
	for _, wd := range out.Withdrawals {
		w.delete(wd.Ref)
		m.recordWithdraw(w, wd.Ref.Source, wd.Ref.Kind, wd.Ref.Name, WithdrawDirective, wd.Detail)
	}
	return m.commit(ctx, w)
}

// write collects the changes of one operation, committed together by commit.
type write struct {
	ch      Changes
	pending map[string]Part // parts put in this write, by partKey
	changed bool            // the live set changes (for OnChange)
	metrics []func(context.Context)
}

func (w *write) put(p Part, changed bool) {
	k := partKey(p.Source, p.Kind, p.Name)
	if _, dup := w.pending[k]; dup {
		for i := range w.ch.Put {
			if partKey(w.ch.Put[i].Source, w.ch.Put[i].Kind, w.ch.Put[i].Name) == k {
				w.ch.Put = append(w.ch.Put[:i], w.ch.Put[i+1:]...)
				break
			}
		}
	}
	w.pending[k] = p
	w.ch.Put = append(w.ch.Put, p)
	w.changed = w.changed || changed
}

func (w *write) delete(r PartRef) {
	k := partKey(r.Source, r.Kind, r.Name)
	if _, ok := w.pending[k]; ok {
		delete(w.pending, k)
		for i := range w.ch.Put {
			if partKey(w.ch.Put[i].Source, w.ch.Put[i].Kind, w.ch.Put[i].Name) == k {
				w.ch.Put = append(w.ch.Put[:i], w.ch.Put[i+1:]...)
				break
			}
		}
	}
	w.ch.Delete = append(w.ch.Delete, r)
	w.changed = true
}

// commit writes w in one transaction, then counts it and notifies a change. On error
// nothing was written (the caller retries).
func (m *Manager) commit(ctx context.Context, w *write) error {
	if w.ch.Empty() {
		return nil
	}
	// Stamp the parts with the time they are written, not the time they were proposed.
	stamp := m.clk.Now()
	for i := range w.ch.Put {
		if w.ch.Put[i].CreatedAt.IsZero() {
			w.ch.Put[i].CreatedAt = stamp
		}
		w.ch.Put[i].UpdatedAt = stamp
	}
	if err := m.opts.Repo.Commit(ctx, w.ch); err != nil {
		return err
	}
	for _, f := range w.metrics {
		f(ctx)
	}
	if w.changed {
		m.changed()
	}
	return nil
}

// PartName is the DynamicConfigPart's metadata.name: "<source name>.<kind>.<name>" in
// lower case.
func PartName(source, kind, name string) string {
	_, srcName, _ := strings.Cut(source, "/")
	n := strings.ToLower(srcName + "." + kind + "." + name)
	if len(n) > 253 {
		n = n[:253]
	}
	return strings.Trim(n, ".-")
}

func stripPrefixLen(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

// specStrings returns every string value under spec (also without a /len suffix).
func specStrings(raw []byte) map[string]bool {
	var m struct {
		Spec any `json:"spec"`
	}
	out := map[string]bool{}
	if json.Unmarshal(raw, &m) != nil {
		return out
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out[x], out[stripPrefixLen(x)] = true, true
		case map[string]any:
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(m.Spec)
	return out
}

// sameSpec reports whether two resources have equal specs (annotations aside).
func sameSpec(a, b schemas.Object) bool {
	if a == nil || b == nil {
		return false
	}
	spec := func(o schemas.Object) []byte {
		js, err := json.Marshal(o)
		if err != nil {
			return nil
		}
		var m struct {
			Spec json.RawMessage `json:"spec"`
		}
		if json.Unmarshal(js, &m) != nil {
			return nil
		}
		return m.Spec
	}
	x, y := spec(a), spec(b)
	return x != nil && bytes.Equal(x, y)
}

func describeRaw(raw []byte) string {
	var m struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Kind == "" {
		return "(undecodable resource)"
	}
	return m.Kind + "/" + m.Metadata.Name
}

func (m *Manager) reject(w *write, source, target, reason, detail string) {
	m.log.Warn("dynamic: resource rejected", "source", source, "target", target, "reason", reason, "detail", detail)
	w.metrics = append(w.metrics, func(ctx context.Context) {
		m.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	})
	w.ch.Audit = append(w.ch.Audit, store.AuditEntry{Time: m.clk.Now(), Actor: source, Action: "dynamic.propose", Target: target,
		Outcome: "rejected", Detail: reason + ": " + detail})
}

func (m *Manager) recordWithdraw(w *write, source, kind, name, reason, detail string) {
	m.log.Info("dynamic: part withdrawn", "source", source, "target", kind+"/"+name, "reason", reason)
	w.metrics = append(w.metrics, func(ctx context.Context) {
		m.withdrawn.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	})
	d := reason
	if detail != "" {
		d += ": " + detail
	}
	w.ch.Audit = append(w.ch.Audit, store.AuditEntry{Time: m.clk.Now(), Actor: source, Action: "dynamic.withdraw",
		Target: kind + "/" + name, Outcome: "withdrawn", Detail: d})
}

func (m *Manager) changed() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
	if m.opts.OnChange != nil {
		m.opts.OnChange()
	}
}

// List returns every stored part (expired ones included until they are withdrawn).
func (m *Manager) List(ctx context.Context) ([]Part, error) { return m.opts.Repo.List(ctx) }

// scanLive calls yield with every part not expired at now, without copying the list
// when the repo is the Manager's cache.
func (m *Manager) scanLive(ctx context.Context, now time.Time, yield func(Part)) error {
	if c, ok := m.opts.Repo.(*cachedRepo); ok {
		return c.scan(ctx, func(p Part) {
			if !p.Expired(now) {
				yield(p)
			}
		})
	}
	all, err := m.opts.Repo.List(ctx)
	for _, p := range all {
		if !p.Expired(now) {
			yield(p)
		}
	}
	return err
}

// Live returns the parts that have not expired at the manager's clock.
func (m *Manager) Live(ctx context.Context) ([]Part, error) {
	all, err := m.opts.Repo.List(ctx)
	if err != nil {
		return nil, err
	}
	now := m.clk.Now()
	out := all[:0]
	for _, p := range all {
		if !p.Expired(now) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Withdraw removes parts named kind/name (of one source, or of every source when source
// is empty) on an operator's request; it returns the parts removed.
func (m *Manager) Withdraw(ctx context.Context, source, kind, name, actor string) ([]Part, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	all, err := m.opts.Repo.List(ctx)
	if err != nil {
		return nil, err
	}
	w := &write{pending: map[string]Part{}}
	var removed []Part
	for _, p := range all {
		if p.Kind != kind || p.Name != name || source != "" && p.Source != source {
			continue
		}
		w.delete(PartRef{Source: p.Source, Kind: p.Kind, Name: p.Name})
		m.recordWithdraw(w, p.Source, p.Kind, p.Name, WithdrawOperator, "by "+actor)
		removed = append(removed, p)
	}
	if err := m.commit(ctx, w); err != nil {
		return nil, err
	}
	return removed, nil
}

// Expire withdraws every part expired at the manager's clock and returns how many it
// removed.
func (m *Manager) Expire(ctx context.Context) (int, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	all, err := m.opts.Repo.List(ctx)
	if err != nil {
		return 0, err
	}
	now := m.clk.Now()
	w := &write{pending: map[string]Part{}}
	n := 0
	for _, p := range all {
		if !p.Expired(now) {
			continue
		}
		w.delete(PartRef{Source: p.Source, Kind: p.Kind, Name: p.Name})
		m.recordWithdraw(w, p.Source, p.Kind, p.Name, WithdrawExpired, "expired at "+p.ExpiresAt.UTC().Format(time.RFC3339))
		n++
	}
	if err := m.commit(ctx, w); err != nil {
		return 0, err
	}
	return n, nil
}

// nextExpiry returns the earliest expiry among the stored parts (zero when none).
func (m *Manager) nextExpiry(ctx context.Context) (time.Time, error) {
	all, err := m.opts.Repo.List(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, p := range all {
		if !p.ExpiresAt.IsZero() && (next.IsZero() || p.ExpiresAt.Before(next)) {
			next = p.ExpiresAt
		}
	}
	return next, nil
}

// Run withdraws parts when they expire, with a timer set to the earliest expiry (re-armed
// whenever parts change, and at least every maxWait so parts written by another process
// are seen). It returns when ctx ends.
func (m *Manager) Run(ctx context.Context, maxWait time.Duration) {
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	wake := make(chan struct{}, 1)
	for {
		if _, err := m.Expire(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("dynamic: expire parts", "err", err)
		}
		wait := maxWait
		if next, err := m.nextExpiry(ctx); err == nil && !next.IsZero() {
			if d := next.Sub(m.clk.Now()); d < wait {
				wait = max(d, 0)
			}
		}
		t := m.clk.AfterFunc(wait, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-m.kick:
			t.Stop()
		}
	}
}

// Conflict is a dynamic resource left out of the desired state.
type Conflict struct {
	Part   string `json:"part"`
	Target string `json:"target"`
	Reason string `json:"reason"`
}

// Merge returns the desired resources: the static ones plus the resources of the parts
// live at now. A part naming the same Kind and name as a static resource is left out
// (static-wins) or replaces it (dynamic-wins); among parts of several sources for the
// same resource the most recently updated wins. The result is sorted by Kind and name.
func Merge(static []schemas.Object, parts []Part, now time.Time, resolution string) ([]schemas.Object, []Conflict) {
	byKey := map[string]schemas.Object{}
	isStatic := map[string]bool{}
	for _, o := range static {
		k := o.GetKind() + "/" + o.GetName()
		byKey[k], isStatic[k] = o, true
	}
	live := make([]Part, 0, len(parts))
	for _, p := range parts {
		if !p.Expired(now) && p.Resource() != nil {
			live = append(live, p)
		}
	}
	sort.SliceStable(live, func(i, j int) bool {
		if !live[i].UpdatedAt.Equal(live[j].UpdatedAt) {
			return live[i].UpdatedAt.Before(live[j].UpdatedAt)
		}
		return live[i].Source < live[j].Source
	})
	var conflicts []Conflict
	dynamicOwner := map[string]string{}
	for _, p := range live {
		k := p.Kind + "/" + p.Name
		if isStatic[k] && resolution != DynamicWins {
			conflicts = append(conflicts, Conflict{Part: p.Key(), Target: k, Reason: "static resource wins"})
			continue
		}
		if prev, ok := dynamicOwner[k]; ok {
			conflicts = append(conflicts, Conflict{Part: prev, Target: k, Reason: "replaced by a newer part of " + p.Source})
		}
		byKey[k], dynamicOwner[k] = p.Resource(), p.Key()
	}
	out := make([]schemas.Object, 0, len(byKey))
	for _, o := range byKey {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetKind() != out[j].GetKind() {
			return out[i].GetKind() < out[j].GetKind()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out, conflicts
}
