package main

import (
	"testing"

	"routerd.net/routerd/plugins/internal/providerplan"
	"routerd.net/routerd/plugins/internal/providerplan/plantest"
)

// TestPlanGolden: the plan for testdata/plan-request.json (an on-prem claim to capture,
// a claim that moved to the cloud, a satisfied claim, an orphaned address, an excluded
// gateway) is testdata/plan-result.json.
func TestPlanGolden(t *testing.T) { plantest.Golden(t, providerplan.OCI) }
