package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Action plan states (action_plans.state).
const (
	PlanProposed  = "proposed"
	PlanApproved  = "approved"
	PlanRejected  = "rejected"
	PlanExecuting = "executing"
	PlanExecuted  = "executed"
	PlanFailed    = "failed"
	// PlanRefused: the ProviderActionPolicy gate refused the plan; Result holds the rule
	// and the reason. Nothing was sent.
	PlanRefused = "refused"
	// PlanUndoing and PlanUndone: the plan's undo runs, and ran.
	PlanUndoing = "undoing"
	PlanUndone  = "undone"
)

// planTransitions lists the states each state may move to.
var planTransitions = map[string][]string{
	PlanProposed:  {PlanApproved, PlanRejected, PlanRefused},
	PlanApproved:  {PlanExecuting, PlanRejected, PlanRefused},
	PlanExecuting: {PlanExecuted, PlanFailed},
	PlanFailed:    {PlanApproved, PlanRejected, PlanRefused},  // approve again to retry
	PlanRefused:   {PlanProposed, PlanApproved, PlanRejected}, // the policy or the state changed
	PlanExecuted:  {PlanUndoing},
	PlanUndoing:   {PlanUndone, PlanExecuted}, // back to executed when the undo failed
}

// ErrConflict is returned when a change does not fit the row's current state.
var ErrConflict = errors.New("store: conflict")

// ActionPlanRecord is a stored provider action plan.
type ActionPlanRecord struct {
	// ID identifies the plan (for example its idempotencyKey, or a ULID).
	ID string `json:"id"`
	// Name, Provider, Action, Target, RiskLevel and IdempotencyKey are copied from the
	// plan document for listing and filtering.
	Name           string `json:"name"`
	Provider       string `json:"provider,omitempty"`
	Action         string `json:"action,omitempty"`
	Target         string `json:"target,omitempty"`
	RiskLevel      string `json:"riskLevel,omitempty"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Source is who proposed it, e.g. Plugin/aws-planner.
	Source string `json:"source,omitempty"`
	// State is one of the Plan* constants. ProposeActionPlan stores a new plan as
	// proposed, or as refused when State is PlanRefused (Result then says why).
	State string `json:"state"`
	// Document is the ActionPlan JSON.
	Document json.RawMessage `json:"document"`
	// Result is the execution result (JSON) or error text.
	Result string `json:"result,omitempty"`
	// ApprovedBy names the approver (operator or policy).
	ApprovedBy string    `json:"approvedBy,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	ApprovedAt time.Time `json:"approvedAt,omitzero"`
	ExecutedAt time.Time `json:"executedAt,omitzero"`
}

// ProposeActionPlan stores a new plan in state proposed. Proposing an id that exists
// again refreshes the document of a plan still proposed and reports created=false; a plan
// already approved, executed, ... is left as it is.
func (s *Store) ProposeActionPlan(ctx context.Context, p ActionPlanRecord) (created bool, err error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	if p.ID == "" || p.Name == "" {
		return false, fmt.Errorf("store: propose action plan: id and name are required")
	}
	if !json.Valid(p.Document) {
		return false, fmt.Errorf("store: propose action plan %s: document is not valid JSON", p.ID)
	}
	now := s.now().UnixNano()
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		state := PlanProposed
		if p.State == PlanRefused {
			state = PlanRefused
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO action_plans
			(id, name, provider, action, target, source, state, risk_level, idempotency_key, document, result, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			p.ID, p.Name, p.Provider, p.Action, p.Target, p.Source, state, p.RiskLevel, p.IdempotencyKey, string(p.Document), p.Result, now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if created = n == 1; created {
			if state == PlanRefused {
				return s.AppendAuditTx(ctx, tx, AuditEntry{Time: time.Unix(0, now), Actor: "gate", Action: "actionplan." + PlanRefused,
					Target: p.ID, Outcome: "new->" + PlanRefused, Detail: p.Result})
			}
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE action_plans SET name = ?, provider = ?, action = ?, target = ?, source = ?,
			risk_level = ?, idempotency_key = ?, document = ?, updated_at = ? WHERE id = ? AND state = 'proposed'`,
			p.Name, p.Provider, p.Action, p.Target, p.Source, p.RiskLevel, p.IdempotencyKey, string(p.Document), now, p.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: propose action plan %s: %w", p.ID, err)
	}
	return created, nil
}

const planColumns = `id, name, provider, action, target, source, state, risk_level, idempotency_key, document, result,
	approved_by, created_at, updated_at, approved_at, executed_at`

func scanPlan(sc interface{ Scan(...any) error }) (ActionPlanRecord, error) {
	var (
		p                    ActionPlanRecord
		doc                  string
		created, updated     int64
		approved, executedAt sql.NullInt64
	)
	if err := sc.Scan(&p.ID, &p.Name, &p.Provider, &p.Action, &p.Target, &p.Source, &p.State, &p.RiskLevel,
		&p.IdempotencyKey, &doc, &p.Result, &p.ApprovedBy, &created, &updated, &approved, &executedAt); err != nil {
		return p, err
	}
	p.Document = json.RawMessage(doc)
	p.CreatedAt, p.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	p.ApprovedAt, p.ExecutedAt = timeFromDB(approved), timeFromDB(executedAt)
	return p, nil
}

// GetActionPlan returns the plan with the given id, or ErrNotFound.
func (s *Store) GetActionPlan(ctx context.Context, id string) (ActionPlanRecord, error) {
	if s.isClosed() {
		return ActionPlanRecord{}, ErrClosed
	}
	p, err := scanPlan(s.r.QueryRowContext(ctx, `SELECT `+planColumns+` FROM action_plans WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("store: action plan %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("store: get action plan %s: %w", id, err)
	}
	return p, nil
}

// ActionPlanFilter selects plans for ListActionPlans. Zero fields do not filter.
type ActionPlanFilter struct {
	States []string
	Source string
	// Limit bounds the result (0: no limit).
	Limit int
}

// ListActionPlans returns plans oldest first. The result is never nil.
func (s *Store) ListActionPlans(ctx context.Context, f ActionPlanFilter) ([]ActionPlanRecord, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	q := `SELECT ` + planColumns + ` FROM action_plans WHERE 1=1`
	var args []any
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(", ?", len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if f.Source != "" {
		q, args = q+` AND source = ?`, append(args, f.Source)
	}
	q += ` ORDER BY created_at, id`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	return queryList(ctx, s.r, "list action plans", q, args, func(rows *sql.Rows) (ActionPlanRecord, error) {
		return scanPlan(rows)
	})
}

// PlanTransition is a state change of an action plan.
type PlanTransition struct {
	// To is the new state; it must be allowed from the current one:
	// proposed → approved|rejected, approved → executing|rejected,
	// executing → executed|failed, failed → approved|rejected.
	To string
	// Actor is who makes the change (recorded in the audit log; ApprovedBy for approved).
	Actor string
	// Result is stored with executed and failed.
	Result string
	// Detail goes to the audit log.
	Detail string
}

// TransitionActionPlan moves a plan to t.To and appends an audit entry, in one
// transaction, so that two processes cannot both approve or execute the same plan.
//
// # Errors
//
// ErrNotFound for an unknown id; ErrConflict when t.To is not allowed from the current
// state (the message names both).
func (s *Store) TransitionActionPlan(ctx context.Context, id string, t PlanTransition) (ActionPlanRecord, error) {
	if s.isClosed() {
		return ActionPlanRecord{}, ErrClosed
	}
	if t.Actor == "" {
		return ActionPlanRecord{}, fmt.Errorf("store: action plan %s: transition needs an actor", id)
	}
	var out ActionPlanRecord
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT state FROM action_plans WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !slices.Contains(planTransitions[cur], t.To) {
			return fmt.Errorf("%w: plan is %s, cannot become %s", ErrConflict, cur, t.To)
		}
		now := s.now().UnixNano()
		q := `UPDATE action_plans SET state = ?, updated_at = ?`
		args := []any{t.To, now}
		switch t.To {
		case PlanApproved:
			q, args = q+`, approved_by = ?, approved_at = ?, result = ''`, append(args, t.Actor, now)
		case PlanExecuted, PlanFailed:
			if cur == PlanUndoing { // a failed undo: the plan stays executed, the result says why
				q, args = q+`, result = ?`, append(args, t.Result)
				break
			}
			q, args = q+`, result = ?, executed_at = ?`, append(args, t.Result, now)
		case PlanRefused, PlanUndone:
			q, args = q+`, result = ?`, append(args, t.Result)
		}
		if _, err := tx.ExecContext(ctx, q+` WHERE id = ?`, append(args, id)...); err != nil {
			return err
		}
		if err := s.AppendAuditTx(ctx, tx, AuditEntry{Time: time.Unix(0, now), Actor: t.Actor, Action: "actionplan." + t.To,
			Target: id, Outcome: cur + "->" + t.To, Detail: t.Detail}); err != nil {
			return err
		}
		out, err = scanPlan(tx.QueryRowContext(ctx, `SELECT `+planColumns+` FROM action_plans WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return ActionPlanRecord{}, fmt.Errorf("store: action plan %s: %w", id, err)
	}
	return out, nil
}

// ProviderExecutionsSince counts the executions and undos of provider's plans that
// started at or after since (the ProviderActionPolicy budget).
func (s *Store) ProviderExecutionsSince(ctx context.Context, provider string, since time.Time) (int, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log a JOIN action_plans p ON p.id = a.target
		WHERE a.action IN ('actionplan.executing', 'actionplan.undoing') AND a.time >= ? AND p.provider = ?`,
		since.UnixNano(), provider).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count %s executions: %w", provider, err)
	}
	return n, nil
}

// RecoverInterruptedPlans settles plans a stopped daemon left running: executing
// becomes failed and undoing returns to executed, each with a result saying so, so that
// an operator approves them again instead of the host repeating a provider change it
// cannot know the outcome of. It returns the plans it changed.
func (s *Store) RecoverInterruptedPlans(ctx context.Context, actor string) ([]ActionPlanRecord, error) {
	plans, err := s.ListActionPlans(ctx, ActionPlanFilter{States: []string{PlanExecuting, PlanUndoing}})
	if err != nil {
		return nil, err
	}
	var out []ActionPlanRecord
	for _, p := range plans {
		to := PlanFailed
		if p.State == PlanUndoing {
			to = PlanExecuted
		}
		r, err := s.TransitionActionPlan(ctx, p.ID, PlanTransition{To: to, Actor: actor,
			Result: `{"outcome":"interrupted","message":"routerd stopped while this plan was ` + p.State + `; check the provider, then approve it again"}`,
			Detail: "interrupted while " + p.State})
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
