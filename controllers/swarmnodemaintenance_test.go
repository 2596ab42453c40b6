package controllers_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// maintenanceEnv is what one maintenance test works with: its namespace, its
// SwarmCluster, and a Docker client to check (and set up) the shared swarm. Every test
// leaves all nodes active, whatever happens: other tests share the swarm.
type maintenanceEnv struct {
	t       *testing.T
	ns      string
	cluster *swarmv1.SwarmCluster
	cli     *client.Client
}

func newMaintenanceEnv(t *testing.T, prefix string) *maintenanceEnv {
	t.Helper()
	ns, cluster := newNamespace(t, prefix)
	env := &maintenanceEnv{t: t, ns: ns, cluster: cluster, cli: dockerClient(t)}
	// Registered first, so it runs last: after the maintenances are gone.
	t.Cleanup(env.activateAllNodes)
	env.activateAllNodes()
	env.waitSwarmHealthy()
	return env
}

func (e *maintenanceEnv) activateAllNodes() {
	ctx := context.Background()
	nodes, err := e.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		e.t.Errorf("listing nodes to reactivate them: %v", err)
		return
	}
	for _, n := range nodes {
		if n.Spec.Availability != swarm.NodeAvailabilityActive {
			e.setAvailability(n.Description.Hostname, swarm.NodeAvailabilityActive)
		}
	}
}

// waitSwarmHealthy waits for every node to be ready and every manager reachable: an
// earlier test may have stopped and restarted managers.
func (e *maintenanceEnv) waitSwarmHealthy() {
	eventually(e.t, 2*time.Minute, "every node ready and every manager reachable", func() string {
		nodes, err := e.cli.NodeList(context.Background(), swarm.NodeListOptions{})
		if err != nil {
			return err.Error()
		}
		return swarmHealthProblem(nodes)
	})
}

func (e *maintenanceEnv) node(name string) swarm.Node {
	e.t.Helper()
	n, _, err := e.cli.NodeInspectWithRaw(context.Background(), name)
	if err != nil {
		e.t.Fatalf("inspecting node %s: %v", name, err)
	}
	return n
}

func (e *maintenanceEnv) availability(name string) swarm.NodeAvailability {
	e.t.Helper()
	return e.node(name).Spec.Availability
}

// setAvailability changes a node as an administrator would with docker node update.
func (e *maintenanceEnv) setAvailability(name string, a swarm.NodeAvailability) {
	e.t.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		n, _, err := e.cli.NodeInspectWithRaw(ctx, name)
		if err == nil {
			spec := n.Spec
			spec.Availability = a
			if err = e.cli.NodeUpdate(ctx, n.ID, n.Version, spec); err == nil {
				return
			}
		}
		if attempt == 5 { // a concurrent write (the operator's) moved the version on
			e.t.Errorf("setting %s to %s: %v", name, a, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nonLeaderManagers returns the managers that do not lead, by name.
func (e *maintenanceEnv) nonLeaderManagers() []string {
	e.t.Helper()
	var out []string
	for _, m := range bed.Swarm.Managers() {
		if n := e.node(m.Name); n.ManagerStatus != nil && !n.ManagerStatus.Leader {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

func workerNames() (first, second string) {
	w := bed.Swarm.Workers()
	return w[0].Name, w[1].Name
}

// createService runs a small replicated numbers-api service, removed at the end. Its
// tasks stop within a second unless tune says otherwise.
func (e *maintenanceEnv) createService(name string, replicas uint64, tune func(*swarm.ServiceSpec)) {
	e.t.Helper()
	grace := time.Second
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v1", StopGracePeriod: &grace},
			Placement:     &swarm.Placement{},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	if tune != nil {
		tune(&spec)
	}
	resp, err := e.cli.ServiceCreate(context.Background(), spec, swarm.ServiceCreateOptions{})
	if err != nil {
		e.t.Fatalf("creating service %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		if err := e.cli.ServiceRemove(context.Background(), resp.ID); err != nil && !cerrdefs.IsNotFound(err) {
			e.t.Errorf("removing service %s: %v", name, err)
		}
	})
}

// runningTasks maps node IDs to the number of the service's tasks running there.
func (e *maintenanceEnv) runningTasks(service string) (map[string]int, error) {
	tasks, err := e.cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning {
			out[t.NodeID]++
		}
	}
	return out, nil
}

// waitRunning waits for the service's tasks to run, at least one on each named node.
func (e *maintenanceEnv) waitRunning(service string, want int, on ...string) {
	e.t.Helper()
	eventually(e.t, time.Minute, fmt.Sprintf("%d tasks of %s running, on %v among others", want, service, on), func() string {
		running, err := e.runningTasks(service)
		if err != nil {
			return err.Error()
		}
		if total(running) != want {
			return fmt.Sprintf("running per node: %v", running)
		}
		for _, name := range on {
			if running[e.node(name).ID] == 0 {
				return fmt.Sprintf("none on %s; running per node: %v", name, running)
			}
		}
		return ""
	})
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (e *maintenanceEnv) create(name string, spec swarmv1.SwarmNodeMaintenanceSpec) *swarmv1.SwarmNodeMaintenance {
	e.t.Helper()
	spec.ClusterRef = swarmv1.LocalObjectReference{Name: e.cluster.Name}
	m := &swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name}, Spec: spec}
	if err := bed.Client.Create(context.Background(), m); err != nil {
		e.t.Fatalf("creating SwarmNodeMaintenance %s: %v", name, err)
	}
	e.t.Cleanup(func() { e.remove(m) })
	return m
}

// remove deletes a maintenance and waits for its finalizer to have restored its nodes.
// If the operator does not finish in time, the finalizer is dropped so the test's
// failure stays its own; the nodes are reactivated by the env anyway.
func (e *maintenanceEnv) remove(m *swarmv1.SwarmNodeMaintenance) {
	ctx := context.Background()
	if err := bed.Client.Delete(ctx, m); crclient.IgnoreNotFound(err) != nil {
		e.t.Errorf("deleting %s: %v", m.Name, err)
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var cur swarmv1.SwarmNodeMaintenance
		if err := bed.Client.Get(ctx, crclient.ObjectKeyFromObject(m), &cur); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Errorf("SwarmNodeMaintenance %s still exists 30s after deletion: dropping its finalizer", m.Name)
	var cur swarmv1.SwarmNodeMaintenance
	if err := bed.Client.Get(ctx, crclient.ObjectKeyFromObject(m), &cur); err == nil {
		cur.Finalizers = nil
		_ = bed.Client.Update(ctx, &cur)
	}
}

// poke asks for a reconcile now, as a user would after the clock moved.
func poke(t *testing.T, m *swarmv1.SwarmNodeMaintenance) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, swarmv1.AnnotationReconcileRequestedAt, time.Now().Format(time.RFC3339Nano))
	if err := bed.Client.Patch(context.Background(), m, crclient.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// advance moves the maintenance clock and has the operator look at once.
func advance(t *testing.T, d time.Duration, ms ...*swarmv1.SwarmNodeMaintenance) {
	t.Helper()
	clock.Advance(d)
	for _, m := range ms {
		poke(t, m)
	}
}

// waitMaintenance polls the resource until check returns "".
func waitMaintenance(t *testing.T, m *swarmv1.SwarmNodeMaintenance, timeout time.Duration, what string, check func(*swarmv1.SwarmNodeMaintenance) string) {
	t.Helper()
	eventually(t, timeout, what, func() string {
		get(t, m)
		if msg := check(m); msg != "" {
			return fmt.Sprintf("%s (phase %s; %s; nodes %s)", msg, m.Status.Phase, describeConditions(m.Status.Conditions), describeNodes(m.Status.Nodes))
		}
		return ""
	})
}

func describeNodes(nodes []swarmv1.MaintenanceNodeStatus) string {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s{prev=%s avail=%s tasks=%d drained=%v restored=%v %q}",
			n.Name, n.PreviousAvailability, n.Availability, n.TasksRemaining, n.DrainedAt != nil, n.RestoredAt != nil, n.Message))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func nodeStatus(m *swarmv1.SwarmNodeMaintenance, name string) *swarmv1.MaintenanceNodeStatus {
	for i := range m.Status.Nodes {
		if m.Status.Nodes[i].Name == name {
			return &m.Status.Nodes[i]
		}
	}
	return nil
}

// phaseWithNodes checks the phase and that each named node is in maintenance (drained
// by us, no task left) with the given previous availability.
func phaseWithNodes(phase string, previous map[string]string) func(*swarmv1.SwarmNodeMaintenance) string {
	return func(m *swarmv1.SwarmNodeMaintenance) string {
		if m.Status.Phase != phase {
			return "phase is not " + phase
		}
		for name, prev := range previous {
			n := nodeStatus(m, name)
			switch {
			case n == nil:
				return name + " not in status"
			case n.PreviousAvailability != prev:
				return fmt.Sprintf("%s previousAvailability %q, want %q", name, n.PreviousAvailability, prev)
			case phase == swarmv1.PhaseInMaintenance && (n.DrainedAt == nil || n.RestoredAt != nil || n.TasksRemaining != 0):
				return name + " not in maintenance"
			case phase == swarmv1.PhaseCompleted && n.RestoredAt == nil:
				return name + " not restored"
			}
		}
		return ""
	}
}

func readyIs(m *swarmv1.SwarmNodeMaintenance, status metav1.ConditionStatus, reason string) string {
	c := condition(m.Status.Conditions, swarmv1.ConditionReady)
	if c == nil || c.Status != status || c.Reason != reason {
		return fmt.Sprintf("want Ready=%s/%s", status, reason)
	}
	return ""
}

func (e *maintenanceEnv) wantAvailability(want map[string]swarm.NodeAvailability) {
	e.t.Helper()
	for name, a := range want {
		if got := e.availability(name); got != a {
			e.t.Errorf("node %s is %s, want %s", name, got, a)
		}
	}
}

func oneOff(start time.Time, d time.Duration) *swarmv1.MaintenanceWindow {
	s := metav1.NewTime(start)
	return &swarmv1.MaintenanceWindow{Start: &s, Duration: metav1.Duration{Duration: d}}
}

// TestMaintenanceDrainsAWorkerAndAManagerForTheirWindow is the seed scenario's steps 7
// and 8: a worker and a manager drained for one window, their tasks moved elsewhere,
// the manager still in the Raft quorum, and both back as they were after the window.
func TestMaintenanceDrainsAWorkerAndAManagerForTheirWindow(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-drain")
	_, worker := workerNames()
	manager := e.nonLeaderManagers()[0]
	e.createService("maint-api", 5, nil)
	e.waitRunning("maint-api", 5, worker, manager)

	start := clock.Now().Add(time.Hour).Truncate(time.Second)
	m := e.create("kernel-upgrade", swarmv1.SwarmNodeMaintenanceSpec{
		Nodes:         []string{worker, manager},
		Window:        oneOff(start, 2*time.Hour),
		MaxConcurrent: 2,
		Reason:        "kernel upgrade",
	})
	waitMaintenance(t, m, 30*time.Second, "Pending with the next window", func(m *swarmv1.SwarmNodeMaintenance) string {
		if m.Status.Phase != swarmv1.PhasePending || m.Status.NextWindow == nil || !m.Status.NextWindow.Start.Time.Equal(start) {
			return fmt.Sprintf("next window %+v, want start %s", m.Status.NextWindow, start)
		}
		return readyIs(m, metav1.ConditionTrue, swarmv1.ReasonWindowClosed)
	})
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityActive, manager: swarm.NodeAvailabilityActive})

	advance(t, time.Hour+time.Minute, m)
	waitMaintenance(t, m, time.Minute, "both nodes in maintenance", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{worker: "active", manager: "active"}))
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityDrain, manager: swarm.NodeAvailabilityDrain})
	if c := condition(m.Status.Conditions, swarmv1.ConditionInWindow); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("InWindow: %s", describeConditions(m.Status.Conditions))
	}
	eventually(t, time.Minute, "the tasks moved to the other nodes", func() string {
		running, err := e.runningTasks("maint-api")
		if err != nil {
			return err.Error()
		}
		if total(running) != 5 || running[e.node(worker).ID]+running[e.node(manager).ID] != 0 {
			return fmt.Sprintf("running per node: %v", running)
		}
		return ""
	})
	// Draining keeps a manager in Raft: it is still reachable and the swarm keeps quorum.
	nodes, err := e.cli.NodeList(context.Background(), swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reachable, leaders := 0, 0
	for _, n := range nodes {
		if ms := n.ManagerStatus; ms != nil && ms.Reachability == swarm.ReachabilityReachable {
			reachable++
			if ms.Leader {
				leaders++
			}
		}
	}
	if ms := e.node(manager).ManagerStatus; ms == nil || ms.Reachability != swarm.ReachabilityReachable {
		t.Errorf("drained manager %s: manager status %+v, want reachable", manager, ms)
	}
	if reachable != 3 || leaders != 1 {
		t.Errorf("%d reachable managers and %d leaders, want 3 and 1", reachable, leaders)
	}

	advance(t, 2*time.Hour, m)
	waitMaintenance(t, m, 30*time.Second, "completed with both nodes restored", phaseWithNodes(swarmv1.PhaseCompleted, map[string]string{worker: "active", manager: "active"}))
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityActive, manager: swarm.NodeAvailabilityActive})
	if msg := readyIs(m, metav1.ConditionTrue, swarmv1.ReasonNodesRestored); msg != "" {
		t.Errorf("%s: %s", msg, describeConditions(m.Status.Conditions))
	}
}

// TestMaintenanceQuorumGuardBlocksASecondManager: three managers tolerate one in
// maintenance, so the second waits, even with maxConcurrent 2.
func TestMaintenanceQuorumGuardBlocksASecondManager(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-quorum")
	managers := e.nonLeaderManagers()
	first, second := managers[0], managers[1]
	m := e.create("two-managers", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{second, first}, MaxConcurrent: 2})
	waitMaintenance(t, m, time.Minute, "Blocked by the quorum guard with one manager in maintenance", func(m *swarmv1.SwarmNodeMaintenance) string {
		b := condition(m.Status.Conditions, swarmv1.ConditionBlocked)
		switch {
		case m.Status.Phase != swarmv1.PhaseBlocked:
			return "not Blocked"
		case b == nil || b.Status != metav1.ConditionTrue || b.Reason != swarmv1.ReasonQuorumGuard || !strings.Contains(b.Message, second):
			return "no Blocked=True/QuorumGuard naming " + second
		case nodeStatus(m, first) == nil || nodeStatus(m, first).DrainedAt == nil:
			return first + " not drained"
		}
		return readyIs(m, metav1.ConditionFalse, swarmv1.ReasonQuorumGuard)
	})
	e.wantAvailability(map[string]swarm.NodeAvailability{first: swarm.NodeAvailabilityDrain, second: swarm.NodeAvailabilityActive})
	if n := nodeStatus(m, second); n.PreviousAvailability != "" || !strings.Contains(n.Message, "tolerate 1") {
		t.Errorf("blocked manager's status: %s", describeNodes(m.Status.Nodes))
	}
	e.remove(m)
	e.wantAvailability(map[string]swarm.NodeAvailability{first: swarm.NodeAvailabilityActive, second: swarm.NodeAvailabilityActive})
}

// TestMaintenanceLeavesANodeDrainedBeforeTheWindowDrained: restoring means going back to
// what was there, not to active.
func TestMaintenanceLeavesANodeDrainedBeforeTheWindowDrained(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-predrained")
	already, other := workerNames()
	e.setAvailability(already, swarm.NodeAvailabilityDrain)
	m := e.create("workers", swarmv1.SwarmNodeMaintenanceSpec{
		Nodes:  []string{already, other},
		Window: oneOff(clock.Now().Add(-time.Minute), time.Hour),
	})
	// The node already out takes no slot: with maxConcurrent 1 the other one drains too.
	waitMaintenance(t, m, time.Minute, "both in maintenance", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{already: "drain", other: "active"}))
	advance(t, 2*time.Hour, m)
	waitMaintenance(t, m, 30*time.Second, "completed", phaseWithNodes(swarmv1.PhaseCompleted, map[string]string{already: "drain", other: "active"}))
	e.wantAvailability(map[string]swarm.NodeAvailability{already: swarm.NodeAvailabilityDrain, other: swarm.NodeAvailabilityActive})
}

// TestMaintenanceLeavesANodeChangedByHandAsItIs: someone changed a node during the
// window; the operator neither fights nor overwrites them, and says so.
func TestMaintenanceLeavesANodeChangedByHandAsItIs(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-byhand")
	_, worker := workerNames()
	m := e.create("worker", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}, Window: oneOff(clock.Now().Add(-time.Minute), time.Hour)})
	waitMaintenance(t, m, time.Minute, "in maintenance", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{worker: "active"}))
	e.setAvailability(worker, swarm.NodeAvailabilityPause)
	waitMaintenance(t, m, 30*time.Second, "the node let go", func(m *swarmv1.SwarmNodeMaintenance) string {
		if n := nodeStatus(m, worker); n == nil || n.RestoredAt == nil || !strings.Contains(n.Message, "outside the operator") {
			return "not let go"
		}
		return ""
	})
	advance(t, 2*time.Hour, m)
	waitMaintenance(t, m, 30*time.Second, "completed", func(m *swarmv1.SwarmNodeMaintenance) string {
		if m.Status.Phase != swarmv1.PhaseCompleted {
			return "not completed"
		}
		return ""
	})
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityPause})
}

// TestMaintenanceDeletedMidWindowRestoresItsNodes: deletion ends the maintenance, and each
// node returns to its own previous availability (pause stays pause).
func TestMaintenanceDeletedMidWindowRestoresItsNodes(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-delete")
	paused, active := workerNames()
	e.setAvailability(paused, swarm.NodeAvailabilityPause)
	m := e.create("until-deleted", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{paused, active}, MaxConcurrent: 2})
	waitMaintenance(t, m, time.Minute, "both drained", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{paused: "pause", active: "active"}))
	e.wantAvailability(map[string]swarm.NodeAvailability{paused: swarm.NodeAvailabilityDrain, active: swarm.NodeAvailabilityDrain})
	e.remove(m)
	e.wantAvailability(map[string]swarm.NodeAvailability{paused: swarm.NodeAvailabilityPause, active: swarm.NodeAvailabilityActive})
}

// TestMaintenanceSurvivesAnOperatorRestart: everything lives in status, so a new
// operator ends the window on time and restores what the old one drained.
func TestMaintenanceSurvivesAnOperatorRestart(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-restart")
	paused, worker := workerNames()
	e.setAvailability(paused, swarm.NodeAvailabilityPause)
	m := e.create("restart", swarmv1.SwarmNodeMaintenanceSpec{
		Nodes: []string{paused, worker}, MaxConcurrent: 2,
		Window: oneOff(clock.Now().Add(-time.Minute), 30*time.Minute),
	})
	waitMaintenance(t, m, time.Minute, "in maintenance", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{paused: "pause", worker: "active"}))
	restartOperator()
	advance(t, time.Hour, m)
	waitMaintenance(t, m, 30*time.Second, "completed after the restart", phaseWithNodes(swarmv1.PhaseCompleted, map[string]string{paused: "pause", worker: "active"}))
	e.wantAvailability(map[string]swarm.NodeAvailability{paused: swarm.NodeAvailabilityPause, worker: swarm.NodeAvailabilityActive})
}

// TestMaintenanceServiceGuardNamesTheServiceThatWouldStop: a service pinned to the node
// would lose its only place to run.
func TestMaintenanceServiceGuardNamesTheServiceThatWouldStop(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-svcguard")
	_, worker := workerNames()
	e.createService("maint-pinned", 1, func(s *swarm.ServiceSpec) {
		s.TaskTemplate.Placement.Constraints = []string{"node.hostname==" + worker}
	})
	m := e.create("pinned", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}})
	waitMaintenance(t, m, 30*time.Second, "Blocked naming the service", func(m *swarmv1.SwarmNodeMaintenance) string {
		b := condition(m.Status.Conditions, swarmv1.ConditionBlocked)
		if m.Status.Phase != swarmv1.PhaseBlocked || b == nil || b.Reason != swarmv1.ReasonServiceGuard || !strings.Contains(b.Message, "maint-pinned") {
			return "not blocked by the service guard"
		}
		return ""
	})
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityActive})
}

// TestMaintenanceOverlapMakesTheLaterOneWait: two maintenances on one node; the later one
// waits until the earlier one lets the node go, then takes it from its real previous
// availability.
func TestMaintenanceOverlapMakesTheLaterOneWait(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-overlap")
	_, worker := workerNames()
	first := e.create("first", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}})
	waitMaintenance(t, first, time.Minute, "first in maintenance", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{worker: "active"}))
	second := e.create("second", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}})
	waitMaintenance(t, second, 30*time.Second, "second blocked by the overlap", func(m *swarmv1.SwarmNodeMaintenance) string {
		b := condition(m.Status.Conditions, swarmv1.ConditionBlocked)
		if m.Status.Phase != swarmv1.PhaseBlocked || b == nil || b.Reason != swarmv1.ReasonOverlap || !strings.Contains(b.Message, "/first") {
			return "not blocked by the overlap"
		}
		return ""
	})
	e.remove(first)
	waitMaintenance(t, second, 30*time.Second, "second takes the node once first is gone", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{worker: "active"}))
	e.remove(second)
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityActive})
}

// TestMaintenanceRecurringWindowWaitsForItsNextStart: a weekly window in Asia/Seoul is
// Pending with its next start on Sunday 02:00 Seoul time, and touches nothing before.
func TestMaintenanceRecurringWindowWaitsForItsNextStart(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-recurring")
	_, worker := workerNames()
	m := e.create("weekly", swarmv1.SwarmNodeMaintenanceSpec{
		Nodes:  []string{worker},
		Window: &swarmv1.MaintenanceWindow{Schedule: "0 2 * * SUN", TimeZone: "Asia/Seoul", Duration: metav1.Duration{Duration: 2 * time.Hour}},
	})
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	waitMaintenance(t, m, 30*time.Second, "Pending until Sunday 02:00 in Seoul", func(m *swarmv1.SwarmNodeMaintenance) string {
		next := m.Status.NextWindow
		if m.Status.Phase != swarmv1.PhasePending || next == nil || next.End == nil {
			return "no next window"
		}
		local := next.Start.In(seoul)
		now := clock.Now()
		if local.Weekday() != time.Sunday || local.Hour() != 2 || local.Minute() != 0 || !next.Start.After(now) || next.Start.Sub(now) > 7*24*time.Hour {
			return fmt.Sprintf("next window starts %s (Seoul %s)", next.Start.UTC(), local)
		}
		if next.End.Sub(next.Start.Time) != 2*time.Hour {
			return "window not 2h long"
		}
		return readyIs(m, metav1.ConditionTrue, swarmv1.ReasonWindowClosed)
	})
	if n := nodeStatus(m, worker); n == nil || n.PreviousAvailability != "" || n.Availability != "active" {
		t.Errorf("node status before the window: %s", describeNodes(m.Status.Nodes))
	}
	e.wantAvailability(map[string]swarm.NodeAvailability{worker: swarm.NodeAvailabilityActive})
}

// TestMaintenanceRejectsBadInputWithoutTouchingNodes: each mistake gets its own reason,
// Stalled=True, and no node changes.
func TestMaintenanceRejectsBadInputWithoutTouchingNodes(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-invalid")
	_, worker := workerNames()
	hour := metav1.Duration{Duration: time.Hour}
	cases := map[string]struct {
		spec       swarmv1.SwarmNodeMaintenanceSpec
		wantReason string
	}{
		"unknown-node":     {swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker, "no-such-node"}}, swarmv1.ReasonUnknownNode},
		"invalid-cron":     {swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}, Window: &swarmv1.MaintenanceWindow{Schedule: "0 2 * *", Duration: hour}}, swarmv1.ReasonInvalidWindow},
		"invalid-timezone": {swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}, Window: &swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", TimeZone: "Asia/Nowhere", Duration: hour}}, swarmv1.ReasonInvalidWindow},
		// A window without a duration is refused at admission (TestAdmissionRejectsBadSpecs).
		"empty-selector": {swarmv1.SwarmNodeMaintenanceSpec{NodeSelector: &swarmv1.NodeSelector{Labels: map[string]string{"maintenance-test": "nobody-has-this"}}}, swarmv1.ReasonNoNodesSelected},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := &maintenanceEnv{t: t, ns: e.ns, cluster: e.cluster, cli: e.cli}
			m := e.create(name, tc.spec)
			waitMaintenance(t, m, 30*time.Second, "stalled with "+tc.wantReason, func(m *swarmv1.SwarmNodeMaintenance) string {
				stalled := condition(m.Status.Conditions, swarmv1.ConditionStalled)
				if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != tc.wantReason || m.Status.Phase != swarmv1.PhaseFailed {
					return "not stalled"
				}
				return readyIs(m, metav1.ConditionFalse, tc.wantReason)
			})
			for _, n := range bed.Swarm.Nodes {
				e.wantAvailability(map[string]swarm.NodeAvailability{n.Name: swarm.NodeAvailabilityActive})
			}
			e.remove(m)
		})
	}
}

// TestMaintenanceReportsTasksThatDoNotLeaveInTime: a task that ignores its stop signal
// outlasts drainTimeout; the condition names it, and the maintenance goes on once Swarm
// has killed it.
func TestMaintenanceReportsTasksThatDoNotLeaveInTime(t *testing.T) {
	e := newMaintenanceEnv(t, "maint-timeout")
	_, worker := workerNames()
	e.createService("maint-stubborn", 5, func(s *swarm.ServiceSpec) {
		grace := 15 * time.Second
		// numbers handles SIGTERM only: SIGUSR1 leaves it running until the grace period ends.
		s.TaskTemplate.ContainerSpec.StopSignal = "SIGUSR1"
		s.TaskTemplate.ContainerSpec.StopGracePeriod = &grace
	})
	e.waitRunning("maint-stubborn", 5, worker)
	m := e.create("stubborn", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}, DrainTimeout: &metav1.Duration{Duration: time.Minute}})
	waitMaintenance(t, m, 30*time.Second, "draining with a task left", func(m *swarmv1.SwarmNodeMaintenance) string {
		if n := nodeStatus(m, worker); m.Status.Phase != swarmv1.PhaseDraining || n == nil || n.TasksRemaining == 0 {
			return "not draining with tasks remaining"
		}
		return ""
	})
	advance(t, 2*time.Minute, m)
	waitMaintenance(t, m, 10*time.Second, "DrainTimeout naming the task", func(m *swarmv1.SwarmNodeMaintenance) string {
		ready := condition(m.Status.Conditions, swarmv1.ConditionReady)
		if m.Status.Phase != swarmv1.PhaseFailed || ready == nil || ready.Reason != swarmv1.ReasonDrainTimeout || !strings.Contains(ready.Message, "maint-stubborn.") {
			return "no DrainTimeout naming maint-stubborn"
		}
		return ""
	})
	waitMaintenance(t, m, time.Minute, "in maintenance once the task is gone", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{worker: "active"}))
}
