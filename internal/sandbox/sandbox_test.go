package sandbox

// These tests start real dockerd processes: they need root and Debian's docker.io
// (hack/install-prereqs.sh). Without them they are skipped, except under CI=true where
// a missing prerequisite fails them. The numbers images come from NumbersImages, which
// runs hack/build-numbers-images.sh (host Docker engine needed the first time, the
// tarball is cached under ~/.cache/swarm-operator) or takes $SWARM_SANDBOX_IMAGES.
//
//	sudo go test ./internal/sandbox/ -v -count=1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" && Available() == nil {
		if err := CleanupStale(); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox.CleanupStale:", err)
		}
	}
	os.Exit(m.Run())
}

func numbersImages(t *testing.T, ctx context.Context) string {
	t.Helper()
	tar, err := NumbersImages(ctx)
	if err != nil {
		if InCI() {
			t.Fatalf("numbers images: %v", err)
		}
		t.Skipf("numbers images unavailable: %v", err)
	}
	return tar
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// assertGone checks that nothing of the sandbox instance is left on the host.
func assertGone(t *testing.T, sw *Swarm) {
	t.Helper()
	if left := leftovers(context.Background(), sw.Instance); len(left) > 0 {
		t.Errorf("left behind after Close: %v", left)
	}
	for _, p := range listProcs() {
		if strings.Contains(p.cmdline, sw.Dir+"/") && (p.argv0 == "dockerd" || p.argv0 == "containerd" || strings.HasPrefix(p.argv0, "containerd-shim")) {
			t.Errorf("process left: %v", p)
		}
	}
	for _, n := range sw.Nodes {
		if _, err := os.Stat(filepath.Join("/run/netns", n.Netns)); err == nil {
			t.Errorf("netns %s left", n.Netns)
		}
		if linkExists(vethName(sw.Instance, n.index)) {
			t.Errorf("veth %s left", vethName(sw.Instance, n.index))
		}
	}
	if linkExists(sw.Bridge) {
		t.Errorf("bridge %s left", sw.Bridge)
	}
	if _, err := os.Stat(sw.Dir); err == nil {
		t.Errorf("state dir %s left", sw.Dir)
	}
	if _, err := os.Stat(lockPath(sw.Instance)); err == nil {
		t.Errorf("lock file %s left", lockPath(sw.Instance))
	}
}

func TestSingleNode(t *testing.T) {
	SkipOrFail(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t0 := time.Now()
	sw, err := Start(ctx, Options{Name: "solo", Managers: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1-node swarm up in %s", since(t0))
	defer sw.Close()

	n := sw.Nodes[0]
	if n.Name != "solo1" || n.Role != "manager" || sw.Node("solo1") != n || len(sw.Managers()) != 1 || len(sw.Workers()) != 0 {
		t.Fatalf("unexpected nodes: %+v", sw.Nodes)
	}
	c, err := sw.Client(n)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "solo1" || info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable || info.Swarm.NodeID != n.ID {
		t.Fatalf("info: name %q, swarm %+v, want solo1, active manager %s", info.Name, info.Swarm, n.ID)
	}
	t.Logf("engine %s, API %s negotiated", info.ServerVersion, c.ClientVersion())
	if ok, why := VIPSupported(); !ok {
		t.Logf("note: %s", why)
	}

	// The unix socket answers too (no TLS).
	uc, err := client.NewClientWithOpts(client.WithHost(n.Socket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uc.Ping(ctx); err != nil {
		t.Fatalf("ping over %s: %v", n.Socket, err)
	}
	uc.Close()

	// The docker CLI works with CLIEnv (when the machine has one).
	if docker, err := exec.LookPath("docker"); err == nil {
		cmd := exec.CommandContext(ctx, docker, "info", "--format", "{{.Name}} {{.Swarm.LocalNodeState}}")
		cmd.Env = append(os.Environ(), sw.CLIEnv(n)...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "solo1 active" {
			t.Fatalf("docker info with %v: %v: %s", sw.CLIEnv(n), err, out)
		}
	}

	if err := sw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sw.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertGone(t, sw)
}

func TestFiveNodeSwarm(t *testing.T) {
	SkipOrFail(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tar := numbersImages(t, ctx)

	t0 := time.Now()
	sw, err := Start(ctx, Options{Managers: 3, Workers: 2, ImagesTar: tar, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3+2 swarm with images up in %s", since(t0))
	defer sw.Close()

	if len(sw.Managers()) != 3 || len(sw.Workers()) != 2 || sw.Node("node3").Role != "manager" || sw.Node("node5").Role != "worker" {
		t.Fatalf("unexpected nodes: %+v", sw.Nodes)
	}
	clients := map[string]*client.Client{}
	for _, n := range sw.Nodes {
		c, err := sw.Client(n)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[n.Name] = c
		imgs, err := c.ImageList(ctx, image.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tags := map[string]bool{}
		for _, im := range imgs {
			for _, tag := range im.RepoTags {
				tags[tag] = true
			}
		}
		for v := 1; v <= 5; v++ {
			for _, role := range []string{"api", "web"} {
				if want := fmt.Sprintf("numbers-%s:v%d", role, v); !tags[want] {
					t.Errorf("%s: image %s not loaded (have %v)", n.Name, want, tags)
				}
			}
		}
	}
	mgr := clients["node1"]
	nodes, err := mgr.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodeName := map[string]string{}
	leaders := 0
	for _, n := range nodes {
		nodeName[n.ID] = n.Description.Hostname
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			leaders++
		}
	}
	if len(nodes) != 5 || leaders != 1 {
		t.Fatalf("node list: %d nodes, %d leaders", len(nodes), leaders)
	}

	// A 6-replica service spreads over all five nodes.
	replicas := uint64(6)
	svc, err := mgr.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "numbers-api"},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v1"},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := func() (map[string]int, int, error) {
		tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("service", svc.ID), filters.Arg("desired-state", "running"))})
		if err != nil {
			return nil, 0, err
		}
		per, n := map[string]int{}, 0
		for _, tk := range tasks {
			if tk.Status.State == swarm.TaskStateRunning {
				per[nodeName[tk.NodeID]]++
				n++
			}
		}
		return per, n, nil
	}
	tSvc := time.Now()
	eventually(t, 60*time.Second, "6 tasks running on 5 nodes", func() error {
		per, n, err := running()
		if err != nil {
			return err
		}
		if n != 6 || len(per) != 5 {
			return fmt.Errorf("%d running, per node %v", n, per)
		}
		return nil
	})
	per, _, _ := running()
	t.Logf("6 tasks running after %s: %v", since(tSvc), per)

	// Draining node5 moves its tasks to the other nodes.
	drain := func(name string, av swarm.NodeAvailability) {
		t.Helper()
		n, _, err := mgr.NodeInspectWithRaw(ctx, sw.Node(name).ID)
		if err != nil {
			t.Fatal(err)
		}
		n.Spec.Availability = av
		if err := mgr.NodeUpdate(ctx, n.ID, n.Version, n.Spec); err != nil {
			t.Fatal(err)
		}
	}
	tDrain := time.Now()
	drain("node5", swarm.NodeAvailabilityDrain)
	eventually(t, 60*time.Second, "tasks moved off node5", func() error {
		per, n, err := running()
		if err != nil {
			return err
		}
		if n != 6 || per["node5"] != 0 {
			return fmt.Errorf("%d running, per node %v", n, per)
		}
		return nil
	})
	per, _, _ = running()
	t.Logf("node5 drained, tasks moved in %s: %v", since(tDrain), per)
	drain("node5", swarm.NodeAvailabilityActive)

	// Manager failover: stop the leader; another manager takes over; the node comes back.
	leader := sw.Node("node1")
	tStop := time.Now()
	if err := leader.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if leader.Running() {
		t.Fatal("node1 still running after Stop")
	}
	if ps := nodeMatcher(leader).find(); len(ps) > 0 {
		t.Fatalf("node1 processes left after Stop: %v", ps)
	}
	other := clients["node2"]
	eventually(t, 60*time.Second, "a new leader among node2/node3", func() error {
		nodes, err := other.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.ManagerStatus != nil && n.ManagerStatus.Leader && n.Description.Hostname != "node1" {
				return nil
			}
		}
		return fmt.Errorf("no new leader yet")
	})
	t.Logf("node1 stopped, new leader elected after %s", since(tStop))
	tRestart := time.Now()
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("node1 back in the swarm after %s", since(tRestart))

	// A worker that loses power (SIGKILL of everything) comes back with its data.
	worker := sw.Node("node4")
	if err := worker.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if ps := nodeMatcher(worker).find(); len(ps) > 0 {
		t.Fatalf("node4 processes left after Kill: %v", ps)
	}
	tRestart = time.Now()
	if err := worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("node4 killed and back in the swarm after %s", since(tRestart))
	eventually(t, 60*time.Second, "6 tasks running again", func() error {
		_, n, err := running()
		if err != nil {
			return err
		}
		if n != 6 {
			return fmt.Errorf("%d running", n)
		}
		return nil
	})

	// Overlay network across nodes and host-mode published ports, reachable from the
	// host: a global web service on port 80 of every node calls the API by its service
	// name. endpoint_mode dnsrr: VIPs need IPVS, which some kernels lack (VIPSupported).
	tNet := time.Now()
	if _, err := mgr.NetworkCreate(ctx, "app-net", network.CreateOptions{Driver: "overlay", Attachable: true}); err != nil {
		t.Fatal(err)
	}
	apiReplicas := uint64(2)
	if _, err := mgr.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "rr-api"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v3"}, Networks: []swarm.NetworkAttachmentConfig{{Target: "app-net"}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &apiReplicas}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "web"},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "numbers-web:v3", Env: []string{"RngApi__Url=http://rr-api/rng"}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "app-net"}},
		},
		Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{
			{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: 80, PublishMode: swarm.PortConfigPublishModeHost},
		}},
	}, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hc := http.Client{Timeout: 5 * time.Second}
	for _, n := range sw.Nodes {
		eventually(t, 60*time.Second, "web on "+n.Name+" answers with the API's number", func() error {
			resp, err := hc.Get("http://" + n.IP + "/rng")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"api":"v3"`) {
				return fmt.Errorf("%s: %s", resp.Status, b)
			}
			return nil
		})
	}
	t.Logf("web on all 5 nodes reaches the API over the overlay network (%s)", since(tNet))

	tClose := time.Now()
	if err := sw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("closed in %s", since(tClose))
	assertGone(t, sw)
}

const helperEnv = "SWARM_SANDBOX_TEST_HELPER"

// TestKilledRunIsCleanedUp starts a sandbox with a running service in a child process,
// kills that process with SIGKILL and checks that its daemons die with it and that
// CleanupStale removes everything that is left (shims, containers, network, dirs).
func TestKilledRunIsCleanedUp(t *testing.T) {
	if os.Getenv(helperEnv) == "1" {
		killedRunHelper()
		return
	}
	SkipOrFail(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tar := numbersImages(t, ctx)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKilledRunIsCleanedUp$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "SWARM_SANDBOX_IMAGES="+tar)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	idx := -1
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "HELPER READY "); ok {
			idx, _ = strconv.Atoi(rest)
			break
		}
		t.Log("helper: " + sc.Text())
	}
	if idx < 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("helper did not start its sandbox")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	shims := 0
	for _, p := range instanceMatcher(idx).find() {
		if strings.HasPrefix(p.argv0, "containerd-shim") {
			shims++
		}
	}
	if shims == 0 {
		t.Fatal("helper sandbox runs no containers")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	// Pdeathsig: the daemons get SIGTERM when their parent dies.
	dir := instanceDir(idx)
	eventually(t, 30*time.Second, "helper's dockerds exit", func() error {
		for _, p := range listProcs() {
			if p.argv0 == "dockerd" && strings.Contains(p.cmdline, dir+"/") {
				return fmt.Errorf("dockerd %v still runs", p)
			}
		}
		return nil
	})
	if left := leftovers(ctx, idx); len(left) == 0 {
		t.Fatal("expected leftovers of the killed run")
	} else {
		t.Logf("left by the killed run: %d kinds, e.g. %.300s", len(left), strings.Join(left, "; "))
	}
	t0 := time.Now()
	if err := CleanupStale(); err != nil {
		t.Fatalf("CleanupStale: %v", err)
	}
	t.Logf("CleanupStale took %s", since(t0))
	if left := leftovers(ctx, idx); len(left) > 0 {
		t.Fatalf("left after CleanupStale: %v", left)
	}
}

func killedRunHelper() {
	ctx := context.Background()
	sw, err := Start(ctx, Options{Name: "victim", Managers: 1, ImagesTar: os.Getenv("SWARM_SANDBOX_IMAGES")})
	if err != nil {
		fmt.Println("HELPER FAILED", err)
		os.Exit(1)
	}
	c, err := sw.Client(sw.Nodes[0])
	if err == nil {
		replicas := uint64(2)
		_, err = c.ServiceCreate(ctx, swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "victim"},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v1"}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		}, swarm.ServiceCreateOptions{})
	}
	for i := 0; err == nil && i < 100; i++ {
		var tasks []swarm.Task
		tasks, err = c.TaskList(ctx, swarm.TaskListOptions{})
		n := 0
		for _, tk := range tasks {
			if tk.Status.State == swarm.TaskStateRunning {
				n++
			}
		}
		if n == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		fmt.Println("HELPER FAILED", err)
		os.Exit(1)
	}
	fmt.Printf("HELPER READY %d\n", sw.Instance)
	select {} // wait to be killed
}
