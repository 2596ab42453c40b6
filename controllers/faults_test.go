package controllers_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
)

// Fault injection against the shared sandbox swarm. Every fault is undone in t.Cleanup
// (iptables rules removed, paused daemons continued) and each test waits for the swarm
// to be whole again before it ends: the package's other tests share it.

// socketClient talks to a node through its unix socket on the host's filesystem: no
// network is involved, so it works while the network to the node is cut.
func socketClient(t *testing.T, n *sandbox.Node) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(n.Socket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// partition drops every packet the host sends to the nodes' Docker API port (2376):
// the operator, which runs on the host, can reach none of them, while the nodes still
// talk to each other. heal (also run at cleanup) removes the rules.
func partition(t *testing.T, nodes ...*sandbox.Node) (heal func()) {
	t.Helper()
	rule := func(op string, n *sandbox.Node) []string {
		return []string{"-w", "5", op, "OUTPUT", "-d", n.IP + "/32", "-p", "tcp", "--dport", "2376", "-j", "DROP"}
	}
	var once sync.Once
	heal = func() {
		once.Do(func() {
			for _, n := range nodes {
				if out, err := exec.Command("iptables", rule("-D", n)...).CombinedOutput(); err != nil {
					t.Errorf("removing the DROP rule for %s: %v: %s", n.IP, err, out)
				}
			}
		})
	}
	for i, n := range nodes {
		if out, err := exec.Command("iptables", rule("-I", n)...).CombinedOutput(); err != nil {
			nodes = nodes[:i] // only those inserted are removed
			heal()
			t.Fatalf("iptables: %v: %s", err, out)
		}
	}
	t.Cleanup(heal)
	return heal
}

// pauseDaemon stops the node's dockerd with SIGSTOP: it keeps its sockets (connections
// are accepted by the kernel) but answers nothing, like a hung daemon. resume (also run
// at cleanup) continues it.
func pauseDaemon(t *testing.T, n *sandbox.Node) (resume func()) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.Dir, "docker.pid"))
	if err != nil {
		t.Fatalf("pid file of %s: %v", n.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file of %s holds %q", n.Name, raw)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s (pid %d): %v", n.Name, pid, err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT %s (pid %d): %v", n.Name, pid, err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}

// waitSwarmWhole waits, through a node's unix socket, until every node is ready and
// every manager reachable with one leader.
func waitSwarmWhole(t *testing.T, through *sandbox.Node) {
	t.Helper()
	cli := socketClient(t, through)
	eventually(t, 2*time.Minute, "the swarm whole again", func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		nodes, err := cli.NodeList(ctx, swarmtypes.NodeListOptions{})
		if err != nil {
			return err.Error()
		}
		return swarmHealthProblem(nodes)
	})
}

// serviceSnapshot is what a write to a service changes.
type serviceSnapshot struct {
	id      string
	version uint64
	writeID string
}

func stackSnapshot(t *testing.T, cli *client.Client, stack string) map[string]serviceSnapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svcs, err := cli.ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmv1.LabelStackNamespace+"="+stack))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]serviceSnapshot{}
	for _, s := range svcs {
		out[s.Spec.Name] = serviceSnapshot{id: s.ID, version: s.Version.Index, writeID: s.Spec.Labels[swarmv1.LabelWriteID]}
	}
	return out
}

func stackReadyIs(t *testing.T, s *swarmv1.SwarmStack, status metav1.ConditionStatus, reason string) func() string {
	return func() string {
		get(t, s)
		c := condition(s.Status.Conditions, swarmv1.ConditionReady)
		if c == nil || c.Status != status || (reason != "" && c.Reason != reason) {
			return "conditions: " + describeConditions(s.Status.Conditions)
		}
		return ""
	}
}

// eventsSince lists the namespace's events with the reason, newer than since.
func eventsSince(t *testing.T, ns, reason string, since time.Time) []corev1.Event {
	t.Helper()
	var evs corev1.EventList
	if err := bed.Client.List(context.Background(), &evs, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range evs.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if e.Reason == reason && !last.Before(since.Truncate(time.Second)) {
			out = append(out, e)
		}
	}
	return out
}

const faultStack = `services:
  api:
    image: numbers-api:v1
    deploy: {replicas: 2, update_config: {monitor: 1s}}
  worker:
    image: numbers-api:v1
    deploy: {replicas: 1, update_config: {monitor: 1s}}
`

// TestFaultPartitionFromEveryManager cuts the operator off from every manager's TCP
// endpoint: the cluster says Unreachable, its stacks ClusterNotReady, nothing is written
// or removed, a stack on another cluster is served meanwhile, and everything recovers
// by itself once the network is back.
func TestFaultPartitionFromEveryManager(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "fault-partition")
	managers := bed.Swarm.Managers()
	// The same swarm through the managers' unix sockets, which the partition leaves
	// alone: a cluster that stays healthy.
	var sockets []string
	for _, m := range managers {
		sockets = append(sockets, m.Socket)
	}
	local := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
		Spec: swarmv1.SwarmClusterSpec{Endpoints: sockets, Interval: &metav1.Duration{Duration: 5 * time.Second}}}
	create(t, local)
	eventually(t, 30*time.Second, "cluster Ready", clusterReady(t, cluster, nil))
	eventually(t, 30*time.Second, "local cluster Ready", clusterReady(t, local, nil))

	single := func(replicas int) string {
		return fmt.Sprintf("services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: %d, update_config: {monitor: 1s}}\n", replicas)
	}
	s := inlineStack(ns, "part", "part", faultStack)
	others := []*swarmv1.SwarmStack{inlineStack(ns, "part-b", "part-b", single(1)), inlineStack(ns, "part-c", "part-c", single(1))}
	bystander := inlineStack(ns, "bystander", "bystander", single(1))
	bystander.Spec.ClusterRef.Name = "local"
	for _, st := range append([]*swarmv1.SwarmStack{s, bystander}, others...) {
		create(t, st)
		t.Cleanup(func() { deleteStack(t, st) })
	}
	for _, st := range append([]*swarmv1.SwarmStack{s, bystander}, others...) {
		waitReady(t, st, time.Minute)
	}
	get(t, s)
	historyBefore := len(s.Status.History)

	// Checked through a unix socket throughout: the test's own TCP client is cut off too.
	sock := socketClient(t, managers[len(managers)-1])
	before := map[string]map[string]serviceSnapshot{}
	for _, st := range append([]*swarmv1.SwarmStack{s}, others...) {
		before[st.Name] = stackSnapshot(t, sock, st.Name)
	}
	if len(before["part"]) != 2 {
		t.Fatalf("services before the partition: %v", before)
	}

	cut := time.Now()
	heal := partition(t, managers...)
	eventually(t, 75*time.Second, "cluster Ready=False/Unreachable", func() string {
		get(t, cluster)
		c := condition(cluster.Status.Conditions, swarmv1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != swarmv1.ReasonUnreachable {
			return describeConditions(cluster.Status.Conditions)
		}
		return ""
	})
	t.Logf("cluster Unreachable after %s", time.Since(cut).Round(time.Second))
	if m := cluster.Status.Managers; m != nil && (m.Reachable != 0 || m.Leader != "") {
		t.Errorf("an unreachable cluster still claims managers: %+v", *m)
	}
	for _, st := range append([]*swarmv1.SwarmStack{s}, others...) {
		eventually(t, 90*time.Second, st.Name+" Ready=False/ClusterNotReady", stackReadyIs(t, st, metav1.ConditionFalse, swarmv1.ReasonClusterNotReady))
	}
	t.Logf("stacks ClusterNotReady after %s: %s", time.Since(cut).Round(time.Second), condition(s.Status.Conditions, swarmv1.ConditionReady).Message)

	// Changes made meanwhile: the one on the healthy cluster is applied at once, the
	// other waits for its swarm and is not lost.
	changed := time.Now()
	setCompose(t, bystander, single(2))
	setCompose(t, s, strings.Replace(faultStack, "replicas: 1,", "replicas: 2,", 1))
	eventually(t, 30*time.Second, "the bystander's change applied", func() string {
		svc, _, err := sock.ServiceInspectWithRaw(ctx, "bystander_a", swarmtypes.ServiceInspectOptions{})
		if err != nil {
			return err.Error()
		}
		if replicas(svc) != 2 {
			return fmt.Sprintf("%d replicas", replicas(svc))
		}
		return ""
	})
	t.Logf("the bystander's change applied %s after it was made", time.Since(changed).Round(time.Second))
	waitReady(t, bystander, time.Minute)
	eventually(t, 10*time.Second, "local cluster still Ready", clusterReady(t, local, nil))
	// Let the operator try (and fail) for a while: nothing may be written or removed.
	time.Sleep(10 * time.Second)
	for stack, snap := range before {
		during := stackSnapshot(t, sock, stack)
		for name, b := range snap {
			if d, ok := during[name]; !ok || d != b {
				t.Errorf("service %s changed during the partition: %+v -> %+v", name, b, d)
			}
		}
	}

	healed := time.Now()
	heal()
	eventually(t, 90*time.Second, "cluster Ready again", clusterReady(t, cluster, nil))
	t.Logf("cluster Ready %s after the network came back", time.Since(healed).Round(time.Second))
	for _, st := range append([]*swarmv1.SwarmStack{s}, others...) {
		waitReady(t, st, 2*time.Minute)
	}
	t.Logf("stacks Ready %s after the network came back", time.Since(healed).Round(time.Second))

	after := stackSnapshot(t, sock, "part")
	if got := replicas(mustInspect(t, sock, "part_worker")); got != 2 {
		t.Errorf("the change made during the partition was not applied: part_worker has %d replicas", got)
	}
	// api was not part of the change: the same object, never written.
	if a, b := after["part_api"], before["part"]["part_api"]; a.id != b.id || a.writeID != b.writeID {
		t.Errorf("part_api was rewritten: %+v -> %+v", b, a)
	}
	for _, st := range others {
		for name, b := range before[st.Name] {
			if a := stackSnapshot(t, sock, st.Name)[name]; a.id != b.id || a.writeID != b.writeID {
				t.Errorf("%s was rewritten: %+v -> %+v", name, b, a)
			}
		}
	}
	get(t, s)
	if got := len(s.Status.History); got != historyBefore+1 {
		t.Errorf("history has %d entries, want %d (one rollout for the change)", got, historyBefore+1)
	}
	if evs := eventsSince(t, ns, "DriftCorrected", cut); len(evs) > 0 {
		t.Errorf("the partition was taken for drift: %s", evs[0].Message)
	}
}

func mustInspect(t *testing.T, cli *client.Client, name string) swarmtypes.Service {
	t.Helper()
	svc, _, err := cli.ServiceInspectWithRaw(context.Background(), name, swarmtypes.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestFaultHungManagerDaemon stops (SIGSTOP) the dockerd of the manager in use: it
// accepts connections and answers nothing. Calls to it time out, the cluster moves to
// another manager, and a spec change made meanwhile is applied through that one.
func TestFaultHungManagerDaemon(t *testing.T) {
	ns, cluster := newNamespace(t, "fault-hung")
	eventually(t, 30*time.Second, "cluster Ready", clusterReady(t, cluster, nil))
	var inUse, other *sandbox.Node
	for _, m := range bed.Swarm.Managers() {
		if m.Endpoint == cluster.Status.Endpoint {
			inUse = m
		} else if other == nil {
			other = m
		}
	}
	if inUse == nil {
		t.Fatalf("endpoint in use %q is no sandbox manager", cluster.Status.Endpoint)
	}
	s := inlineStack(ns, "hung", "hung", faultStack)
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	waitReady(t, s, time.Minute)
	local := socketClient(t, other)

	t.Cleanup(func() { waitSwarmWhole(t, other) }) // runs after the daemon is continued
	paused := time.Now()
	resume := pauseDaemon(t, inUse)
	t.Logf("paused dockerd of %s (the manager in use)", inUse.Name)

	v2 := strings.ReplaceAll(faultStack, "numbers-api:v1", "numbers-api:v2")
	setCompose(t, s, v2)
	eventually(t, 75*time.Second, "the change applied through another manager", func() string {
		for _, name := range []string{"hung_api", "hung_worker"} {
			svc, _, err := local.ServiceInspectWithRaw(context.Background(), name, swarmtypes.ServiceInspectOptions{})
			if err != nil {
				return err.Error()
			}
			if img := svc.Spec.TaskTemplate.ContainerSpec.Image; !strings.HasPrefix(img, "numbers-api:v2") {
				return name + " runs " + img
			}
		}
		return ""
	})
	t.Logf("change applied %s after the pause", time.Since(paused).Round(time.Second))
	waitReady(t, s, 2*time.Minute)
	t.Logf("stack Ready %s after the pause", time.Since(paused).Round(time.Second))
	eventually(t, time.Minute, "cluster Ready through another manager", clusterReady(t, cluster, func(c *swarmv1.SwarmCluster) string {
		if c.Status.Endpoint == inUse.Endpoint {
			return "still using " + inUse.Endpoint
		}
		return ""
	}))
	get(t, s)
	if h := s.Status.History; len(h) < 2 || h[0].Outcome != swarmv1.OutcomeCompleted {
		t.Errorf("history: %+v", h)
	}

	resume()
	// Back to normal: the stack stays Ready and nothing is written twice.
	snap := stackSnapshot(t, local, "hung")
	requestReconcile(t, s)
	time.Sleep(5 * time.Second)
	waitReady(t, s, 30*time.Second)
	for name, b := range snap {
		if a := stackSnapshot(t, local, "hung")[name]; a.writeID != b.writeID {
			t.Errorf("%s written again after the daemon came back", name)
		}
	}
}
