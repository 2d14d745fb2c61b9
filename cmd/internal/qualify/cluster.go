package qualify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"routerd.net/routerd/cmd/internal/settings"
	"routerd.net/routerd/dataplane/netnslab"
)

// node is one router of a scenario: its files, its namespace and its routerd process.
type node struct {
	name    string // router-a
	dir     string
	confDir string
	ns      string // network namespace ("" in loopback mode)
	// ports are the listen ports per group (loopback mode: free ports on 127.0.0.1).
	ports map[string]int
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has been waited for
	pids  []int         // every routerd pid this node had, in start order
}

func (n *node) stateDir() string  { return filepath.Join(n.dir, "state") }
func (n *node) pluginDir() string { return filepath.Join(n.dir, "plugins") }
func (n *node) socket() string    { return filepath.Join(n.dir, "routerd.sock") }
func (n *node) logPath() string   { return filepath.Join(n.dir, "routerd.log") }
func (n *node) storePath() string { return settings.Settings{StateDir: n.stateDir()}.StorePath() }
func (n *node) pid() int          { return n.pids[len(n.pids)-1] }
func (n *node) inGroup(g string) bool {
	for _, x := range groupsOf(n.name) {
		if x == g {
			return true
		}
	}
	return false
}

// cluster is the running routers of one scenario.
type cluster struct {
	r       *runner
	dir     string
	nodes   []*node
	lab     *netnslab.Lab
	secrets map[string]string
}

func (c *cluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// newCluster prepares (but does not start) routers names in dir: namespaces and veths
// when the run uses them, configs with per-group secrets, plugin dirs.
func newCluster(ctx context.Context, r *runner, dir string, names []string, scenario string) (*cluster, error) {
	c := &cluster{r: r, dir: dir, secrets: map[string]string{}}
	for _, g := range []string{groupLab, groupLab2} {
		s, err := newSecret()
		if err != nil {
			return nil, err
		}
		c.secrets[g] = s
		r.addSecret(s)
	}
	for _, name := range names {
		n := &node{name: name, dir: filepath.Join(dir, name), ports: map[string]int{}}
		n.confDir = filepath.Join(n.dir, "conf.d")
		c.nodes = append(c.nodes, n)
	}
	if r.netns {
		var short []string
		for _, n := range c.nodes {
			short = append(short, shortName(n.name))
		}
		lab, err := netnslab.Setup(ctx, netnslab.Options{Routers: short, Prefix: r.nsPrefix(scenario)})
		if err != nil {
			return nil, fmt.Errorf("qualify: network namespaces: %w", err)
		}
		c.lab = lab
		for _, n := range c.nodes {
			n.ns = lab.Router(shortName(n.name)).NetNS
			n.ports[groupLab], n.ports[groupLab2] = portLab, portLab2
		}
	} else {
		for _, n := range c.nodes {
			ports, err := freePorts(2)
			if err != nil {
				return nil, err
			}
			n.ports[groupLab], n.ports[groupLab2] = ports[0], ports[1]
		}
	}
	for _, n := range c.nodes {
		rc := routerConf{Node: n.name}
		for _, g := range groupsOf(n.name) {
			addr := "127.0.0.1"
			if r.netns {
				addr = "0.0.0.0"
			}
			rc.Groups = append(rc.Groups, groupConf{Name: g, Address: addr, Port: n.ports[g]})
			for _, p := range c.nodes {
				if p == n || !p.inGroup(g) {
					continue
				}
				rc.Peers = append(rc.Peers, peerConf{Name: peerName(g, p.name), Node: p.name, Group: g, Endpoint: c.endpoint(n, p, g)})
			}
		}
		if err := writeConfig(n.confDir, rc, c.secrets); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(n.pluginDir(), 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(r.opts.goodModule(), filepath.Join(n.pluginDir(), pluginModule)); err != nil {
			return nil, err
		}
		// The compiled-module cache is shared by every router of the run.
		if err := os.MkdirAll(n.stateDir(), 0o700); err != nil {
			return nil, err
		}
		if err := os.Symlink(r.cacheDir(), filepath.Join(n.stateDir(), "cache")); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// endpoint is the URL from's sender pushes to for peer to in group.
func (c *cluster) endpoint(from, to *node, group string) string {
	if c.lab == nil {
		return "http://127.0.0.1:" + strconv.Itoa(to.ports[group])
	}
	l, _ := c.lab.Router(shortName(to.name)).LinkTo(shortName(from.name))
	return "http://" + l.Local.Addr().String() + ":" + strconv.Itoa(to.ports[group])
}

// start starts routerd for n (again) and waits until its control API and every
// routerd-eventd of its groups answer.
func (c *cluster) start(ctx context.Context, n *node) error {
	bin := c.r.opts.BinDir
	args := []string{filepath.Join(bin, "routerd"), "run",
		"--config-dir", n.confDir, "--state-dir", n.stateDir(), "--plugin-dir", n.pluginDir(),
		"--control-socket", n.socket(), "--metrics-address", "", "--no-config-watch",
		"--eventd-binary", filepath.Join(bin, "routerd-eventd"), "--reconcile-interval", "-1s",
		"--log-level", "info", "--shutdown-timeout", "5s"}
	if n.ns != "" {
		args = append([]string{"ip", "netns", "exec", n.ns}, args...)
	}
	logf, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "ROUTERD_SETTINGS="+c.r.settingsFile())
	// Own process group: SIGKILL of the group is a crash of routerd and its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("qualify: start %s: %w", n.name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	n.pids = append(n.pids, cmd.Process.Pid)
	c.r.track(cmd.Process.Pid)
	done := n.done
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	return c.waitReady(ctx, n)
}

// waitReady waits for n's control API and each of its groups' receivers.
func (c *cluster) waitReady(ctx context.Context, n *node) error {
	return poll(ctx, n.name+" to answer on its control socket and every receiver", 20*time.Millisecond, func() (bool, error) {
		select {
		case <-n.done:
			return false, fmt.Errorf("%s: routerd exited during start (log %s: %s)", n.name, n.logPath(), tail(n.logPath(), 5))
		default:
		}
		var st daemonStatus
		if err := c.control(ctx, n, "GET", "/v1/status", &st); err != nil {
			return false, nil
		}
		for _, g := range groupsOf(n.name) {
			if _, err := c.receiverStatus(ctx, n, g); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

// kill SIGKILLs n's routerd and its children (the process group) and waits for it.
func (c *cluster) kill(n *node) {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// stop ends n's routerd: SIGTERM, then SIGKILL of the group after 5 s.
func (c *cluster) stop(n *node) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
	}
	// Children that outlived routerd, and routerd itself when it did not stop in time.
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// close stops every router and deletes the namespaces.
func (c *cluster) close() error {
	for _, n := range c.nodes {
		c.stop(n)
	}
	if c.lab != nil {
		return c.lab.Teardown()
	}
	return nil
}

// daemonStatus is the part of routerd's GET /v1/status the harness reads.
type daemonStatus struct {
	ConfigDigest  string `json:"configDigest"`
	Reloads       int    `json:"reloads"`
	LastReloadErr string `json:"lastReloadError"`
	Eventd        []struct {
		Group   string `json:"group"`
		PID     int    `json:"pid"`
		Running bool   `json:"running"`
	} `json:"eventd"`
}

// control calls n's control API; out (may be nil) receives a 2xx JSON body. A non-2xx
// answer is an *httpError.
func (c *cluster) control(ctx context.Context, n *node, method, path string, out any) error {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", n.socket())
		}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, "http://routerd"+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &httpError{Code: resp.StatusCode, Body: string(body)}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// httpError is a non-2xx answer.
type httpError struct {
	Code int
	Body string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, strings.TrimSpace(e.Body))
}

// receiverClient returns an HTTP client whose connections are made inside n's namespace
// (plain in loopback mode), and the base URL of n's receiver for group.
func (c *cluster) receiverClient(n *node, group string) (*http.Client, string) {
	tr := &http.Transport{DialContext: nsDialer(n.ns), DisableKeepAlives: true}
	return &http.Client{Timeout: 3 * time.Second, Transport: tr}, "http://127.0.0.1:" + strconv.Itoa(n.ports[group])
}

// receiverStatus reads GET /v1/status of n's receiver for group.
func (c *cluster) receiverStatus(ctx context.Context, n *node, group string) (receiverStatus, error) {
	client, base := c.receiverClient(n, group)
	var st receiverStatus
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// receiverStatus is the part of routerd-eventd's GET /v1/status the harness reads.
type receiverStatus struct {
	Group    string `json:"group"`
	Node     string `json:"node"`
	Counters struct {
		Accepted  int64            `json:"accepted"`
		Duplicate int64            `json:"duplicate"`
		Rejected  map[string]int64 `json:"rejected"`
	} `json:"counters"`
}

// nsDialer dials from inside network namespace ns (the process's own when ""). The
// socket is created on a locked OS thread switched into ns and back.
func nsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		if ns == "" {
			return d.DialContext(ctx, network, addr)
		}
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				ch <- result{err: err}
				return // the thread ends with the goroutine
			}
			defer orig.Close()
			target, err := netns.GetFromName(ns)
			if err != nil {
				ch <- result{err: fmt.Errorf("open netns %s: %w", ns, err)}
				return
			}
			defer target.Close()
			if err := netns.Set(target); err != nil {
				ch <- result{err: fmt.Errorf("enter netns %s: %w", ns, err)}
				return
			}
			conn, err := d.DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread() // else the thread is discarded
			}
			ch <- result{conn, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// setLink sets n's interface toward peer down or up (namespaced labs only).
func (c *cluster) setLink(n, peer *node, up bool) error {
	l, ok := c.lab.Router(shortName(n.name)).LinkTo(shortName(peer.name))
	if !ok {
		return fmt.Errorf("qualify: %s has no link to %s", n.name, peer.name)
	}
	h, err := netns.GetFromName(n.ns)
	if err != nil {
		return err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	link, err := nh.LinkByName(l.Dev)
	if err != nil {
		return fmt.Errorf("qualify: %s: %s: %w", n.name, l.Dev, err)
	}
	if up {
		return nh.LinkSetUp(link)
	}
	return nh.LinkSetDown(link)
}

// nft runs nft with args inside n's namespace.
func nft(ctx context.Context, n *node, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qualify: nft in %s: %w: %s", n.ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// eventdPID returns the pid of n's routerd-eventd for group.
func (c *cluster) eventdPID(ctx context.Context, n *node, group string) (int, error) {
	var st daemonStatus
	if err := c.control(ctx, n, "GET", "/v1/status", &st); err != nil {
		return 0, err
	}
	for _, e := range st.Eventd {
		if e.Group == group && e.Running && e.PID > 0 {
			return e.PID, nil
		}
	}
	return 0, fmt.Errorf("qualify: %s: no running routerd-eventd for group %s", n.name, group)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("qualify: free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// poll checks cond every interval until it holds, fails, or ctx ends (the error then
// names what was awaited).
func poll(ctx context.Context, what string, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("qualify: %w", err)
	}
	return writeAtomic(dst, b)
}

// writeAtomic replaces dst by rename, so a watcher never sees half a file.
func writeAtomic(dst string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// tail returns the last n lines of a file, joined by " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
