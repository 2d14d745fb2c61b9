package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestActionPlans(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	doc := json.RawMessage(`{"name":"assign-10-0-1-7","provider":"aws","action":"assignSecondaryIP"}`)
	plan := ActionPlanRecord{ID: "plan-1", Name: "assign-10-0-1-7", Provider: "aws", Action: "assignSecondaryIP",
		Target: "eni-123", Source: "Plugin/aws-planner", RiskLevel: "low", Document: doc}

	created, err := s.ProposeActionPlan(ctx, plan)
	if err != nil || !created {
		t.Fatalf("propose: %v, created %v", err, created)
	}
	plan.Target = "eni-456"
	if created, err := s.ProposeActionPlan(ctx, plan); err != nil || created {
		t.Fatalf("re-propose: %v, created %v", err, created)
	}
	if got, _ := s.GetActionPlan(ctx, "plan-1"); got.Target != "eni-456" || got.State != PlanProposed {
		t.Fatalf("re-proposed plan %+v", got)
	}
	if _, err := s.ProposeActionPlan(ctx, ActionPlanRecord{ID: "x", Name: "x", Document: json.RawMessage(`{`)}); err == nil {
		t.Error("invalid document accepted")
	}

	steps := []struct {
		name    string
		to      string
		wantErr error
		check   func(t *testing.T, p ActionPlanRecord)
	}{
		{name: "cannot execute before approval", to: PlanExecuting, wantErr: ErrConflict},
		{name: "approve", to: PlanApproved, check: func(t *testing.T, p ActionPlanRecord) {
			if p.ApprovedBy != "operator" || p.ApprovedAt.IsZero() {
				t.Errorf("approval not recorded: %+v", p)
			}
		}},
		{name: "approve twice is a conflict", to: PlanApproved, wantErr: ErrConflict},
		{name: "executing", to: PlanExecuting},
		{name: "failed keeps the result", to: PlanFailed, check: func(t *testing.T, p ActionPlanRecord) {
			if p.Result != "boom" || p.ExecutedAt.IsZero() {
				t.Errorf("failure not recorded: %+v", p)
			}
		}},
		{name: "approve again to retry", to: PlanApproved},
		{name: "executing again", to: PlanExecuting},
		{name: "executed", to: PlanExecuted},
		{name: "executed cannot be rejected", to: PlanRejected, wantErr: ErrConflict},
		{name: "undoing", to: PlanUndoing},
		{name: "a failed undo leaves it executed, with the result", to: PlanExecuted, check: func(t *testing.T, p ActionPlanRecord) {
			if p.Result != "boom" {
				t.Errorf("undo failure not recorded: %+v", p)
			}
		}},
		{name: "undoing again", to: PlanUndoing},
		{name: "undone", to: PlanUndone},
		{name: "undone is final", to: PlanApproved, wantErr: ErrConflict},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Set(clk.Now().Add(time.Second))
			p, err := s.TransitionActionPlan(ctx, "plan-1", PlanTransition{To: st.to, Actor: "operator", Result: "boom"})
			if st.wantErr != nil {
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("err = %v, want %v", err, st.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.State != st.to {
				t.Errorf("state %s, want %s", p.State, st.to)
			}
			if st.check != nil {
				st.check(t, p)
			}
		})
	}
	if _, err := s.TransitionActionPlan(ctx, "nope", PlanTransition{To: PlanApproved, Actor: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown plan: %v", err)
	}
	audit, err := s.ListAudit(ctx, AuditFilter{Action: "actionplan.approved"})
	if err != nil || len(audit) != 2 || audit[0].Target != "plan-1" || audit[0].Outcome != "proposed->approved" {
		t.Errorf("audit %+v, %v", audit, err)
	}
	list, err := s.ListActionPlans(ctx, ActionPlanFilter{States: []string{PlanUndone}})
	if err != nil || len(list) != 1 || string(list[0].Document) != string(doc) {
		t.Errorf("list %+v, %v", list, err)
	}
	if list, _ := s.ListActionPlans(ctx, ActionPlanFilter{States: []string{PlanProposed}}); len(list) != 0 {
		t.Errorf("proposed plans %+v", list)
	}
}

func TestActionPlanRefusedBudgetAndRecovery(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	doc := json.RawMessage(`{}`)
	refused := ActionPlanRecord{ID: "r1", Name: "r1", Provider: "aws", State: PlanRefused, Result: "allowed-cidrs: 192.0.2.9 is outside", Document: doc}
	if created, err := s.ProposeActionPlan(ctx, refused); err != nil || !created {
		t.Fatalf("refused plan: %v %v", created, err)
	}
	if p, _ := s.GetActionPlan(ctx, "r1"); p.State != PlanRefused || p.Result != refused.Result {
		t.Fatalf("refused plan stored as %+v", p)
	}
	if a, _ := s.ListAudit(ctx, AuditFilter{Action: "actionplan.refused"}); len(a) != 1 || a[0].Detail != refused.Result || a[0].Actor != "gate" {
		t.Fatalf("refusal audit %+v", a)
	}
	start := clk.Now()
	for _, id := range []string{"a1", "a2", "o1"} {
		provider := "aws"
		if id == "o1" {
			provider = "oci"
		}
		if _, err := s.ProposeActionPlan(ctx, ActionPlanRecord{ID: id, Name: id, Provider: provider, Document: doc}); err != nil {
			t.Fatal(err)
		}
		for _, to := range []string{PlanApproved, PlanExecuting} {
			if _, err := s.TransitionActionPlan(ctx, id, PlanTransition{To: to, Actor: "op"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := s.ProviderExecutionsSince(ctx, "aws", start); err != nil || n != 2 {
		t.Fatalf("aws executions = %d, %v; want 2", n, err)
	}
	clk.Set(clk.Now().Add(time.Hour))
	if n, _ := s.ProviderExecutionsSince(ctx, "aws", clk.Now().Add(-time.Minute)); n != 0 {
		t.Fatalf("aws executions in the last minute = %d, want 0", n)
	}
	got, err := s.RecoverInterruptedPlans(ctx, "routerd")
	if err != nil || len(got) != 3 {
		t.Fatalf("recovered %d plans, %v", len(got), err)
	}
	for _, p := range got {
		if p.State != PlanFailed || !strings.Contains(p.Result, "interrupted") {
			t.Errorf("recovered plan %+v", p)
		}
	}
}
