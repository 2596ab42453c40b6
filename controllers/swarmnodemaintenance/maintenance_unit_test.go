package swarmnodemaintenance

// Fast tests of the maintenance reconciler against the in-memory swarm: Reconcile is
// called in a loop, the clock moved by what each pass asks for, and invariants checked
// after every pass and before every write to the swarm.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
	"github.com/swarmops/swarm-operator/internal/window"
)

const (
	avActive = swarmtypes.NodeAvailabilityActive
	avDrain  = swarmtypes.NodeAvailabilityDrain
	avPause  = swarmtypes.NodeAvailabilityPause
)

var errMaintenanceInjected = errors.New("injected failure")

// probeSwarm is the in-memory swarm as the reconciler sees it, with what memswarm does not
// play itself: nodes that leave the swarm or lose labels, a fault armed for the first call
// that matches a step, an operator crash right after a call, and a check before each
// availability write.
type probeSwarm struct {
	*memswarm.Swarm

	mu      sync.Mutex
	hidden  map[string]bool              // node IDs that left the swarm
	labels  map[string]map[string]string // node ID → labels as the test changed them
	arms    []*armedFault
	crashed *crashSwitch
	// beforeSwap sees every availability write before it is made.
	beforeSwap func(nodeID string, from, to swarmtypes.NodeAvailability)
}

// stepFault is what goes wrong at a step.
type stepFault string

const (
	faultFails      stepFault = "the call fails"
	faultLostAnswer stepFault = "the answer is lost"
	faultRestart    stepFault = "the operator restarts"
)

// armedFault hits the first call of op for which when says yes.
type armedFault struct {
	op    memswarm.Op
	kind  stepFault
	when  func(nodeID string, to swarmtypes.NodeAvailability) bool
	fired bool
}

func newProbeSwarm(ms *memswarm.Swarm) *probeSwarm {
	return &probeSwarm{Swarm: ms, hidden: map[string]bool{}, labels: map[string]map[string]string{}, crashed: &crashSwitch{}}
}

func (p *probeSwarm) arm(f *armedFault) {
	p.mu.Lock()
	p.arms = append(p.arms, f)
	p.mu.Unlock()
}

// before plans the memswarm fault for this call, if one is armed for it; after tells
// whether the operator crashes once the call has returned.
func (p *probeSwarm) before(op memswarm.Op, nodeID string, to swarmtypes.NodeAvailability) (crash bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.arms {
		if f.fired || f.op != op || !f.when(nodeID, to) {
			continue
		}
		f.fired = true
		switch f.kind {
		case faultFails:
			p.Fail(op, 1, errMaintenanceInjected)
		case faultLostAnswer:
			p.LoseAnswer(op, 1)
		case faultRestart:
			crash = true
		}
	}
	return crash
}

// leave makes a node leave the swarm (it is no longer listed).
func (p *probeSwarm) leave(hostname string) {
	n, _ := p.Node(hostname)
	p.mu.Lock()
	p.hidden[n.ID] = true
	p.mu.Unlock()
}

// relabel changes a node's labels as `docker node update --label-rm/--label-add` would.
func (p *probeSwarm) relabel(hostname string, labels map[string]string) {
	n, _ := p.Node(hostname)
	p.mu.Lock()
	p.labels[n.ID] = labels
	p.mu.Unlock()
}

func (p *probeSwarm) Nodes(ctx context.Context) ([]swarmtypes.Node, error) {
	crash := p.before(memswarm.OpNodes, "", "")
	nodes, err := p.Swarm.Nodes(ctx)
	p.mu.Lock()
	out := nodes[:0]
	for _, n := range nodes {
		if p.hidden[n.ID] {
			continue
		}
		if l, ok := p.labels[n.ID]; ok {
			n.Spec.Labels = l
		}
		out = append(out, n)
	}
	p.mu.Unlock()
	if crash {
		p.crashed.arm()
	}
	return out, err
}

func (p *probeSwarm) SwapNodeAvailability(ctx context.Context, nodeID string, from, to swarmtypes.NodeAvailability) error {
	if p.beforeSwap != nil {
		p.beforeSwap(nodeID, from, to)
	}
	crash := p.before(memswarm.OpSwapNodeAvailability, nodeID, to)
	err := p.Swarm.SwapNodeAvailability(ctx, nodeID, from, to)
	if crash {
		p.crashed.arm()
	}
	return err
}

func (p *probeSwarm) TasksOnNodes(ctx context.Context, nodeIDs []string) ([]swarmtypes.Task, error) {
	crash := p.before(memswarm.OpTasksOnNodes, strings.Join(nodeIDs, ","), "")
	tasks, err := p.Swarm.TasksOnNodes(ctx, nodeIDs)
	if crash {
		p.crashed.arm()
	}
	return tasks, err
}

// crashSwitch plays an operator that dies right after a swarm call: every write to the
// API server from then on, until the pass ends, is lost.
type crashSwitch struct {
	mu              sync.Mutex
	armed, happened bool
}

func (c *crashSwitch) arm() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

func (c *crashSwitch) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		c.happened = true
	}
	return c.armed
}

// restarted ends the crash: it tells whether one happened since the last call.
func (c *crashSwitch) restarted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.armed || c.happened
	c.armed, c.happened = false, false
	return was
}

// crashingClient loses the writes of a pass once its crashSwitch is armed.
type crashingClient struct {
	client.Client
	crash *crashSwitch
}

var errCrashed = errors.New("the operator died before this write")

func (c crashingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if c.crash.dead() {
		return errCrashed
	}
	return c.Client.Update(ctx, obj, opts...)
}

func (c crashingClient) Status() client.SubResourceWriter {
	return crashingStatus{SubResourceWriter: c.Client.Status(), crash: c.crash}
}

type crashingStatus struct {
	client.SubResourceWriter
	crash *crashSwitch
}

func (s crashingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if s.crash.dead() {
		return errCrashed
	}
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// staleCache answers lists of maintenances from a snapshot, as an informer cache that
// lags behind the API server; everything else goes to the API server.
type staleCache struct {
	client.Client
	snapshot *swarmv1.SwarmNodeMaintenanceList
}

func (c staleCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if l, ok := list.(*swarmv1.SwarmNodeMaintenanceList); ok && c.snapshot != nil {
		c.snapshot.DeepCopyInto(l)
		return nil
	}
	return c.Client.List(ctx, list, opts...)
}

// maintenanceWorld is a unit test's swarm, API server and running operator.
type maintenanceWorld struct {
	t   *testing.T
	env *testenv.Env
	ms  *memswarm.Swarm
	sw  *probeSwarm
	// cache is what the reconciler reads through its Client (the API server, behind a
	// crash switch; tests may put a stale cache in front).
	cache    client.Client
	rec      *Reconciler
	keys     []ktypes.NamespacedName
	restarts int
	// original is each node's availability before the test began; outside holds the
	// nodes someone else drained or paused (never to be made active by the operator).
	original map[string]swarmtypes.NodeAvailability
	outside  map[string]bool
	// maxHeldManagers is the most managers held at once, over every pass.
	maxHeldManagers int
	// evacuate plays Swarm's scheduler after each pass.
	evacuate bool
	// seen keeps each broken invariant reported once.
	seen map[string]bool
}

// violated reports a broken invariant, once per message.
func (w *maintenanceWorld) violated(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if w.seen[msg] {
		return
	}
	w.seen[msg] = true
	w.t.Errorf("at %s: %s", w.env.Clock.Now().Format(time.TimeOnly), msg)
}

// newMaintenanceWorld builds a swarm with the given nodes (hostname → role; a name
// starting with "m" is a manager, and m1 leads) and an operator around it.
func newMaintenanceWorld(t *testing.T, nodes ...string) *maintenanceWorld {
	t.Helper()
	ms := memswarm.New()
	w := &maintenanceWorld{t: t, ms: ms, sw: newProbeSwarm(ms), original: map[string]swarmtypes.NodeAvailability{},
		outside: map[string]bool{}, evacuate: true, seen: map[string]bool{}}
	w.env = testenv.NewEnv(t, w.sw)
	ms.Now = w.env.Clock.Now
	for _, h := range nodes {
		role := swarmtypes.NodeRoleWorker
		if strings.HasPrefix(h, "m") {
			role = swarmtypes.NodeRoleManager
		}
		n := ms.AddNode(h, role)
		w.original[n.ID] = avActive
	}
	w.cache = crashingClient{Client: w.env.Client, crash: w.sw.crashed}
	w.sw.beforeSwap = w.checkSwap
	w.restart()
	return w
}

// restart starts a brand-new reconciler: only what the API server holds carries over.
func (w *maintenanceWorld) restart() {
	w.rec = &Reconciler{Client: w.cache, APIReader: crashingClient{Client: w.env.Client, crash: w.sw.crashed},
		Swarms: w.env.Swarms, Recorder: w.env.Recorder, Now: w.env.Clock.Now}
}

// setOutside changes a node's availability as someone else would.
func (w *maintenanceWorld) setOutside(host string, a swarmtypes.NodeAvailability) {
	w.ms.SetAvailability(host, a)
	n, _ := w.ms.Node(host)
	w.outside[n.ID] = a != avActive
	if _, ok := w.original[n.ID]; ok && !w.started() {
		w.original[n.ID] = a
	}
}

func (w *maintenanceWorld) started() bool { return len(w.keys) > 0 }

func (w *maintenanceWorld) create(name string, spec swarmv1.SwarmNodeMaintenanceSpec) *swarmv1.SwarmNodeMaintenance {
	w.t.Helper()
	if spec.ClusterRef.Name == "" {
		spec.ClusterRef.Name = "prod"
	}
	m := &swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testenv.Namespace}, Spec: spec}
	w.env.Create(m)
	w.keys = append(w.keys, client.ObjectKeyFromObject(m))
	return m
}

// addTasks places running tasks of one service on the nodes.
func (w *maintenanceWorld) addTasks(service string, hosts ...string) {
	w.t.Helper()
	replicas := uint64(len(hosts))
	spec := swarmtypes.ServiceSpec{
		Annotations:  swarmtypes.Annotations{Name: service},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: service + ":1"}},
		Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &replicas}},
	}
	if _, err := w.ms.CreateService(context.Background(), swarm.ServiceWrite{Spec: spec}); err != nil {
		w.t.Fatal(err)
	}
	for _, h := range hosts {
		w.ms.AddTask(service, h, swarmtypes.TaskStateRunning)
	}
}

// maintenances reads every maintenance from the API server.
func (w *maintenanceWorld) maintenances() []swarmv1.SwarmNodeMaintenance {
	var list swarmv1.SwarmNodeMaintenanceList
	if err := w.env.Client.List(context.Background(), &list); err != nil {
		w.t.Fatal(err)
	}
	return list.Items
}

func (w *maintenanceWorld) get(m *swarmv1.SwarmNodeMaintenance) *swarmv1.SwarmNodeMaintenance {
	w.t.Helper()
	w.env.Get(m)
	return m
}

func (w *maintenanceWorld) availability(host string) swarmtypes.NodeAvailability {
	n, ok := w.ms.Node(host)
	if !ok {
		w.t.Fatalf("no node %s", host)
	}
	return n.Spec.Availability
}

// holders names the maintenances that hold the node, by the API server's status.
func (w *maintenanceWorld) holders(nodeID string) []string {
	var out []string
	for _, m := range w.maintenances() {
		for i := range m.Status.Nodes {
			if e := &m.Status.Nodes[i]; e.ID == nodeID && e.Held() {
				out = append(out, m.Name)
			}
		}
	}
	return out
}

// checkSwap runs before every availability write: a node is taken out only once a
// maintenance's status records what it had, and a node someone else took out is never
// made active.
func (w *maintenanceWorld) checkSwap(nodeID string, from, to swarmtypes.NodeAvailability) {
	if to == avActive {
		if w.outside[nodeID] {
			w.violated("node %s, taken out by someone else, is being made active", nodeID)
		}
		return
	}
	for _, m := range w.maintenances() {
		for i := range m.Status.Nodes {
			if e := &m.Status.Nodes[i]; e.ID == nodeID && e.Held() && e.PreviousAvailability == string(from) {
				return
			}
		}
	}
	w.violated("node %s is set %s → %s before any status records previousAvailability %s", nodeID, from, to, from)
}

// checkPass runs after every pass: never more managers held than Raft tolerates, and no
// node held by two maintenances.
func (w *maintenanceWorld) checkPass() {
	managers := 0
	for _, n := range w.nodes() {
		if n.Spec.Role == swarmtypes.NodeRoleManager {
			managers++
		}
	}
	heldManagers := map[string]bool{}
	holders := map[string][]string{}
	for _, m := range w.maintenances() {
		for i := range m.Status.Nodes {
			e := &m.Status.Nodes[i]
			if !e.Held() {
				continue
			}
			holders[e.ID] = append(holders[e.ID], m.Name)
			if e.Role == string(swarmtypes.NodeRoleManager) {
				heldManagers[e.ID] = true
			}
		}
	}
	w.maxHeldManagers = max(w.maxHeldManagers, len(heldManagers))
	if tolerated := (managers - 1) / 2; len(heldManagers) > tolerated {
		w.violated("%d managers held at once (%v), %d managers tolerate %d", len(heldManagers), sortedNames(heldManagers), managers, tolerated)
	}
	for id, hs := range holders {
		if len(hs) > 1 {
			w.violated("node %s is held by %v at once", id, hs)
		}
	}
}

func (w *maintenanceWorld) nodes() []swarmtypes.Node {
	nodes, err := w.ms.Nodes(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return nodes
}

// step reconciles every maintenance once and says how long the operator would wait
// before the next pass.
func (w *maintenanceWorld) step() time.Duration {
	wait := maintenanceMaxWait
	for _, key := range w.keys {
		res, err := w.rec.Reconcile(passCtx(w.t), ctrl.Request{NamespacedName: key})
		if w.sw.crashed.restarted() {
			w.restarts++
			w.restart()
			wait = min(wait, time.Second)
			continue
		}
		switch {
		case err != nil:
			wait = min(wait, time.Second) // the workqueue's backoff, roughly
		case res.Requeue: //nolint:staticcheck // the reconciler sets it on conflicts
			wait = min(wait, 10*time.Millisecond)
		case res.RequeueAfter > 0:
			wait = min(wait, res.RequeueAfter)
		}
	}
	w.checkPass()
	if w.evacuate {
		w.ms.EvacuateDrained()
	}
	return wait
}

// runUntil reconciles, moving the clock as the operator asks, until the clock reaches
// t (or stop says yes).
func (w *maintenanceWorld) runUntil(t time.Time, stop func() bool) {
	w.t.Helper()
	for i := 0; i < 20000; i++ {
		wait := w.step()
		if stop != nil && stop() || !w.env.Clock.Now().Before(t) {
			return
		}
		w.env.Clock.Advance(max(wait, time.Millisecond))
	}
	w.t.Fatalf("still running at %s", w.env.Clock.Now())
}

func (w *maintenanceWorld) runFor(d time.Duration) { w.runUntil(w.env.Clock.Now().Add(d), nil) }

// gone tells whether the maintenance is deleted from the API server.
func (w *maintenanceWorld) gone(m *swarmv1.SwarmNodeMaintenance) bool {
	err := w.env.Client.Get(context.Background(), client.ObjectKeyFromObject(m), &swarmv1.SwarmNodeMaintenance{})
	return apierrors.IsNotFound(err)
}

// checkAllBack checks the end of every window: nothing held, and every node has the
// availability it had before (nodes changed by someone else keep theirs).
func (w *maintenanceWorld) checkAllBack() {
	w.t.Helper()
	for _, m := range w.maintenances() {
		if h := heldNodes(m.Status.Nodes); len(h) > 0 {
			w.t.Errorf("%s still holds %v after its window: %s", m.Name, h, describeEntries(m.Status.Nodes))
		}
	}
	for _, n := range w.nodes() {
		if want := w.original[n.ID]; n.Spec.Availability != want {
			w.t.Errorf("node %s is %s after the window, was %s before", n.Description.Hostname, n.Spec.Availability, want)
		}
	}
}

func describeEntries(entries []swarmv1.MaintenanceNodeStatus) string {
	var parts []string
	for _, e := range entries {
		drained, restored := "-", "-"
		if e.DrainedAt != nil {
			drained = window.Stamp(e.DrainedAt.Time)
		}
		if e.RestoredAt != nil {
			restored = window.Stamp(e.RestoredAt.Time)
		}
		parts = append(parts, fmt.Sprintf("%s[prev=%s now=%s drained=%s restored=%s: %s]", e.Name, e.PreviousAvailability, e.Availability, drained, restored, e.Message))
	}
	return strings.Join(parts, " ")
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func passCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func oneOffWindow(start time.Time, d time.Duration) *swarmv1.MaintenanceWindow {
	s := metav1.NewTime(start)
	return &swarmv1.MaintenanceWindow{Start: &s, Duration: metav1.Duration{Duration: d}}
}

func readyReason(m *swarmv1.SwarmNodeMaintenance) string {
	if c := meta.FindStatusCondition(m.Status.Conditions, swarmv1.ConditionReady); c != nil {
		return fmt.Sprintf("%s/%s", c.Status, c.Reason)
	}
	return "none"
}

func stalledReason(m *swarmv1.SwarmNodeMaintenance) string {
	if c := meta.FindStatusCondition(m.Status.Conditions, swarmv1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}

func memNodeID(host string) string { return "node-" + host }

// TestMaintenanceScenarioMatrix runs one window over three managers and three workers
// (w3 drained by someone else beforehand) with a fault at each step, and checks the
// invariants rather than the calls made.
func TestMaintenanceScenarioMatrix(t *testing.T) {
	start := testenv.Epoch.Add(time.Minute)
	end := start.Add(30 * time.Minute)
	steps := []struct {
		name   string
		op     memswarm.Op
		delete bool
		when   func(w *maintenanceWorld) func(string, swarmtypes.NodeAvailability) bool
	}{
		{name: "record previous availability", op: memswarm.OpNodes, when: func(w *maintenanceWorld) func(string, swarmtypes.NodeAvailability) bool {
			return func(string, swarmtypes.NodeAvailability) bool { return !w.env.Clock.Now().Before(start) }
		}},
		{name: "write the drain", op: memswarm.OpSwapNodeAvailability, when: func(*maintenanceWorld) func(string, swarmtypes.NodeAvailability) bool {
			return func(_ string, to swarmtypes.NodeAvailability) bool { return to == avDrain }
		}},
		{name: "follow the drain", op: memswarm.OpTasksOnNodes, when: func(*maintenanceWorld) func(string, swarmtypes.NodeAvailability) bool {
			return func(string, swarmtypes.NodeAvailability) bool { return true }
		}},
		{name: "window ends and nodes are restored", op: memswarm.OpSwapNodeAvailability, when: func(w *maintenanceWorld) func(string, swarmtypes.NodeAvailability) bool {
			return func(_ string, to swarmtypes.NodeAvailability) bool {
				return to == avActive && !w.env.Clock.Now().Before(end)
			}
		}},
		{name: "deletion restores the nodes", op: memswarm.OpSwapNodeAvailability, delete: true, when: func(*maintenanceWorld) func(string, swarmtypes.NodeAvailability) bool {
			return func(_ string, to swarmtypes.NodeAvailability) bool { return to == avActive }
		}},
	}
	for _, step := range steps {
		for _, kind := range []stepFault{faultFails, faultLostAnswer, faultRestart} {
			t.Run(step.name+"/"+string(kind), func(t *testing.T) {
				w := newMaintenanceWorld(t, "m1", "m2", "m3", "w1", "w2", "w3")
				w.setOutside("w3", avDrain)
				w.addTasks("web", "w1", "w2", "m2")
				fault := &armedFault{op: step.op, kind: kind, when: step.when(w)}
				w.sw.arm(fault)
				m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{
					Nodes: []string{"m1", "m2", "m3", "w1", "w2", "w3"}, MaxConcurrent: 3,
					Window: oneOffWindow(start, 30*time.Minute), Reason: "kernel upgrade",
				})
				if step.delete {
					w.runUntil(start.Add(10*time.Minute), nil)
					if got := w.get(m).Status.Phase; got != swarmv1.PhaseInMaintenance {
						t.Fatalf("phase %s before the deletion, want InMaintenance: %s", got, describeEntries(m.Status.Nodes))
					}
					w.env.Delete(m)
					w.runUntil(end.Add(time.Hour), func() bool { return w.gone(m) })
					if !w.gone(m) {
						t.Fatalf("not deleted: %s", describeEntries(w.get(m).Status.Nodes))
					}
				} else {
					w.runUntil(start.Add(10*time.Minute), nil)
					w.get(m)
					for _, h := range []string{"w1", "w2", "m2"} {
						if got := w.availability(h); got != avDrain {
							t.Errorf("%s is %s inside the window, want drain: %s", h, got, describeEntries(m.Status.Nodes))
						}
					}
					w.runUntil(end.Add(5*time.Minute), nil)
					if got := w.get(m).Status.Phase; got != swarmv1.PhaseCompleted {
						t.Errorf("phase %s after the window, want Completed (%s): %s", got, readyReason(m), describeEntries(m.Status.Nodes))
					}
				}
				if !fault.fired {
					t.Fatalf("the fault at %q never fired", step.name)
				}
				if kind == faultRestart && w.restarts == 0 {
					t.Errorf("the operator never restarted")
				}
				w.checkAllBack()
				if got := w.availability("w3"); got != avDrain {
					t.Errorf("w3, drained by someone else, is %s", got)
				}
				if w.maxHeldManagers != 1 {
					t.Errorf("at most %d managers held at once, want exactly 1 (m2)", w.maxHeldManagers)
				}
			})
		}
	}
}

// D1: a selection or window that fails blocks only taking new nodes; held nodes are
// restored when their window ends or they leave the selection.
func TestMaintenanceRestoresHeldNodesWhenSelectionFails(t *testing.T) {
	start := testenv.Epoch.Add(time.Minute)
	cases := []struct {
		name       string
		spec       swarmv1.SwarmNodeMaintenanceSpec
		nodes      []string
		labels     map[string]map[string]string
		breakIt    func(w *maintenanceWorld, m *swarmv1.SwarmNodeMaintenance)
		restoreBy  time.Duration // from the break: the node must be back by then
		wantStall  string
		wantInHeld bool // the node stays held until the window ends
	}{
		{
			name:  "its label was removed during the window",
			spec:  swarmv1.SwarmNodeMaintenanceSpec{NodeSelector: &swarmv1.NodeSelector{Labels: map[string]string{"group": "a"}}},
			nodes: []string{"m1", "w1", "w2"},
			breakIt: func(w *maintenanceWorld, _ *swarmv1.SwarmNodeMaintenance) {
				w.sw.relabel("w1", nil)
			},
			restoreBy: time.Minute, wantStall: swarmv1.ReasonNoNodesSelected,
		},
		{
			name:  "another node named in spec.nodes left the swarm",
			spec:  swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1", "w2"}},
			nodes: []string{"m1", "w1", "w2"},
			breakIt: func(w *maintenanceWorld, _ *swarmv1.SwarmNodeMaintenance) {
				w.sw.leave("w2")
			},
			restoreBy: 31 * time.Minute, wantStall: swarmv1.ReasonUnknownNode, wantInHeld: true,
		},
		{
			name:  "the window became invalid",
			spec:  swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}},
			nodes: []string{"m1", "w1", "w2"},
			breakIt: func(w *maintenanceWorld, m *swarmv1.SwarmNodeMaintenance) {
				w.env.Mutate(m, func() { m.Spec.Window.Schedule = "0 2 * * *" }) // start and schedule: invalid
			},
			restoreBy: time.Minute, wantStall: swarmv1.ReasonInvalidWindow,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newMaintenanceWorld(t, tc.nodes...)
			w.sw.relabel("w1", map[string]string{"group": "a"})
			tc.spec.Window = oneOffWindow(start, 30*time.Minute)
			m := w.create("upgrade", tc.spec)
			w.runUntil(start.Add(5*time.Minute), nil)
			if got := w.availability("w1"); got != avDrain {
				t.Fatalf("w1 is %s in the window, want drain: %s", got, describeEntries(w.get(m).Status.Nodes))
			}
			tc.breakIt(w, m)
			w.runFor(30 * time.Second)
			if tc.wantInHeld && w.availability("w1") != avDrain {
				t.Errorf("w1 was let go while still selected and in its window: %s", describeEntries(w.get(m).Status.Nodes))
			}
			w.runFor(tc.restoreBy)
			w.get(m)
			if got := w.availability("w1"); got != avActive {
				t.Errorf("w1 is %s, want active again: %s", got, describeEntries(m.Status.Nodes))
			}
			if h := heldNodes(m.Status.Nodes); len(h) > 0 {
				t.Errorf("still held: %v", h)
			}
			if got := stalledReason(m); got != tc.wantStall {
				t.Errorf("Stalled reason %q, want %q (Ready %s)", got, tc.wantStall, readyReason(m))
			}
			if got := w.availability("w2"); got != avActive {
				t.Errorf("w2, never held, is %s", got)
			}
		})
	}
}

// D4: managers and drain.
func TestMaintenanceQuorumCountsHeldManagersNotDrainedOnes(t *testing.T) {
	start := testenv.Epoch.Add(time.Minute)
	t.Run("three managers drained by design are held one at a time", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "m2", "m3", "w1")
		for _, h := range []string{"m1", "m2", "m3"} {
			w.setOutside(h, avDrain)
		}
		m := w.create("managers", swarmv1.SwarmNodeMaintenanceSpec{NodeSelector: &swarmv1.NodeSelector{Role: "manager"},
			MaxConcurrent: 1, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(10*time.Minute), nil)
		w.get(m)
		if got := heldNodes(m.Status.Nodes); len(got) != 1 {
			t.Errorf("held %v inside the window, want exactly one manager: %s", got, describeEntries(m.Status.Nodes))
		}
		w.runUntil(start.Add(40*time.Minute), nil)
		w.checkAllBack()
		if w.maxHeldManagers != 1 {
			t.Errorf("at most %d managers held at once, want 1", w.maxHeldManagers)
		}
	})
	t.Run("a manager drained by design does not block the others", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "m2", "m3", "w1")
		w.setOutside("m3", avDrain)
		m := w.create("m2", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"m2"}, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(5*time.Minute), nil)
		if got := w.availability("m2"); got != avDrain {
			t.Errorf("m2 is %s in its window, want drain: %s (%s)", got, describeEntries(w.get(m).Status.Nodes), readyReason(m))
		}
		w.runUntil(start.Add(40*time.Minute), nil)
		w.checkAllBack()
	})
	t.Run("a held manager counts as down whatever its availability was", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "m2", "m3", "w1")
		w.setOutside("m2", avDrain)
		a := w.create("a", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"m2"}, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(time.Minute), nil)
		if h := heldNodes(w.get(a).Status.Nodes); len(h) != 1 {
			t.Fatalf("a holds %v, want m2: %s", h, describeEntries(a.Status.Nodes))
		}
		b := w.create("b", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"m3"}, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(5*time.Minute), nil)
		w.get(b)
		if got := w.availability("m3"); got != avActive || b.Status.Phase != swarmv1.PhaseBlocked {
			t.Errorf("m3 is %s and b %s, want active and Blocked by the quorum guard: %s", got, b.Status.Phase, describeEntries(b.Status.Nodes))
		}
		if c := meta.FindStatusCondition(b.Status.Conditions, swarmv1.ConditionBlocked); c == nil || c.Reason != swarmv1.ReasonQuorumGuard {
			t.Errorf("Blocked condition %v, want reason QuorumGuard", c)
		}
		w.runUntil(start.Add(40*time.Minute), nil)
		w.checkAllBack()
	})
	t.Run("an already drained worker uses no slot", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1", "w2")
		w.setOutside("w1", avDrain)
		m := w.create("workers", swarmv1.SwarmNodeMaintenanceSpec{NodeSelector: &swarmv1.NodeSelector{Role: "worker"},
			MaxConcurrent: 1, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(5*time.Minute), nil)
		if got := heldNodes(w.get(m).Status.Nodes); len(got) != 2 || w.availability("w2") != avDrain {
			t.Errorf("held %v, want w1 (as it was) and w2 (drained): %s", got, describeEntries(m.Status.Nodes))
		}
		w.runUntil(start.Add(40*time.Minute), nil)
		w.checkAllBack()
	})
}

// D14: two maintenances never hold one node, even when the cache lags.
func TestMaintenanceOverlapIsCheckedOnAFreshRead(t *testing.T) {
	start := testenv.Epoch.Add(time.Minute)
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	// The cache never sees any maintenance: the worst lag there is.
	w.cache = staleCache{Client: w.cache, snapshot: &swarmv1.SwarmNodeMaintenanceList{}}
	w.restart()
	a := w.create("a", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute)})
	w.env.Clock.Advance(time.Second)
	b := w.create("b", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute)})
	w.runUntil(start.Add(5*time.Minute), nil)
	if got := w.holders(memNodeID("w1")); !slices.Equal(got, []string{"a"}) {
		t.Errorf("w1 held by %v, want a alone: a %s; b %s", got, describeEntries(w.get(a).Status.Nodes), describeEntries(w.get(b).Status.Nodes))
	}
	if got := w.get(b).Status.Phase; got != swarmv1.PhaseBlocked {
		t.Errorf("b is %s, want Blocked (%s)", got, readyReason(b))
	}
	w.runUntil(start.Add(40*time.Minute), nil)
	w.checkAllBack()
}

// D14: a drain someone else made after we recorded the previous availability is not ours.
func TestMaintenanceNeverAdoptsADrainAnotherMaintenanceMade(t *testing.T) {
	start := testenv.Epoch.Add(time.Minute)
	for _, then := range []string{"its window goes on", "it is deleted"} {
		t.Run(then, func(t *testing.T) {
			w := newMaintenanceWorld(t, "m1", "w1", "w2")
			a := w.create("a", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute)})
			w.env.Clock.Advance(time.Second)
			b := w.create("b", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute)})
			w.runUntil(start.Add(5*time.Minute), nil)
			if got := w.holders(memNodeID("w1")); !slices.Equal(got, []string{"a"}) {
				t.Fatalf("w1 held by %v, want a", got)
			}
			// What a lagging cache let b write earlier: it recorded w1 as active, and its
			// own drain never happened.
			w.get(b)
			b.Status.Nodes = []swarmv1.MaintenanceNodeStatus{{Name: "w1", ID: memNodeID("w1"), Role: "worker", PreviousAvailability: "active", Availability: "active"}}
			if err := w.env.Client.Status().Update(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if then == "it is deleted" {
				w.env.Delete(b)
				w.runUntil(start.Add(10*time.Minute), func() bool { return w.gone(b) })
				if !w.gone(b) {
					t.Errorf("b is not gone: %s", describeEntries(w.get(b).Status.Nodes))
				}
			} else {
				w.runUntil(start.Add(10*time.Minute), nil)
				if got := w.holders(memNodeID("w1")); !slices.Equal(got, []string{"a"}) {
					t.Errorf("w1 held by %v, want a alone: b %s", got, describeEntries(w.get(b).Status.Nodes))
				}
			}
			if got := w.availability("w1"); got != avDrain {
				t.Errorf("w1 is %s while a holds it, want drain", got)
			}
			w.runUntil(start.Add(40*time.Minute), nil)
			w.checkAllBack()
			_ = a
		})
	}
}

// TestMaintenanceUnitBehaviours covers the paths the matrix does not: a node changed by
// hand during the window, tasks that outlast drainTimeout, the service guard, a pause
// window, and deletion when the SwarmCluster is gone or not ready.
func TestMaintenanceUnitBehaviours(t *testing.T) {
	start := testenv.Epoch.Add(time.Minute)
	t.Run("a node changed by hand during the window is let go and not restored", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1", "w2")
		m := w.create("hand", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(2*time.Minute), nil)
		w.setOutside("w1", avPause)
		w.runUntil(start.Add(40*time.Minute), nil)
		if got := w.availability("w1"); got != avPause {
			t.Errorf("w1 is %s, want pause as set by hand", got)
		}
		if h := heldNodes(w.get(m).Status.Nodes); len(h) > 0 || !testenv.HasEvent(w.env.Events(), "NodeChangedOutside") {
			t.Errorf("held %v; want w1 let go with a NodeChangedOutside event", h)
		}
	})
	t.Run("tasks that outlast drainTimeout are named", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1", "w2")
		w.evacuate = false
		w.addTasks("stubborn", "w1")
		m := w.create("slow", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute),
			DrainTimeout: &metav1.Duration{Duration: time.Minute}})
		w.runUntil(start.Add(5*time.Minute), nil)
		w.get(m)
		if c := meta.FindStatusCondition(m.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Reason != swarmv1.ReasonDrainTimeout ||
			!strings.Contains(c.Message, "stubborn.1") {
			t.Errorf("Ready %v, want DrainTimeout naming stubborn.1", c)
		}
		w.ms.EvacuateDrained()
		w.runUntil(start.Add(40*time.Minute), nil)
		w.checkAllBack()
	})
	t.Run("the service guard holds back the node a service needs", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1")
		w.addTasks("pinned", "w1")
		svc, _ := w.ms.Service("pinned")
		spec := svc.Spec
		spec.TaskTemplate.Placement = &swarmtypes.Placement{Constraints: []string{"node.hostname==w1"}}
		if _, err := w.ms.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: spec}); err != nil {
			t.Fatal(err)
		}
		m := w.create("guarded", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(2*time.Minute), nil)
		if c := meta.FindStatusCondition(w.get(m).Status.Conditions, swarmv1.ConditionBlocked); c == nil || c.Reason != swarmv1.ReasonServiceGuard {
			t.Errorf("Blocked %v, want ServiceWouldStop", c)
		}
		if got := w.availability("w1"); got != avActive {
			t.Errorf("w1 is %s, want active", got)
		}
	})
	t.Run("a pause window pauses and restores", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1")
		m := w.create("pause", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Availability: "pause", Window: oneOffWindow(start, 30*time.Minute)})
		w.runUntil(start.Add(2*time.Minute), nil)
		if got := w.availability("w1"); got != avPause || w.get(m).Status.Phase != swarmv1.PhaseInMaintenance {
			t.Errorf("w1 is %s, phase %s; want pause, InMaintenance", got, m.Status.Phase)
		}
		w.runUntil(start.Add(40*time.Minute), nil)
		w.checkAllBack()
	})
	t.Run("a recurring window is pending between its windows", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1")
		m := w.create("nightly", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"},
			Window: &swarmv1.MaintenanceWindow{Schedule: "0 2 * * *", Duration: metav1.Duration{Duration: time.Hour}}})
		w.runFor(2 * time.Minute)
		if got := w.get(m).Status.Phase; got != swarmv1.PhasePending || m.Status.NextWindow == nil {
			t.Errorf("phase %s next %v, want Pending with a next window", got, m.Status.NextWindow)
		}
	})
	t.Run("deletion with the SwarmCluster gone lets the resource go", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1")
		m := w.create("orphan", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
		w.runFor(time.Minute)
		if err := w.env.Client.Delete(context.Background(), w.env.Cluster); err != nil {
			t.Fatal(err)
		}
		w.env.Delete(m)
		w.runFor(time.Minute)
		if !w.gone(m) || !testenv.HasEvent(w.env.Events(), "NodesNotRestored") {
			t.Errorf("want the maintenance gone with a NodesNotRestored event")
		}
	})
	t.Run("a SwarmCluster that is not ready makes the maintenance wait", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1")
		w.env.Get(w.env.Cluster)
		w.env.Cluster.Status.Conditions[0].Status = metav1.ConditionFalse
		w.env.Cluster.Status.Conditions[0].Reason = swarmv1.ReasonUnreachable
		if err := w.env.Client.Status().Update(context.Background(), w.env.Cluster); err != nil {
			t.Fatal(err)
		}
		m := w.create("waits", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
		w.runFor(time.Minute)
		if got := readyReason(w.get(m)); got != "False/"+swarmv1.ReasonClusterNotReady {
			t.Errorf("Ready %s, want False/ClusterNotReady", got)
		}
		w.env.Delete(m)
		w.runFor(time.Minute)
		if !w.gone(m) {
			t.Errorf("not deleted, though it holds no node: %s", describeEntries(w.get(m).Status.Nodes))
		}
		if got := w.availability("w1"); got != avActive {
			t.Errorf("w1 is %s", got)
		}
	})
	t.Run("the watches find the maintenances of a cluster and the blocked ones", func(t *testing.T) {
		w := newMaintenanceWorld(t, "m1", "w1")
		c := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).
			WithIndex(&swarmv1.SwarmNodeMaintenance{}, reconcile.IndexClusterRef, func(o client.Object) []string {
				return []string{o.(*swarmv1.SwarmNodeMaintenance).Spec.ClusterRef.Name}
			}).
			WithObjects(
				&swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.Namespace, Name: "a", UID: "a"},
					Spec:   swarmv1.SwarmNodeMaintenanceSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "prod"}},
					Status: swarmv1.SwarmNodeMaintenanceStatus{Phase: swarmv1.PhaseBlocked}},
				&swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.Namespace, Name: "b", UID: "b"},
					Spec: swarmv1.SwarmNodeMaintenanceSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "other"}}},
			).Build()
		r := &Reconciler{Client: c, Recorder: w.env.Recorder, Now: w.env.Clock.Now}
		if got := r.maintenancesOf(context.Background(), testenv.Namespace, "prod"); len(got) != 1 || got[0].Name != "a" {
			t.Errorf("maintenancesOf(prod) = %v, want a", got)
		}
		gone := &swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{UID: "b"}}
		if got := r.blockedMaintenances(context.Background(), gone); len(got) != 1 || got[0].Name != "a" {
			t.Errorf("blockedMaintenances = %v, want a", got)
		}
	})
}

// TestMaintenanceNodePutBackByHandStaysOutOfAMergedWindow: activations at 02:00, 02:10
// and 02:20 lasting 30 minutes merge into one window, 02:00-02:50. A node put back into
// service by hand at 02:05 stays in service until 02:50, though the activations after
// its release keep extending the window; the next day's window takes it again.
func TestMaintenanceNodePutBackByHandStaysOutOfAMergedWindow(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	m := w.create("merged", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"},
		Window: &swarmv1.MaintenanceWindow{Schedule: "0,10,20 2 * * *", Duration: metav1.Duration{Duration: 30 * time.Minute}}})
	windowStart := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	w.runUntil(windowStart.Add(5*time.Minute), nil)
	if got := w.availability("w1"); got != avDrain {
		t.Fatalf("w1 is %s at 02:05, want drain: %s", got, describeEntries(w.get(m).Status.Nodes))
	}
	w.setOutside("w1", avActive)
	for _, until := range []time.Duration{15 * time.Minute, 35 * time.Minute, 49 * time.Minute} {
		w.runUntil(windowStart.Add(until), nil)
		if got := w.availability("w1"); got != avActive {
			t.Fatalf("w1 is %s at %s, want active as put back by hand until the window ends at 02:50: %s",
				got, w.env.Clock.Now().Format(time.TimeOnly), describeEntries(w.get(m).Status.Nodes))
		}
	}
	if got := w.get(m).Status.CurrentWindow; got == nil || !got.Start.Time.Equal(windowStart) {
		t.Errorf("current window %v, want it to start at 02:00, its first activation", got)
	}
	w.runUntil(windowStart.Add(24*time.Hour+5*time.Minute), nil)
	if got := w.availability("w1"); got != avDrain {
		t.Errorf("w1 is %s in the next day's window, want drain: %s", got, describeEntries(w.get(m).Status.Nodes))
	}
}
