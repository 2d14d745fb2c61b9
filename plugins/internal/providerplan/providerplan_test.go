package providerplan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"routerd.net/routerd/abi"
)

var aws = AWS

func claimDoc(name, address, owner, ref, nic, eventID string) string {
	ann := ""
	if eventID != "" {
		ann = fmt.Sprintf(`,"annotations":{"routerd.net/event-id":%q}`, eventID)
	}
	return fmt.Sprintf(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":%q%s},
		"spec":{"domainRef":"lab","address":%q,"ownerSide":%q,"capture":{"type":"provider-secondary-ip","providerRef":%q,"nicRef":%q,"excludeAddresses":["10.88.60.1"]}}}`,
		name, ann, address, owner, ref, nic)
}

func profileDoc(name, provider string) string {
	return fmt.Sprintf(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"CloudProviderProfile","metadata":{"name":%q},"spec":{"provider":%q,"region":"eu-central-1","auth":{"mode":"external-command","command":"/usr/local/bin/creds"}}}`, name, provider)
}

func observationDoc(ref, nic string, ips ...string) string {
	b, _ := json.Marshal(ips)
	return fmt.Sprintf(`{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"ProviderObservation","metadata":{"name":%q},"spec":{"provider":"aws","providerRef":%q,"nic":%q,"privateIPs":%s,"observedAt":"2026-12-06T10:00:00Z"}}`, nic, ref, nic, b)
}

const domainDoc = `{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"AddressMobilityDomain","metadata":{"name":"lab"},"spec":{"prefix":"10.88.60.0/24","mode":"selective-address","peerRef":"onprem-main"}}`

func docs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// brief is "action address nic risk" per plan, the part of a plan the table checks.
func brief(plans []abi.ActionPlan) []string {
	out := []string{}
	for _, p := range plans {
		out = append(out, p.Action+" "+p.Parameters[abi.ParamAddress]+" "+p.Parameters[abi.ParamNIC]+" "+p.RiskLevel)
	}
	return out
}

func TestPlan(t *testing.T) {
	profiles := []string{profileDoc("aws-main", "aws"), profileDoc("oci-main", "oci"), domainDoc}
	tests := []struct {
		name        string
		docs        []string
		want        []string
		wantSkipped string
	}{
		{name: "onprem claim, nothing observed: assign",
			docs: []string{claimDoc("onprem-10-88-60-9", "10.88.60.9/32", "onprem", "aws-main", "eni-1", "ev1")},
			want: []string{"assign-secondary-ip 10.88.60.9 eni-1 low"}},
		{name: "ownerSide defaults to onprem",
			docs: []string{claimDoc("c", "10.88.60.9", "", "aws-main", "eni-1", "")},
			want: []string{"assign-secondary-ip 10.88.60.9 eni-1 low"}},
		{name: "onprem claim already assigned: nothing",
			docs: []string{claimDoc("c", "10.88.60.9", "onprem", "aws-main", "eni-1", "ev1"), observationDoc("aws-main", "eni-1", "10.88.60.9")},
			want: []string{}},
		{name: "cloud claim still assigned: unassign",
			docs: []string{claimDoc("c", "10.88.60.9", "cloud", "aws-main", "eni-1", "ev2"), observationDoc("aws-main", "eni-1", "10.88.60.9")},
			want: []string{"unassign-secondary-ip 10.88.60.9 eni-1 medium"}},
		{name: "cloud claim not assigned: nothing",
			docs: []string{claimDoc("c", "10.88.60.9", "cloud", "aws-main", "eni-1", "ev2"), observationDoc("aws-main", "eni-1")},
			want: []string{}},
		{name: "orphan inside a domain: unassign, high risk",
			docs: []string{observationDoc("aws-main", "eni-1", "10.88.60.20", "192.0.2.5")},
			want: []string{"unassign-secondary-ip 10.88.60.20 eni-1 high"}},
		{name: "claim moved to another NIC: assign there, the old NIC is released by the claim's own plan only",
			docs: []string{claimDoc("c", "10.88.60.9", "onprem", "aws-main", "eni-2", "ev3"), observationDoc("aws-main", "eni-1", "10.88.60.9")},
			want: []string{"assign-secondary-ip 10.88.60.9 eni-2 low"}},
		{name: "another provider's claim is not planned here",
			docs: []string{claimDoc("c", "10.88.60.9", "onprem", "oci-main", "vnic-1", "ev1")},
			want: []string{}},
		{name: "excluded address is never captured",
			docs: []string{claimDoc("gw", "10.88.60.1", "onprem", "aws-main", "eni-1", "ev1")},
			want: []string{}},
		{name: "unknown profile is skipped and said",
			docs:        []string{claimDoc("c", "10.88.60.9", "onprem", "nope", "eni-1", "ev1")},
			want:        []string{},
			wantSkipped: "CloudProviderProfile nope not found"},
		{name: "claim without a NIC is skipped and said",
			docs:        []string{claimDoc("c", "10.88.60.9", "onprem", "aws-main", "", "ev1")},
			want:        []string{},
			wantSkipped: "needs spec.address, spec.capture.providerRef and spec.capture.nicRef"},
		{name: "garbage document is skipped and said",
			docs:        []string{`{"kind":`},
			want:        []string{},
			wantSkipped: "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, skipped := aws.Plan(Parse(docs(append(append([]string{}, profiles...), tt.docs...)...)))
			if got := brief(plans); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plans = %q, want %q", got, tt.want)
			}
			if joined := strings.Join(skipped, "\n"); tt.wantSkipped == "" && joined != "" || !strings.Contains(joined, tt.wantSkipped) {
				t.Errorf("skipped = %q, want it to contain %q", joined, tt.wantSkipped)
			}
		})
	}
}

// TestPlanFields checks a whole plan: preconditions, effects, undo, target, mode.
func TestPlanFields(t *testing.T) {
	plans, _ := aws.Plan(Parse(docs(profileDoc("aws-main", "aws"), claimDoc("onprem-10-88-60-9", "10.88.60.9", "onprem", "aws-main", "eni-1", "ev1"))))
	if len(plans) != 1 {
		t.Fatalf("plans = %d, want 1", len(plans))
	}
	p := plans[0]
	if p.Provider != "aws" || p.ProviderRef != "aws-main" || p.Mode != "dry-run" || p.Target["claim"] != "onprem-10-88-60-9" || p.Target["nic"] != "eni-1" {
		t.Errorf("plan identity wrong: %+v", p)
	}
	if p.Parameters["region"] != "eu-central-1" {
		t.Errorf("provider parameter region = %q", p.Parameters["region"])
	}
	if p.Undo == nil || p.Undo.Action != abi.ActionUnassignSecondaryIP || len(p.Undo.Parameters) != 0 {
		t.Errorf("undo = %+v", p.Undo)
	}
	names := []string{}
	for _, pc := range p.Preconditions {
		names = append(names, pc.Name+"="+pc.Expect+"@"+pc.Target)
	}
	want := []string{"claim-owner-side=onprem@10.88.60.9", "address-not-assigned=absent@eni-1"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("preconditions = %q, want %q", names, want)
	}
	if len(p.ExpectedEffects) == 0 || !strings.HasPrefix(p.Name, "assign-secondary-ip-10-88-60-9-") || len(p.IdempotencyKey) != 32 {
		t.Errorf("effects/name/key: %q %q %q", p.ExpectedEffects, p.Name, p.IdempotencyKey)
	}
}

// TestMoveOnpremCloudOnprem follows one address: on-prem (assign), executed, moved to the
// cloud (unassign), executed, back on-prem (assign again, with a new key).
func TestMoveOnpremCloudOnprem(t *testing.T) {
	prof := profileDoc("aws-main", "aws")
	step := func(owner, eventID string, observed ...string) []abi.ActionPlan {
		plans, _ := aws.Plan(Parse(docs(prof, claimDoc("c", "10.88.60.9", owner, "aws-main", "eni-1", eventID), observationDoc("aws-main", "eni-1", observed...))))
		return plans
	}
	first := step("onprem", "ev1")
	if got := brief(first); !reflect.DeepEqual(got, []string{"assign-secondary-ip 10.88.60.9 eni-1 low"}) {
		t.Fatalf("onprem: %q", got)
	}
	if got := step("onprem", "ev1", "10.88.60.9"); len(got) != 0 {
		t.Fatalf("onprem, executed: %q, want nothing", brief(got))
	}
	if got := brief(step("cloud", "ev2", "10.88.60.9")); !reflect.DeepEqual(got, []string{"unassign-secondary-ip 10.88.60.9 eni-1 medium"}) {
		t.Fatalf("cloud: %q", got)
	}
	again := step("onprem", "ev3")
	if len(again) != 1 || again[0].IdempotencyKey == first[0].IdempotencyKey {
		t.Fatalf("back onprem must be a new assign with a new key: %+v", again)
	}
}

// TestDeterministic: the same state in any document order gives byte-identical plans.
func TestDeterministic(t *testing.T) {
	var ds []string
	ds = append(ds, profileDoc("aws-main", "aws"), domainDoc, observationDoc("aws-main", "eni-9", "10.88.60.200"))
	for i := range 50 {
		owner := "onprem"
		if i%3 == 0 {
			owner = "cloud"
		}
		ds = append(ds, claimDoc(fmt.Sprintf("c%d", i), fmt.Sprintf("10.88.60.%d", i+2), owner, "aws-main", fmt.Sprintf("eni-%d", i%4), fmt.Sprintf("ev%d", i)))
		ds = append(ds, observationDoc("aws-main", fmt.Sprintf("eni-%d", i%4), fmt.Sprintf("10.88.60.%d", i+2)))
	}
	want, _ := aws.Plan(Parse(docs(ds...)))
	wantJSON, _ := json.Marshal(want)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		got, _ := aws.Plan(Parse(docs(ds...)))
		if gotJSON, _ := json.Marshal(got); string(gotJSON) != string(wantJSON) {
			t.Fatalf("plans differ with document order: %q, want %q", brief(got), brief(want))
		}
	}
	if len(want) == 0 {
		t.Fatal("no plans: the test state should need some")
	}
}
