package qualify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/health"
	"routerd.net/routerd/federation/remediation"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/federation/transport"
)

// scenarioFunc runs one scenario in dir; a non-empty skip names why it could not run.
type scenarioFunc func(ctx context.Context, s *scenario, dir string) (skip string, err error)

var scenarioFuncs = map[string]scenarioFunc{
	"healthy":      healthy,
	"partition":    partition,
	"ttl-refresh":  ttlRefresh,
	"restart":      restart,
	"subscription": subscription,
	"config-fault": configFault,
	"security":     security,
	"multi-group":  multiGroup,
}

var abc = []string{"router-a", "router-b", "router-c"}

// healthy: events from each router reach every peer within the SLO; doctor healthy, no
// SLO violation, no remediation action.
func healthy(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, abc...); err != nil {
		return "", err
	}
	s.begin("emit at every router")
	for _, n := range s.c.nodes {
		if _, err := s.emit(ctx, n, groupLab, s.r.opts.Events, 30*time.Minute); err != nil {
			return "", err
		}
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	// Delivery latency per event: received at the peer minus observed at the source.
	var worst time.Duration
	for _, n := range s.c.nodes {
		l, err := maxLatency(ctx, n, groupLab, s.expectedAt(n, groupLab))
		if err != nil {
			return "", err
		}
		worst = max(worst, l)
	}
	s.check("slowest delivery (received at the peer - observed at the source) within the SLO (lagFailSeconds 2, warn 1)", "<= 2s", worst.Round(time.Millisecond).String(), worst <= 2*time.Second)
	for _, n := range s.c.nodes {
		if err := s.waitClaims(ctx, n); err != nil {
			return "", err
		}
	}
	for _, n := range s.c.nodes {
		v, err := s.waitHealthy(ctx, n)
		if err != nil {
			return "", err
		}
		s.check("doctor federation on "+n.name, "ok", v.Worst, v.Worst == health.SeverityOK)
		s.check("SLO violations on "+n.name, "none", orNone(v.violations("")), len(v.violations("")) == 0)
		s.check("remediation actions on "+n.name, "none", orNone(v.actions()), len(v.Plan.Actions) == 0)
	}
	return "", s.account(ctx, groupLab)
}

// cut partitions peer from the others (link down in its namespace, or its receiver
// stopped in loopback mode); heal undoes it.
func (s *scenario) cut(ctx context.Context, peer *node, from *node) (heal func() error, err error) {
	if s.c.lab != nil {
		s.begin(fmt.Sprintf("partition: link %s->%s down in %s's namespace", peer.name, from.name, peer.name))
		if err := s.c.setLink(peer, from, false); err != nil {
			return nil, err
		}
		s.note("partition: %s's interface toward %s set down inside its network namespace", peer.name, from.name)
		return func() error {
			s.begin("heal: link up")
			return s.c.setLink(peer, from, true)
		}, nil
	}
	s.begin("partition: stop " + peer.name + "'s receiver (SIGSTOP of its routerd-eventd)")
	pid, err := s.c.eventdPID(ctx, peer, groupLab)
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	s.note("partition (loopback mode, no namespaces): %s's listener stopped by SIGSTOP of its routerd-eventd (pid %d), resumed by SIGCONT", peer.name, pid)
	return func() error {
		s.begin("heal: SIGCONT the receiver")
		return syscall.Kill(pid, syscall.SIGCONT)
	}, nil
}

// waitViolation waits until from's doctor shows an SLO violation for group and a
// remediation action aimed at peer.
func (s *scenario) waitViolation(ctx context.Context, from *node, group, peer string) (doctorView, error) {
	s.begin("wait for the SLO violation and remediation on " + from.name)
	var v doctorView
	err := poll(ctx, "an SLO violation and a remediation action for "+peer, 100*time.Millisecond, func() (bool, error) {
		var err error
		v, err = doctor(ctx, from)
		if err != nil {
			return false, nil
		}
		return len(v.violations(group)) > 0 && slices.ContainsFunc(v.Plan.Actions, func(a remediation.Action) bool {
			return a.TargetPeer == peer && a.TargetGroup == group
		}), nil
	})
	return v, err
}

// partition: events queue while a peer is cut; SLO violation and remediation appear;
// after healing everything is delivered and doctor is healthy again.
func partition(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, abc...); err != nil {
		return "", err
	}
	a, b, c := s.c.node("router-a"), s.c.node("router-b"), s.c.node("router-c")
	heal, err := s.cut(ctx, b, a)
	if err != nil {
		return "", err
	}
	s.begin("emit at router-a during the partition")
	if _, err := s.emit(ctx, a, groupLab, s.r.opts.Events, 30*time.Minute); err != nil {
		return "", err
	}
	s.begin("router-c receives while router-b is cut")
	if err := poll(ctx, "router-c to receive", 25*time.Millisecond, func() (bool, error) {
		k, err := missing(ctx, c, groupLab, s.emittedIDs(groupLab, a.name))
		return err == nil && k == 0, nil
	}); err != nil {
		return "", err
	}
	queued, _ := missing(ctx, b, groupLab, s.emittedIDs(groupLab, a.name))
	s.check("events queued for router-b during the partition", fmt.Sprintf("%d missing at router-b", s.r.opts.Events), fmt.Sprintf("%d missing at router-b", queued), queued == s.r.opts.Events)
	v, err := s.waitViolation(ctx, a, groupLab, peerName(groupLab, b.name))
	if err != nil {
		return "", err
	}
	s.check("SLO violation on router-a during the partition", "at least one in lab", orNone(v.violations(groupLab)), len(v.violations(groupLab)) > 0)
	hasConn := slices.ContainsFunc(v.Plan.Actions, func(x remediation.Action) bool {
		return x.TargetPeer == b.name && (x.Action == remediation.CheckPeerConnectivity || x.Action == remediation.InvestigatePendingDeliveries)
	})
	s.check("remediation for router-b", remediation.CheckPeerConnectivity+" (or "+remediation.InvestigatePendingDeliveries+") targeting router-b", orNone(v.actions()), hasConn)
	if err := heal(); err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	if err := s.waitClaims(ctx, b); err != nil {
		return "", err
	}
	v, err = s.waitHealthy(ctx, a)
	if err != nil {
		return "", err
	}
	s.check("doctor on router-a after healing", "ok", v.Worst, v.Worst == health.SeverityOK)
	return "", s.account(ctx, groupLab)
}

// ttlRefresh: an event re-emitted with a longer TTL during a partition reaches the peer
// afterwards with the new expiry; no stale-TTL finding remains.
func ttlRefresh(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, abc...); err != nil {
		return "", err
	}
	a, b := s.c.node("router-a"), s.c.node("router-b")
	s.begin("emit at router-a with a 2m TTL")
	evs, err := s.emit(ctx, a, groupLab, s.r.opts.Events, 2*time.Minute)
	if err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	heal, err := s.cut(ctx, b, a)
	if err != nil {
		return "", err
	}
	s.begin("re-emit the events at router-a with a 20m TTL")
	newExp := time.Now().Add(20 * time.Minute).UTC().Truncate(time.Second)
	for i := range evs {
		evs[i].ExpiresAt = newExp
	}
	st, err := store.Open(a.storePath(), store.Options{BusyTimeout: 5 * time.Second})
	if err != nil {
		return "", err
	}
	n, err := st.ExtendExpiry(ctx, evs)
	st.Close()
	if err != nil {
		return "", err
	}
	s.checkInt("events whose expiry the re-emission extended at router-a", len(evs), n)
	// router-c gets the refresh while router-b is cut off: the partition holds.
	c := s.c.node("router-c")
	s.begin("wait until router-c holds the new expiry while router-b is cut")
	if err := poll(ctx, "the new expiry at router-c", 25*time.Millisecond, func() (bool, error) {
		have, err := storedIDs(ctx, c, groupLab)
		if err != nil {
			return false, nil
		}
		for _, e := range evs {
			if !have[e.ID].Equal(newExp) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return "", err
	}
	haveB, err := storedIDs(ctx, b, groupLab)
	if err != nil {
		return "", err
	}
	oldAtB := 0
	for _, e := range evs {
		if !haveB[e.ID].Equal(newExp) {
			oldAtB++
		}
	}
	s.checkInt("copies at router-b still with the old expiry during the partition", len(evs), oldAtB)
	if err := heal(); err != nil {
		return "", err
	}
	s.begin("wait until router-b and router-c hold the new expiry")
	var stale int
	err = poll(ctx, "the new expiry at router-b and router-c", 50*time.Millisecond, func() (bool, error) {
		stale = 0
		for _, p := range []*node{b, s.c.node("router-c")} {
			have, err := storedIDs(ctx, p, groupLab)
			if err != nil {
				return false, nil
			}
			for _, e := range evs {
				if !have[e.ID].Equal(newExp) {
					stale++
				}
			}
		}
		return stale == 0, nil
	})
	s.checkInt("copies at the peers with the old expiry after healing", 0, stale)
	if err != nil {
		return "", err
	}
	v, err := s.waitHealthy(ctx, a)
	if err != nil {
		return "", err
	}
	hasStale := slices.ContainsFunc(v.Problems, func(f health.Finding) bool { return f.Check == health.CheckStaleTTL })
	s.check("stale-ttl finding on router-a", "none", v.problems(), !hasStale)
	return "", s.account(ctx, groupLab)
}

// restart: SIGKILL the sender, then the receiver, mid-stream; delivery resumes with new
// pids and nothing is lost or duplicated.
func restart(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, abc...); err != nil {
		return "", err
	}
	a, b := s.c.node("router-a"), s.c.node("router-b")
	// A stream: one event every 5 ms at router-a, running across both crashes.
	s.begin("start the stream at router-a")
	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-streamCtx.Done():
				streamDone <- nil
				return
			case <-t.C:
			}
			if _, err := s.emit(ctx, a, groupLab, 1, 30*time.Minute); err != nil {
				streamDone <- err
				return
			}
		}
	}()
	defer stopStream()
	// midStream waits until router-b has part, but not all, of what was emitted so far.
	midStream := func(what string) error {
		s.begin("wait until the stream is in flight before " + what)
		return poll(ctx, "events in flight", 10*time.Millisecond, func() (bool, error) {
			ids := s.emittedIDs(groupLab, a.name)
			if len(ids) < 2*s.r.opts.Events/4 {
				return false, nil
			}
			k, err := missing(ctx, b, groupLab, ids)
			return err == nil && k < len(ids), nil
		})
	}
	if err := midStream("killing router-a"); err != nil {
		return "", err
	}
	s.begin("SIGKILL router-a (routerd and its routerd-eventd) mid-stream")
	oldA := a.pid()
	s.c.kill(a)
	s.note("router-a killed with %d events emitted", len(s.emittedIDs(groupLab, a.name)))
	s.begin("restart router-a")
	if err := s.c.start(ctx, a); err != nil {
		return "", err
	}
	s.check("router-a has a new pid", "!= "+strconv.Itoa(oldA), strconv.Itoa(a.pid()), a.pid() != oldA)
	if err := midStream("killing router-b"); err != nil {
		return "", err
	}
	s.begin("SIGKILL router-b mid-stream")
	oldB := b.pid()
	s.c.kill(b)
	s.note("router-b killed with %d events emitted", len(s.emittedIDs(groupLab, a.name)))
	s.begin("restart router-b")
	if err := s.c.start(ctx, b); err != nil {
		return "", err
	}
	s.check("router-b has a new pid", "!= "+strconv.Itoa(oldB), strconv.Itoa(b.pid()), b.pid() != oldB)
	s.begin("stop the stream")
	stopStream()
	if err := <-streamDone; err != nil {
		return "", err
	}
	s.note("stream: %d events emitted at router-a", len(s.emittedIDs(groupLab, a.name)))
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	for _, n := range []*node{b, s.c.node("router-c")} {
		if err := s.waitClaims(ctx, n); err != nil {
			return "", err
		}
	}
	return "", s.account(ctx, groupLab)
}

// subscription: the plugin traps, runs are recorded failed, a hot replace with the good
// module fixes it and the backlog is processed exactly once.
func subscription(ctx context.Context, s *scenario, dir string) (string, error) {
	if s.r.opts.TrapModule == "" {
		return "no trapping module (--trap-module, built from testdata/plugins/trap)", nil
	}
	if err := s.up(ctx, dir, "router-a", "router-b"); err != nil {
		return "", err
	}
	a, b := s.c.node("router-a"), s.c.node("router-b")
	if err := s.replaceModule(ctx, b, s.r.opts.TrapModule); err != nil {
		return "", err
	}
	s.begin("emit at router-a")
	if _, err := s.emit(ctx, a, groupLab, s.r.opts.Events, 30*time.Minute); err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	s.begin("wait for failed runs at router-b")
	var eff effectCounts
	if err := poll(ctx, "a failed subscription run at router-b", 25*time.Millisecond, func() (bool, error) {
		var err error
		eff, err = effects(ctx, b)
		return err == nil && eff.failedRuns >= 2, nil
	}); err != nil {
		return "", err
	}
	s.check("failed runs recorded while the module traps", ">= 2", strconv.Itoa(eff.failedRuns), eff.failedRuns >= 2)
	s.checkInt("claims made by the trapping module", 0, len(eff.claims))
	if err := s.replaceModule(ctx, b, s.r.opts.GoodModule); err != nil {
		return "", err
	}
	if err := s.waitClaims(ctx, b); err != nil {
		return "", err
	}
	return "", s.account(ctx, groupLab)
}

// replaceModule hot-replaces n's event-to-remote-claim module with the file src and
// waits until n's plugin host runs it (its digest in GET /v1/plugins).
func (s *scenario) replaceModule(ctx context.Context, n *node, src string) error {
	s.begin("hot replace " + n.name + "'s module with " + filepath.Base(src))
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	want := hex.EncodeToString(sum[:])
	if err := writeAtomic(filepath.Join(n.pluginDir(), pluginModule), b); err != nil {
		return err
	}
	return poll(ctx, n.name+" to load "+filepath.Base(src), 25*time.Millisecond, func() (bool, error) {
		var ps []struct {
			Name   string `json:"name"`
			Digest string `json:"digest"`
		}
		if err := s.c.control(ctx, n, "GET", "/v1/plugins", &ps); err != nil {
			return false, nil
		}
		for _, p := range ps {
			if p.Name == "event-to-remote-claim" && strings.TrimPrefix(p.Digest, "sha256:") == want {
				return true, nil
			}
		}
		return false, nil
	})
}

// configFault: a config with a bogus EventPeer is refused on reload, the running config
// keeps its digest, doctor names the fault; delivery goes on.
func configFault(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, "router-a", "router-b"); err != nil {
		return "", err
	}
	a := s.c.node("router-a")
	var before daemonStatus
	if err := s.c.control(ctx, a, "GET", "/v1/status", &before); err != nil {
		return "", err
	}
	s.check("router-a exposes its config digest", "sha256 hex", before.ConfigDigest, len(before.ConfigDigest) == 64)
	s.begin("write a bogus EventPeer and POST /v1/reload")
	bogus := filepath.Join(a.confDir, "zz-bogus-peer.yaml")
	doc := "apiVersion: federation.routerd.net/v1alpha1\nkind: EventPeer\nmetadata:\n  name: bogus-peer\nspec:\n  groupRef: no-such-group\n  nodeName: router-x\n  endpoint: not-a-url\n  direction: push\n"
	if err := os.WriteFile(bogus, []byte(doc), 0o600); err != nil {
		return "", err
	}
	err := s.c.control(ctx, a, "POST", "/v1/reload", nil)
	var he *httpError
	code, body := 200, ""
	if errors.As(err, &he) {
		code, body = he.Code, he.Body
	} else if err != nil {
		return "", err
	}
	s.check("reload with the bogus EventPeer refused", "HTTP 422", "HTTP "+strconv.Itoa(code), code == http.StatusUnprocessableEntity)
	s.check("the refusal names the bogus EventPeer", "problems mention bogus-peer", firstLine(body, "bogus-peer"), strings.Contains(body, "bogus-peer"))
	var after daemonStatus
	if err := s.c.control(ctx, a, "GET", "/v1/status", &after); err != nil {
		return "", err
	}
	s.check("running config digest after the refused reload", before.ConfigDigest, after.ConfigDigest, after.ConfigDigest == before.ConfigDigest)
	s.check("status records the refused reload", "lastReloadError set", after.LastReloadErr, after.LastReloadErr != "")
	s.begin("routerctl doctor config")
	out, exit := runDoctorConfig(ctx, s.r.opts.RouterctlBinary, a.confDir, s.r.settingsFile())
	s.check("doctor config exit code", "non-zero (problems found)", strconv.Itoa(exit), exit > 0)
	named := doctorNames(out, "validate", "bogus-peer")
	s.check("doctor config's validate check fails naming the fault", "fail, details mention bogus-peer", named, strings.HasPrefix(named, "fail:"))
	s.begin("emit at router-a with the bogus file still present")
	if _, err := s.emit(ctx, a, groupLab, s.r.opts.Events, 30*time.Minute); err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	s.begin("remove the bogus file and reload")
	if err := os.Remove(bogus); err != nil {
		return "", err
	}
	if err := s.c.control(ctx, a, "POST", "/v1/reload", nil); err != nil {
		return "", fmt.Errorf("reload of the repaired config: %w", err)
	}
	var fixed daemonStatus
	if err := s.c.control(ctx, a, "GET", "/v1/status", &fixed); err != nil {
		return "", err
	}
	s.check("digest after reloading the repaired config", before.ConfigDigest, fixed.ConfigDigest, fixed.ConfigDigest == before.ConfigDigest)
	return "", s.account(ctx, groupLab)
}

// runDoctorConfig runs routerctl doctor config -o json on dir.
func runDoctorConfig(ctx context.Context, bin, dir, settingsFile string) (string, int) {
	cmd := exec.CommandContext(ctx, bin, "doctor", "config", "--config-dir", dir, "-o", "json")
	cmd.Env = append(os.Environ(), "ROUTERD_SETTINGS="+settingsFile)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

// doctorNames returns "<status>: <detail>" of the doctor JSON check named check, the
// detail being the first one mentioning sub.
func doctorNames(out, check, sub string) string {
	var rep struct {
		Checks []struct {
			Name    string   `json:"name"`
			Status  string   `json:"status"`
			Details []string `json:"details"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return "unreadable doctor output: " + err.Error()
	}
	for _, c := range rep.Checks {
		if c.Name != check {
			continue
		}
		for _, d := range c.Details {
			if strings.Contains(d, sub) {
				return c.Status + ": " + d
			}
		}
		return c.Status + ": (no detail mentions " + sub + ")"
	}
	return "no " + check + " check"
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return "(not found)"
}

// security: bad signature, stale timestamp, malformed body and replay are each rejected
// with their reason counted in /v1/status, and nothing of them is stored.
func security(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, "router-a", "router-b"); err != nil {
		return "", err
	}
	b := s.c.node("router-b")
	secret := []byte(s.c.secrets[groupLab])
	before, err := s.c.receiverStatus(ctx, b, groupLab)
	if err != nil {
		return "", err
	}
	storedBefore, err := storedIDs(ctx, b, groupLab)
	if err != nil {
		return "", err
	}
	client, base := s.c.receiverClient(b, groupLab)
	mk := func() ([]byte, string) {
		e := event.New(groupLab, eventType, "router-a", "10.88.250.1", map[string]string{"address": "10.88.250.1", "domain": "lab", "ownerSide": "onprem", "peerRef": "onprem-main"}, time.Minute, time.Now())
		body, _ := json.Marshal(e)
		return body, e.ID
	}
	send := func(path string, body []byte, ts int64, sig string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(transport.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(transport.HeaderSignature, sig)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var er transport.ErrorResponse
		_ = json.NewDecoder(resp.Body).Decode(&er)
		return resp.StatusCode, string(er.Reason), nil
	}
	now := time.Now().Unix()
	var rejectedIDs []string
	cases := []struct {
		name   string
		reason transport.Reason
		req    func() ([]byte, int64, string)
	}{
		{"bad signature", transport.ReasonBadSignature, func() ([]byte, int64, string) {
			body, id := mk()
			rejectedIDs = append(rejectedIDs, id)
			return body, now, transport.Sign([]byte("not-the-group-secret"), now, body)
		}},
		{"stale timestamp", transport.ReasonStaleTimestamp, func() ([]byte, int64, string) {
			body, id := mk()
			rejectedIDs = append(rejectedIDs, id)
			old := now - 3600
			return body, old, transport.Sign(secret, old, body)
		}},
		{"malformed body", transport.ReasonBadBody, func() ([]byte, int64, string) {
			body := []byte(`{"id": "not closed`)
			return body, now, transport.Sign(secret, now, body)
		}},
	}
	for _, tc := range cases {
		s.begin("send a request with a " + tc.name)
		body, ts, sig := tc.req()
		code, reason, err := send(transport.PathEvents, body, ts, sig)
		if err != nil {
			return "", err
		}
		s.check(tc.name+" rejected", "4xx "+string(tc.reason), fmt.Sprintf("%d %s", code, reason), code/100 == 4 && reason == string(tc.reason))
	}
	s.begin("send a valid batch, then replay it")
	evBody, validID := mk()
	batch, _ := json.Marshal(transport.BatchRequest{Events: []json.RawMessage{evBody}})
	sig := transport.Sign(secret, now, batch)
	code, _, err := send(transport.PathBatch, batch, now, sig)
	if err != nil {
		return "", err
	}
	s.check("the original of the replayed batch accepted", "200", strconv.Itoa(code), code == http.StatusOK)
	code, reason, err := send(transport.PathBatch, batch, now, sig)
	if err != nil {
		return "", err
	}
	s.check("replayed batch rejected", "409 replay", fmt.Sprintf("%d %s", code, reason), code == http.StatusConflict && reason == string(transport.ReasonReplay))
	// A v1 single-event POST has no replay cache (v1 compatible): a re-sent event is a
	// duplicate, acknowledged and not stored again.
	s.begin("re-send the valid event as a v1 single-event POST")
	ts1 := now + 1
	code, _, err = send(transport.PathEvents, evBody, ts1, transport.Sign(secret, ts1, evBody))
	if err != nil {
		return "", err
	}
	s.check("re-sent v1 event acknowledged as a duplicate", "200", strconv.Itoa(code), code == http.StatusOK)
	after, err := s.c.receiverStatus(ctx, b, groupLab)
	if err != nil {
		return "", err
	}
	for _, rsn := range []transport.Reason{transport.ReasonBadSignature, transport.ReasonStaleTimestamp, transport.ReasonBadBody, transport.ReasonReplay} {
		d := after.Counters.Rejected[string(rsn)] - before.Counters.Rejected[string(rsn)]
		s.check("/v1/status counters.rejected."+string(rsn)+" increase", "1", strconv.FormatInt(d, 10), d == 1)
	}
	dd := after.Counters.Duplicate - before.Counters.Duplicate
	s.check("/v1/status counters.duplicate increase", "1", strconv.FormatInt(dd, 10), dd == 1)
	storedAfter, err := storedIDs(ctx, b, groupLab)
	if err != nil {
		return "", err
	}
	stored := 0
	for _, id := range rejectedIDs {
		if _, ok := storedAfter[id]; ok {
			stored++
		}
	}
	s.checkInt("rejected events stored at router-b", 0, stored)
	s.checkInt("events stored at router-b by the attack (only the valid original)", 1, len(storedAfter)-len(storedBefore))
	_, ok := storedAfter[validID]
	s.check("the valid original stored once", "stored", fmt.Sprint(ok), ok)
	// Normal traffic still flows after the attack.
	if _, err := s.emit(ctx, s.c.node("router-a"), groupLab, s.r.opts.Events, 30*time.Minute); err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	return "", s.account(ctx, groupLab)
}

// multiGroup: two groups with separate secrets; a fault in lab2 shows only in lab2's SLO
// report and remediation targets.
func multiGroup(ctx context.Context, s *scenario, dir string) (string, error) {
	if err := s.up(ctx, dir, "router-a", "router-b"); err != nil {
		return "", err
	}
	a, b := s.c.node("router-a"), s.c.node("router-b")
	s.check("lab and lab2 have separate secrets", "different", "different="+fmt.Sprint(s.c.secrets[groupLab] != s.c.secrets[groupLab2]), s.c.secrets[groupLab] != s.c.secrets[groupLab2])
	var heal func() error
	if s.c.lab != nil {
		s.begin("fault in lab2: nftables drop rule for its port in router-b's namespace")
		script := fmt.Sprintf("table inet qualify {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport %d drop\n }\n}\n", portLab2)
		if err := nft(ctx, b, script); err != nil {
			return "", err
		}
		s.note("fault: nftables rule `tcp dport %d drop` (lab2's port) in router-b's namespace", portLab2)
		heal = func() error {
			s.begin("heal: delete the nftables table")
			return nft(ctx, b, "delete table inet qualify\n")
		}
	} else {
		s.begin("fault in lab2: stop router-b's lab2 receiver (SIGSTOP)")
		pid, err := s.c.eventdPID(ctx, b, groupLab2)
		if err != nil {
			return "", err
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return "", err
		}
		s.note("fault (loopback mode): router-b's lab2 routerd-eventd (pid %d) stopped by SIGSTOP", pid)
		heal = func() error { s.begin("heal: SIGCONT"); return syscall.Kill(pid, syscall.SIGCONT) }
	}
	s.begin("emit in both groups at router-a")
	if _, err := s.emit(ctx, a, groupLab, s.r.opts.Events, 30*time.Minute); err != nil {
		return "", err
	}
	if _, err := s.emit(ctx, a, groupLab2, s.r.opts.Events, 30*time.Minute); err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab); err != nil {
		return "", err
	}
	v, err := s.waitViolation(ctx, a, groupLab2, peerName(groupLab2, b.name))
	if err != nil {
		return "", err
	}
	s.check("lab2 SLO violations", "at least one", orNone(v.violations(groupLab2)), len(v.violations(groupLab2)) > 0)
	s.check("lab SLO violations", "none", orNone(v.violations(groupLab)), len(v.violations(groupLab)) == 0)
	other := slices.ContainsFunc(v.Plan.Actions, func(x remediation.Action) bool { return x.TargetGroup != groupLab2 })
	s.check("remediation targets only lab2", "every action targets lab2", orNone(v.actions()), !other && len(v.Plan.Actions) > 0)
	if err := heal(); err != nil {
		return "", err
	}
	if err := s.waitDelivered(ctx, groupLab2); err != nil {
		return "", err
	}
	v, err = s.waitHealthy(ctx, a)
	if err != nil {
		return "", err
	}
	s.check("doctor on router-a after healing", "ok", v.Worst, v.Worst == health.SeverityOK)
	return "", s.account(ctx, groupLab, groupLab2)
}
