// Package sandbox brings up a real Docker Swarm of N managers and M workers on one
// Linux machine, for tests and demos: one dockerd per node, each in its own network
// namespace on a private bridge, reachable from the host over TCP with mutual TLS.
// No mocks: the daemons are the machine's dockerd (Debian's docker.io).
//
// Requirements: root, dockerd/containerd/runc, iproute2, iptables, util-linux
// (hack/install-prereqs.sh installs them). See Available.
//
// Typical use in a test:
//
//	func TestMain(m *testing.M) { _ = sandbox.CleanupStale(); os.Exit(m.Run()) }
//
//	sandbox.SkipOrFail(t)
//	tar, err := sandbox.NumbersImages(ctx)  // builds/caches the numbers images tarball
//	sw, err := sandbox.Start(ctx, sandbox.Options{Managers: 3, Workers: 2, ImagesTar: tar, Logf: t.Logf})
//	defer sw.Close()
//	cli, err := sw.Client(sw.Managers()[0])
//
// Nodes are named <Name>1..<Name>N (Name defaults to "node"), managers first: with 3
// managers and 2 workers node1..node3 are managers, node4 and node5 workers, which
// matches the seed scenario (drain node5 and node3). Node k of instance i has the IP
// 192.168.(213+i).(10+k) and its API at tcp://<IP>:2376. See layout.go for the names
// of everything the sandbox creates on the host.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// Options configures Start.
type Options struct {
	// Name prefixes the node names (and hostnames): <Name>1..<Name>N. Short,
	// lower-case letters, digits and '-'. Default "node".
	Name string
	// Managers (at least 1) and Workers; at most 15 nodes in all.
	Managers, Workers int
	// ImagesTar is a `docker save` tarball loaded into every node (optional); see
	// NumbersImages for the numbers test images.
	ImagesTar string
	// Logf receives progress messages (e.g. t.Logf). Optional.
	Logf func(format string, args ...any)
	// Detach lets the daemons outlive this process (hack/sandbox.sh up). A detached
	// sandbox is not touched by CleanupStale; CleanupAll (hack/sandbox.sh down) or
	// Close removes it. Tests leave this false: the daemons then die with the test
	// process, and CleanupStale removes what a killed run leaves.
	Detach bool
	// DaemonTimeout bounds the start of each dockerd (default 45s).
	DaemonTimeout time.Duration
}

// Swarm is a running sandbox.
type Swarm struct {
	Nodes []*Node
	// PEM of the CA that signed every node's server certificate and the client
	// certificate, and of the client certificate and key (ECDSA P-256).
	CACertPEM, ClientCertPEM, ClientKeyPEM []byte
	// CertDir holds ca.pem, cert.pem and key.pem for the docker CLI (DOCKER_CERT_PATH).
	CertDir string
	// Dir is the sandbox's state directory; Instance its index (see layout.go).
	Dir      string
	Instance int
	// Bridge is the host-side bridge; BridgeIP the host's address on it.
	Bridge, BridgeIP string

	opts     Options
	logf     func(string, ...any)
	lock     *os.File
	mu       sync.Mutex
	closed   bool
	closeErr error
}

// Node is one dockerd of the sandbox.
type Node struct {
	Name     string // also its hostname and its Swarm node name
	Role     string // "manager" or "worker"
	IP       string
	Endpoint string // tcp://IP:2376 (mutual TLS)
	Socket   string // unix:///run/swarm-operator-sandbox/<i>/<name>/docker.sock
	ID       string // Swarm node ID
	Netns    string // network namespace name (/run/netns/<Netns>)
	Dir      string // state directory (data-root, exec-root, tls, log)
	LogPath  string // dockerd's log

	s     *Swarm
	index int // 1-based
	mu    sync.Mutex
	proc  *daemonProc
	cli   *client.Client
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,11}$`)

// Start brings up a Swarm: it allocates a free instance (lock, subnet), makes the
// certificates, the bridge and the namespaces, starts all daemons at once, loads
// opts.ImagesTar into each, inits the Swarm on the first manager and joins the other
// managers and the workers. It returns when every node is ready (and every manager
// reachable). On error everything it made is removed.
func Start(ctx context.Context, opts Options) (_ *Swarm, err error) {
	if opts.Name == "" {
		opts.Name = "node"
	}
	if !nameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("sandbox: Name %q: want lower-case letters, digits and '-', at most 12", opts.Name)
	}
	if opts.Managers < 1 || opts.Workers < 0 || opts.Managers+opts.Workers > maxNodes {
		return nil, fmt.Errorf("sandbox: want 1 or more managers, 0 or more workers, at most %d nodes (got %d+%d)", maxNodes, opts.Managers, opts.Workers)
	}
	if opts.DaemonTimeout == 0 {
		opts.DaemonTimeout = 45 * time.Second
	}
	if opts.ImagesTar != "" {
		if _, err := os.Stat(opts.ImagesTar); err != nil {
			return nil, fmt.Errorf("sandbox: ImagesTar: %w", err)
		}
	}
	if err := Available(); err != nil {
		return nil, err
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	t0 := time.Now()

	idx, lock, err := allocateInstance(ctx, logf)
	if err != nil {
		return nil, err
	}
	s := &Swarm{
		Dir: instanceDir(idx), Instance: idx, Bridge: bridgeName(idx), BridgeIP: bridgeIP(idx),
		opts: opts, logf: logf, lock: lock,
	}
	defer func() {
		if err != nil {
			if cerr := s.Close(); cerr != nil {
				err = fmt.Errorf("%w\n(cleanup after the failure: %w)", err, cerr)
			}
		}
	}()
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	if opts.Detach {
		if err := os.WriteFile(filepath.Join(s.Dir, detachedMarker), []byte(fmt.Sprintf("started by pid %d\n", os.Getpid())), 0o644); err != nil {
			return nil, err
		}
	}

	// Certificates.
	p, err := newPKI(fmt.Sprintf("%s%d", prefix, idx))
	if err != nil {
		return nil, err
	}
	s.CACertPEM, s.ClientCertPEM, s.ClientKeyPEM = p.caPEM, p.clientCertPEM, p.clientKeyPEM
	s.CertDir = filepath.Join(s.Dir, "client")
	if err := writeTLSDir(s.CertDir, p.caPEM, p.clientCertPEM, p.clientKeyPEM); err != nil {
		return nil, err
	}
	total := opts.Managers + opts.Workers
	for k := 1; k <= total; k++ {
		n := &Node{Name: fmt.Sprintf("%s%d", opts.Name, k), Role: "manager", IP: nodeIP(idx, k), s: s, index: k}
		if k > opts.Managers {
			n.Role = "worker"
		}
		n.Endpoint = fmt.Sprintf("tcp://%s:%d", n.IP, tlsPort)
		n.Dir = filepath.Join(s.Dir, n.Name)
		n.Socket = "unix://" + filepath.Join(n.Dir, "docker.sock")
		n.Netns = netnsName(idx, n.Name)
		n.LogPath = filepath.Join(n.Dir, "dockerd.log")
		cert, key, err := p.serverCert(n.Name, n.IP)
		if err != nil {
			return nil, err
		}
		tlsDir := filepath.Join(n.Dir, "tls")
		if err := writeTLSDir(tlsDir, p.caPEM, cert, key); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "server-cert.pem")); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(tlsDir, "key.pem"), filepath.Join(tlsDir, "server-key.pem")); err != nil {
			return nil, err
		}
		s.Nodes = append(s.Nodes, n)
	}

	// Network.
	if err := setupBridge(ctx, idx); err != nil {
		return nil, err
	}
	for _, n := range s.Nodes {
		if err := setupNodeNet(ctx, idx, n.index, n.Netns); err != nil {
			return nil, err
		}
	}
	logf("sandbox %d: network %s0/24 on bridge %s ready (%s)", idx, subnetPrefix(idx), s.Bridge, since(t0))

	// Daemons, all at once; each loads the images as soon as it serves.
	tDaemons := time.Now()
	if err := s.eachNode(s.Nodes, func(n *Node) error {
		if err := n.launch(); err != nil {
			return err
		}
		if err := n.waitServing(ctx, opts.DaemonTimeout); err != nil {
			return err
		}
		if opts.ImagesTar != "" {
			t := time.Now()
			if err := n.loadImages(ctx, opts.ImagesTar); err != nil {
				return err
			}
			logf("sandbox %d: %s: images loaded in %s", idx, n.Name, since(t))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	logf("sandbox %d: %d daemons serving (%s)", idx, total, since(tDaemons))

	tSwarm := time.Now()
	if err := s.formSwarm(ctx); err != nil {
		return nil, err
	}
	logf("sandbox %d: swarm of %d managers and %d workers ready in %s (swarm formation %s)",
		idx, opts.Managers, opts.Workers, since(t0), since(tSwarm))
	if err := s.writeInfo(); err != nil {
		return nil, err
	}
	return s, nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// allocateInstance takes the lowest free instance index: its lock is free and its
// subnet is not used by the host. Leftovers of a dead run with that index are removed.
func allocateInstance(ctx context.Context, logf func(string, ...any)) (int, *os.File, error) {
	var busy []string
	for idx := 0; idx < maxInstances; idx++ {
		f, err := tryLock(idx)
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if left := leftovers(ctx, idx); len(left) > 0 {
			logf("sandbox %d: removing leftovers of an earlier run: %s", idx, strings.Join(left, "; "))
			if err := cleanupInstance(ctx, idx, logf); err != nil {
				unlock(idx, f)
				return 0, nil, fmt.Errorf("sandbox %d: cannot remove leftovers of an earlier run: %w", idx, err)
			}
		}
		if inUse, line := subnetInUse(ctx, idx); inUse {
			busy = append(busy, line)
			unlock(idx, f)
			continue
		}
		return idx, f, nil
	}
	return 0, nil, fmt.Errorf("sandbox: no free instance among %d (in use or subnet taken: %v)", maxInstances, busy)
}

// eachNode runs f for the nodes concurrently and returns all errors.
func (s *Swarm) eachNode(nodes []*Node, f func(*Node) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadImages loads a `docker save` tarball into the node.
func (n *Node) loadImages(ctx context.Context, tarPath string) error {
	c, err := n.api()
	if err != nil {
		return err
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := c.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return n.errorf("load %s: %v", tarPath, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return n.errorf("load %s: reading the response: %v", tarPath, err)
		}
		if msg.Error != "" {
			return n.errorf("load %s: %s", tarPath, msg.Error)
		}
	}
}

// formSwarm inits the Swarm on the first manager, joins the other managers one after
// the other (Raft membership changes one at a time) and the workers meanwhile, then
// waits until every node is ready.
func (s *Swarm) formSwarm(ctx context.Context) error {
	leader := s.Nodes[0]
	lc, err := leader.api()
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := swarm.InitRequest{
		ListenAddr:    fmt.Sprintf("%s:%d", leader.IP, swarmPort),
		AdvertiseAddr: fmt.Sprintf("%s:%d", leader.IP, swarmPort),
	}
	if _, err := lc.SwarmInit(ictx, req); err != nil {
		return leader.errorf("swarm init: %v", err)
	}
	sw, err := lc.SwarmInspect(ictx)
	if err != nil {
		return leader.errorf("swarm inspect: %v", err)
	}
	remote := []string{fmt.Sprintf("%s:%d", leader.IP, swarmPort)}
	join := func(n *Node, token string) error {
		c, err := n.api()
		if err != nil {
			return err
		}
		jctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		err = c.SwarmJoin(jctx, swarm.JoinRequest{
			ListenAddr:    fmt.Sprintf("%s:%d", n.IP, swarmPort),
			AdvertiseAddr: fmt.Sprintf("%s:%d", n.IP, swarmPort),
			RemoteAddrs:   remote,
			JoinToken:     token,
		})
		// "Timeout was reached before node joined": the join goes on in the background;
		// waitReady below decides.
		if err != nil && !strings.Contains(err.Error(), "Timeout was reached") {
			return n.errorf("swarm join as %s: %v", n.Role, err)
		}
		return nil
	}
	var wg sync.WaitGroup
	var mgrErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, n := range s.Managers()[1:] {
			if mgrErr = join(n, sw.JoinTokens.Manager); mgrErr != nil {
				return
			}
		}
	}()
	workerErr := s.eachNode(s.Workers(), func(n *Node) error { return join(n, sw.JoinTokens.Worker) })
	wg.Wait()
	if err := errors.Join(mgrErr, workerErr); err != nil {
		return err
	}
	return s.waitReady(ctx, s.Nodes, 60*time.Second)
}

// waitReady waits until a manager reports every given node ready (managers also
// reachable), and records their Swarm node IDs.
func (s *Swarm) waitReady(ctx context.Context, nodes []*Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		last = s.checkReady(ctx, nodes)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm not ready within %s: %s", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkReady returns "" when all nodes are ready, else what is missing.
func (s *Swarm) checkReady(ctx context.Context, nodes []*Node) string {
	var list []swarm.Node
	var errs []string
	for _, m := range s.Managers() {
		if m.pid() == 0 {
			continue
		}
		c, err := m.api()
		if err != nil {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		list, err = c.NodeList(lctx, swarm.NodeListOptions{})
		cancel()
		if err == nil {
			break
		}
		errs = append(errs, fmt.Sprintf("%s: %v", m.Name, err))
		list = nil
	}
	if list == nil {
		return fmt.Sprintf("no manager answers a node list (%s)", strings.Join(errs, "; "))
	}
	byName := map[string]swarm.Node{}
	for _, sn := range list {
		// A node that left and joined again appears twice; the ready entry wins.
		if old, ok := byName[sn.Description.Hostname]; !ok || old.Status.State != swarm.NodeStateReady {
			byName[sn.Description.Hostname] = sn
		}
	}
	var missing []string
	for _, n := range nodes {
		sn, ok := byName[n.Name]
		switch {
		case !ok:
			missing = append(missing, n.Name+" not in the node list")
		case sn.Status.State != swarm.NodeStateReady:
			missing = append(missing, fmt.Sprintf("%s is %s", n.Name, sn.Status.State))
		case n.Role == "manager" && (sn.ManagerStatus == nil || sn.ManagerStatus.Reachability != swarm.ReachabilityReachable):
			missing = append(missing, n.Name+" is not a reachable manager")
		default:
			n.mu.Lock()
			if n.ID == "" { // set once, before Start returns: readers need no lock
				n.ID = sn.ID
			}
			n.mu.Unlock()
		}
	}
	return strings.Join(missing, "; ")
}

// Managers returns the manager nodes (node1.. first).
func (s *Swarm) Managers() []*Node { return s.byRole("manager") }

// Workers returns the worker nodes.
func (s *Swarm) Workers() []*Node { return s.byRole("worker") }

func (s *Swarm) byRole(role string) []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node with the given name, or nil.
func (s *Swarm) Node(name string) *Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Client returns a new Docker client for the node's TCP endpoint with mutual TLS and
// API version negotiation. The caller closes it.
func (s *Swarm) Client(n *Node) (*client.Client, error) {
	return client.NewClientWithOpts(
		client.WithHost(n.Endpoint),
		client.WithTLSClientConfig(filepath.Join(s.CertDir, "ca.pem"), filepath.Join(s.CertDir, "cert.pem"), filepath.Join(s.CertDir, "key.pem")),
		client.WithAPIVersionNegotiation(),
	)
}

// CLIEnv returns the environment for the docker CLI to talk to the node.
func (s *Swarm) CLIEnv(n *Node) []string {
	return []string{
		"DOCKER_HOST=" + n.Endpoint,
		"DOCKER_TLS_VERIFY=1",
		"DOCKER_CERT_PATH=" + s.CertDir,
	}
}

// writeInfo writes <Dir>/env (shell exports for the first manager) and
// <Dir>/sandbox.json (the nodes), for people and scripts.
func (s *Swarm) writeInfo() error {
	var b strings.Builder
	for _, kv := range s.CLIEnv(s.Nodes[0]) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%q\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "env"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	type nodeInfo struct{ Name, Role, IP, Endpoint, Socket, ID, Netns, LogPath string }
	info := struct {
		Instance int
		Dir      string
		CertDir  string
		Env      []string
		Nodes    []nodeInfo
	}{Instance: s.Instance, Dir: s.Dir, CertDir: s.CertDir, Env: s.CLIEnv(s.Nodes[0])}
	for _, n := range s.Nodes {
		info.Nodes = append(info.Nodes, nodeInfo{n.Name, n.Role, n.IP, n.Endpoint, n.Socket, n.ID, n.Netns, n.LogPath})
	}
	j, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "sandbox.json"), append(j, '\n'), 0o644)
}

// Close kills every daemon and everything they started (containerd, shims, container
// processes), waits for them to exit, and removes everything the sandbox made: namespaces,
// veths, bridge, iptables rule, mounts, cgroups, state directory. It returns an error
// naming anything it could not remove. Calling it again returns the first result.
func (s *Swarm) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Errors of terminate show up below as leftovers found by cleanupInstance.
	// No grace: everything is deleted anyway, and the daemons' mounts live in their
	// own mount namespaces, which vanish with their last process. (A graceful stop of
	// five daemons takes seconds, and a manager that lost its quorum can hang in it.)
	_ = s.eachNode(s.Nodes, func(n *Node) error { return n.terminate(ctx, 0) })
	if err := cleanupInstance(ctx, s.Instance, s.logf); err != nil {
		s.closeErr = fmt.Errorf("sandbox %d: close: %w", s.Instance, err)
	}
	unlock(s.Instance, s.lock)
	s.lock = nil
	s.logf("sandbox %d: closed in %s", s.Instance, since(t0))
	return s.closeErr
}

// Stop shuts the node's dockerd down cleanly (SIGTERM: it stops its containers and
// containerd; SIGKILL after 15 s), keeping its data: the machine is "down" for the
// rest of the Swarm. Start brings it back.
func (n *Node) Stop(ctx context.Context) error {
	return n.stop(ctx, 15*time.Second, "stopped")
}

// Kill is Stop without the clean shutdown: the node's dockerd, containerd, shims and
// containers get SIGKILL at once, like a machine that loses power. Data is kept.
func (n *Node) Kill(ctx context.Context) error {
	return n.stop(ctx, 0, "killed")
}

func (n *Node) stop(ctx context.Context, grace time.Duration, what string) error {
	if n.pid() == 0 {
		return nil
	}
	t0 := time.Now()
	err := n.terminate(ctx, grace)
	n.s.logf("sandbox %d: %s %s (%s)", n.s.Instance, n.Name, what, since(t0))
	return err
}

// Start starts the node's dockerd again with its data and waits until it serves and
// is back in the Swarm (ready; a manager also reachable).
func (n *Node) Start(ctx context.Context) error {
	n.s.mu.Lock()
	closed := n.s.closed
	n.s.mu.Unlock()
	if closed {
		return fmt.Errorf("node %s: the sandbox is closed", n.Name)
	}
	if n.pid() != 0 {
		return nil
	}
	t0 := time.Now()
	if err := n.launch(); err != nil {
		return err
	}
	if err := n.waitServing(ctx, n.s.opts.DaemonTimeout); err != nil {
		return err
	}
	if err := n.s.waitReady(ctx, []*Node{n}, 90*time.Second); err != nil {
		return n.errorf("back in the swarm: %v", err)
	}
	n.s.logf("sandbox %d: %s started and back in the swarm (%s)", n.s.Instance, n.Name, since(t0))
	return nil
}

// Running reports whether the node's dockerd runs.
func (n *Node) Running() bool { return n.pid() != 0 }
