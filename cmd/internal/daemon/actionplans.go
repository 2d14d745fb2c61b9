package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/actionplan"
	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host"
	"routerd.net/routerd/host/capability/provider"
	"routerd.net/routerd/schemas"
)

// profiles serves the host's provider_request with the CloudProviderProfiles of the
// current configuration. A profile whose spec did not change keeps its credential cache
// across reloads.
type profiles struct {
	mu    sync.RWMutex
	byRef map[string]profileEntry
	opts  provider.ProfileOptions
}

type profileEntry struct {
	spec    [sha256.Size]byte
	profile provider.Profile
	err     error
}

// update rebuilds the profiles from cfg; a profile that cannot be built is logged and
// answers its requests with the error (the rest keep working).
func (p *profiles) update(cfg *schemas.Config) []error {
	next := map[string]profileEntry{}
	var errs []error
	p.mu.RLock()
	prev := p.byRef
	p.mu.RUnlock()
	for _, c := range cfg.CloudProviderProfiles() {
		raw, _ := json.Marshal(c.Spec)
		sum := sha256.Sum256(raw)
		if old, ok := prev[c.Metadata.Name]; ok && old.spec == sum {
			next[c.Metadata.Name] = old
			continue
		}
		prof, err := provider.FromConfig(c, p.opts)
		if err != nil {
			errs = append(errs, err)
		}
		next[c.Metadata.Name] = profileEntry{spec: sum, profile: prof, err: err}
	}
	p.mu.Lock()
	p.byRef = next
	p.mu.Unlock()
	return errs
}

// lookup implements provider.Requester.Profiles.
func (p *profiles) lookup(ref string) (provider.Profile, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.byRef[ref]
	if !ok || e.err != nil {
		return provider.Profile{}, false
	}
	return e.profile, true
}

// providerPlugins lists the loaded plugins with the plan or execute hook enabled, with
// the profiles their grants name.
func providerPlugins(h *host.Host) []actionplan.Plugin {
	var out []actionplan.Plugin
	for _, st := range h.Status() {
		info, err := h.Inspect(st.Name)
		if err != nil || info.Manifest == nil {
			continue
		}
		enabled := func(hook abi.Hook) bool {
			return info.Manifest.HasHook(hook) && (len(info.Spec.Hooks) == 0 || slices.Contains(info.Spec.Hooks, hook))
		}
		p := actionplan.Plugin{Name: st.Name, Plan: enabled(abi.HookPlan), Execute: enabled(abi.HookExecute),
			ProfileRefs: info.Spec.Grants.ProviderRequest.ProfileRefs}
		if p.Plan || p.Execute {
			out = append(out, p)
		}
	}
	return out
}

// actionConfig is the action plan service's view of the merged configuration.
func (d *Daemon) actionConfig(m dynamic.Merged, plugins []actionplan.Plugin) (actionplan.Config, error) {
	objs := slices.Clone(m.Config.Objects())
	for _, c := range m.Claims {
		objs = append(objs, c)
	}
	return actionplan.ConfigFrom(objs, plugins)
}

// planActions retries the failed plans that are due (a retryable failure, the retry
// policy's wait passed) and runs the planners after a reconciliation whose claims differ
// from the last planned ones (each planner sees the whole claim set, so unchanged claims
// need no run).
func (d *Daemon) planActions(ctx context.Context, m dynamic.Merged) {
	plugins := providerPlugins(d.host)
	if len(plugins) == 0 {
		return // no provider plugin: nothing to plan or retry (and no claim encoded)
	}
	cfg, err := d.actionConfig(m, plugins)
	if err != nil {
		d.log.Error("action plans: config", "err", err)
		return
	}
	if retried, err := d.actions.RetryDue(ctx, cfg); err != nil {
		d.log.Error("action plans: retry", "err", err)
	} else if len(retried) > 0 {
		d.log.Info("action plans: retried after retryable failures", "plans", len(retried))
	}
	if !slices.ContainsFunc(cfg.Plugins, func(p actionplan.Plugin) bool { return p.Plan }) {
		return
	}
	raw, _ := json.Marshal(cfg.Resources)
	sum := sha256.Sum256(raw)
	d.mu.Lock()
	same := sum == d.lastPlanned
	d.mu.Unlock()
	if same {
		return
	}
	rep, err := d.actions.Plan(ctx, cfg)
	if err != nil {
		d.log.Error("action plans: plan", "err", err)
		return
	}
	d.mu.Lock()
	d.lastPlanned = sum
	d.mu.Unlock()
	for _, s := range rep.Skipped {
		d.log.Warn("action plans: planner skipped a document", "detail", s)
	}
}

// currentActionConfig merges the live parts now (for an operator's execute or undo).
func (d *Daemon) currentActionConfig(ctx context.Context) (actionplan.Config, error) {
	parts, err := d.dyn.Live(ctx)
	if err != nil {
		return actionplan.Config{}, err
	}
	return d.actionConfig(dynamic.MergeConfig(d.Config(), parts, time.Now()), providerPlugins(d.host))
}

// peerKey is the context key of the control API caller's Unix user.
type peerKey struct{}

// withPeer records the user at the other end of a control socket connection
// (SO_PEERCRED): approvals and executions are audited under that name.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || cred == nil {
		return ctx
	}
	name := "uid:" + strconv.Itoa(int(cred.Uid))
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		name = u.Username
	}
	return context.WithValue(ctx, peerKey{}, name)
}

// actor is the caller of a control API request ("control-api" when unknown).
func actor(r *http.Request) string {
	if name, ok := r.Context().Value(peerKey{}).(string); ok && name != "" {
		return name
	}
	return "control-api"
}

// ActionRequest is the body of the action plan POST endpoints.
type ActionRequest struct {
	// Reason is recorded with an approval or rejection.
	Reason string `json:"reason,omitempty"`
}

// registerActionPlanRoutes adds the action plan endpoints of the control API:
//
//	GET  /v1/actionplans[?state=S]        plans, oldest first
//	GET  /v1/actionplans/{id}
//	POST /v1/actionplans/plan             run the planners now
//	POST /v1/actionplans/{id}/approve     {reason}; the caller's Unix user is the approver
//	POST /v1/actionplans/{id}/reject      {reason}
//	POST /v1/actionplans/{id}/execute     gate, preconditions, executor (409 when refused)
//	POST /v1/actionplans/{id}/undo
//	GET  /v1/audit/verify                 the audit chain's verification
func registerActionPlanRoutes(mux *http.ServeMux, d *Daemon) {
	mux.HandleFunc("GET /v1/actionplans", func(w http.ResponseWriter, r *http.Request) {
		f := store.ActionPlanFilter{}
		if st := r.URL.Query()["state"]; len(st) > 0 {
			f.States = st
		}
		plans, err := d.store.ListActionPlans(r.Context(), f)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, plans)
	})
	mux.HandleFunc("GET /v1/actionplans/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, err := d.store.GetActionPlan(r.Context(), r.PathValue("id"))
		writeActionResult(w, p, err)
	})
	mux.HandleFunc("POST /v1/actionplans/plan", func(w http.ResponseWriter, r *http.Request) {
		cfg, err := d.currentActionConfig(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		rep, err := d.actions.Plan(r.Context(), cfg)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	transition := func(fn func(ctx context.Context, id, actor, reason string) (store.ActionPlanRecord, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req ActionRequest
			if r.ContentLength != 0 {
				dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&req); err != nil {
					writeJSON(w, http.StatusBadRequest, apiError{Error: "want a JSON body {reason?}: " + err.Error()})
					return
				}
			}
			p, err := fn(r.Context(), r.PathValue("id"), actor(r), req.Reason)
			writeActionResult(w, p, err)
		}
	}
	mux.HandleFunc("POST /v1/actionplans/{id}/approve", transition(d.actions.Approve))
	mux.HandleFunc("POST /v1/actionplans/{id}/reject", transition(d.actions.Reject))
	execute := func(undo bool) http.HandlerFunc {
		return transition(func(ctx context.Context, id, who, _ string) (store.ActionPlanRecord, error) {
			cfg, err := d.currentActionConfig(ctx)
			if err != nil {
				return store.ActionPlanRecord{}, err
			}
			return d.actions.Execute(ctx, cfg, id, who, undo)
		})
	}
	mux.HandleFunc("POST /v1/actionplans/{id}/execute", execute(false))
	mux.HandleFunc("POST /v1/actionplans/{id}/undo", execute(true))
	mux.HandleFunc("GET /v1/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		v, err := d.store.VerifyAudit(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// ActionResponse is the answer of the action plan endpoints: the plan as stored now and,
// when the request was refused, why.
type ActionResponse struct {
	Plan  store.ActionPlanRecord `json:"plan"`
	Error string                 `json:"error,omitempty"`
}

func writeActionResult(w http.ResponseWriter, p store.ActionPlanRecord, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ActionResponse{Plan: p})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ActionResponse{Plan: p, Error: err.Error()})
	case errors.Is(err, actionplan.ErrRefused), errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, ActionResponse{Plan: p, Error: err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, ActionResponse{Plan: p, Error: fmt.Sprintf("%v", err)})
	}
}

// ActionPlans returns the action plan service (the demo and tests drive it as routerctl
// does through the control API).
func (d *Daemon) ActionPlans() *actionplan.Service { return d.actions }

// ExecuteActionPlan executes (or undoes) plan id with the live configuration, as
// POST /v1/actionplans/{id}/execute does.
func (d *Daemon) ExecuteActionPlan(ctx context.Context, id, actor string, undo bool) (store.ActionPlanRecord, error) {
	cfg, err := d.currentActionConfig(ctx)
	if err != nil {
		return store.ActionPlanRecord{}, err
	}
	return d.actions.Execute(ctx, cfg, id, actor, undo)
}
