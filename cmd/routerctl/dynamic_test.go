package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

// routerctl runs the CLI in-process and returns its exit code and stdout.
func routerctl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r := runCtl(t, "", args...)
	return r.code, r.stdout + r.stderr + r.err
}

// stateWithClaim makes a state dir whose store holds one dynamic claim.
func stateWithClaim(t *testing.T) (dir, eventID string) {
	t.Helper()
	dir = t.TempDir()
	st, err := store.Open(filepath.Join(dir, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pol := &schemas.DynamicOverridePolicy{}
	pol.APIVersion, pol.Kind, pol.Metadata.Name = schemas.ConfigAPIVersion, "DynamicOverridePolicy", "p"
	pol.Spec.Allow = []schemas.OverrideAllow{{Source: "EventSubscription/*", Targets: []schemas.ResourceRef{{Kind: "RemoteAddressClaim"}}}}
	m, err := dynamic.NewManager(dynamic.Options{Repo: dynamic.NewSQLRepo(st)})
	if err != nil {
		t.Fatal(err)
	}
	m.SetConfig(dynamic.Config{Policies: []*schemas.DynamicOverridePolicy{pol}})
	eventID = event.NewID()
	claim := `{"apiVersion":"hybrid.routerd.net/v1alpha1","kind":"RemoteAddressClaim","metadata":{"name":"onprem-10-88-60-9"},` +
		`"spec":{"domainRef":"lab","address":"10.88.60.9","delivery":{"peerRef":"onprem-main"}}}`
	b := subscribe.Batch{ID: "remote-claims/1-1", Subscription: "remote-claims", Group: "lab",
		Events: []subscribe.Record{{Seq: 1, ID: eventID, Subject: "10.88.60.9"}}}
	if err := m.HandleResult(context.Background(), b, subscribe.Result{Resources: []json.RawMessage{json.RawMessage(claim)}}); err != nil {
		t.Fatal(err)
	}
	return dir, eventID
}

func TestDynamicCommandsWithoutDaemon(t *testing.T) {
	dir, id := stateWithClaim(t)
	flags := []string{"--state-dir", dir, "--control-socket", filepath.Join(dir, "none.sock"), "--config-dir", dir}
	code, out := routerctl(t, append([]string{"dynamic", "list", "-o", "json"}, flags...)...)
	var parts []dynamic.Part
	if code != exitOK || json.Unmarshal([]byte(out), &parts) != nil || len(parts) != 1 || parts[0].EventIDs[0] != id {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	code, out = routerctl(t, append([]string{"dynamic", "list"}, flags...)...)
	if code != exitOK || !strings.Contains(out, "onprem-10-88-60-9") || !strings.Contains(out, id) {
		t.Fatalf("list table: exit %d\n%s", code, out)
	}
	code, out = routerctl(t, append([]string{"dynamic", "show", "RemoteAddressClaim/onprem-10-88-60-9"}, flags...)...)
	for _, want := range []string{"kind: DynamicConfigPart", "routerd.net/event-id: " + id, "source: EventSubscription/remote-claims"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("show: exit %d, want %q in\n%s", code, want, out)
		}
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "bad target", args: []string{"dynamic", "show", "nonsense"}, want: exitUsage},
		{name: "unknown part", args: []string{"dynamic", "show", "RemoteAddressClaim", "nope"}, want: exitFailed},
		{name: "withdraw", args: []string{"dynamic", "withdraw", "RemoteAddressClaim/onprem-10-88-60-9"}, want: exitOK},
		{name: "withdraw twice", args: []string{"dynamic", "withdraw", "RemoteAddressClaim/onprem-10-88-60-9"}, want: exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, out := routerctl(t, append(tt.args, flags...)...); code != tt.want {
				t.Fatalf("exit %d, want %d\n%s", code, tt.want, out)
			}
		})
	}
	code, out = routerctl(t, append([]string{"dynamic", "list", "-o", "json"}, flags...)...)
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("after withdraw: exit %d\n%s", code, out)
	}
}

func TestSubscriptionListWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "routerd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	evs := []event.Event{
		event.New("lab", "routerd.client.ipv4.observed", "router-a", "10.88.1.1", nil, time.Hour, now),
		event.New("lab", "routerd.client.ipv4.observed", "router-b", "10.88.1.2", nil, time.Hour, now), // its own: excluded
		event.New("lab", "routerd.client.ipv4.observed", "router-c", "10.88.1.3", nil, time.Hour, now),
	}
	if _, err := st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out := routerctl(t, "subscription", "list", "-o", "json", "--state-dir", dir, "--control-socket", filepath.Join(dir, "none.sock"),
		"--config-dir", filepath.Join("..", "..", "testdata", "demo", "router-b"))
	var subs []subscribe.Status
	if code != exitOK || json.Unmarshal([]byte(out), &subs) != nil {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if len(subs) != 1 || subs[0].Name != "remote-claims" || subs[0].Pending != 2 || subs[0].State != subscribe.StateStopped || subs[0].LagSeconds <= 0 {
		t.Fatalf("subscriptions %+v", subs)
	}
}

// TestSubscriptionListFromDaemon checks that a running daemon's answer is used.
func TestSubscriptionListFromDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "routerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/subscriptions" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode([]subscribe.Status{{Name: "live", State: subscribe.StateRetrying, LastError: "plugin trapped", Failures: 3}})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	code, out := routerctl(t, "subscription", "list", "--state-dir", dir, "--control-socket", sock)
	if code != exitOK || !strings.Contains(out, "live") || !strings.Contains(out, "retrying") || !strings.Contains(out, "plugin trapped") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestDynamicWithdrawThroughDaemon checks that a running daemon gets the withdrawal (so
// it can reconcile at once) and that its answer is shown.
func TestDynamicWithdrawThroughDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "routerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan map[string]string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/dynamic/withdraw" {
			http.NotFound(w, r)
			return
		}
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body
		_ = json.NewEncoder(w).Encode([]dynamic.Part{{Source: "EventSubscription/remote-claims", Kind: body["kind"], Name: body["name"], Generation: 4}})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	code, out := routerctl(t, "dynamic", "withdraw", "RemoteAddressClaim/onprem-10-88-60-9", "--state-dir", dir, "--control-socket", sock)
	if code != exitOK || !strings.Contains(out, "RemoteAddressClaim/onprem-10-88-60-9") || !strings.Contains(out, "EventSubscription/remote-claims") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	body := <-got
	if body["kind"] != "RemoteAddressClaim" || body["name"] != "onprem-10-88-60-9" || body["actor"] != "routerctl" {
		t.Fatalf("request body %v", body)
	}
}
