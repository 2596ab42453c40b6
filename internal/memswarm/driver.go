package memswarm

import (
	"fmt"
	"slices"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

// This file holds what a test uses to play Swarm's updater, scheduler and the other
// people at the swarm. None of it is a port call: nothing here is in the call log or
// subject to faults. The methods panic on an unknown service, node or task: that is a
// mistake in the test.

// NodeOption sets something of a node added by AddNode.
type NodeOption func(*swarmtypes.Node)

// Leader makes the manager the leader (the first manager added is, unless another one
// says so).
func Leader() NodeOption {
	return func(n *swarmtypes.Node) {
		if n.ManagerStatus != nil {
			n.ManagerStatus.Leader = true
		}
	}
}

// WithReachability sets a manager's reachability (default reachable).
func WithReachability(r swarmtypes.Reachability) NodeOption {
	return func(n *swarmtypes.Node) {
		if n.ManagerStatus != nil {
			n.ManagerStatus.Reachability = r
		}
	}
}

// WithState sets the node's state (default ready).
func WithState(s swarmtypes.NodeState) NodeOption {
	return func(n *swarmtypes.Node) { n.Status.State = s }
}

// WithAvailability sets the node's initial availability (default active).
func WithAvailability(a swarmtypes.NodeAvailability) NodeOption {
	return func(n *swarmtypes.Node) { n.Spec.Availability = a }
}

// WithLabels sets the node's (Swarm) labels.
func WithLabels(labels map[string]string) NodeOption {
	return func(n *swarmtypes.Node) { n.Spec.Labels = clone(labels) }
}

// WithEngineLabels sets the labels of the node's Docker engine.
func WithEngineLabels(labels map[string]string) NodeOption {
	return func(n *swarmtypes.Node) { n.Description.Engine.Labels = clone(labels) }
}

// AddNode adds a ready, active node with ID "node-<hostname>". A manager is reachable,
// and the leader if it is the first one.
func (m *Swarm) AddNode(hostname string, role swarmtypes.NodeRole, opts ...NodeOption) swarmtypes.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.nodes[hostname]; dup {
		panic(fmt.Sprintf("memswarm: node %s added twice", hostname))
	}
	n := &swarmtypes.Node{ID: "node-" + hostname}
	n.Version, n.CreatedAt = m.nextVersion()
	n.UpdatedAt = n.CreatedAt
	n.Spec.Role = role
	n.Spec.Availability = swarmtypes.NodeAvailabilityActive
	n.Description = swarmtypes.NodeDescription{
		Hostname: hostname,
		Platform: swarmtypes.Platform{Architecture: "x86_64", OS: "linux"},
		Engine:   swarmtypes.EngineDescription{EngineVersion: "memswarm"},
	}
	addr := fmt.Sprintf("10.0.0.%d", len(m.nodes)+1)
	n.Status = swarmtypes.NodeStatus{State: swarmtypes.NodeStateReady, Addr: addr}
	if role == swarmtypes.NodeRoleManager {
		n.ManagerStatus = &swarmtypes.ManagerStatus{Reachability: swarmtypes.ReachabilityReachable, Addr: addr + ":2377"}
		if m.leader() == nil {
			n.ManagerStatus.Leader = true
		}
	}
	for _, o := range opts {
		o(n)
	}
	if n.ManagerStatus != nil && n.ManagerStatus.Leader {
		if old := m.leader(); old != nil {
			old.ManagerStatus.Leader = false
		}
	}
	m.nodes[hostname] = n
	if m.current == "" && n.ManagerStatus != nil {
		m.current = hostname
	}
	return clone(*n)
}

func (m *Swarm) leader() *swarmtypes.Node {
	for _, n := range m.nodes {
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			return n
		}
	}
	return nil
}

func (m *Swarm) mustNode(hostname string) *swarmtypes.Node {
	n, ok := m.nodes[hostname]
	if !ok {
		panic(fmt.Sprintf("memswarm: no node %s", hostname))
	}
	return n
}

// Node returns the node of that hostname.
func (m *Swarm) Node(hostname string) (swarmtypes.Node, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[hostname]
	if !ok {
		return swarmtypes.Node{}, false
	}
	return clone(*n), true
}

// SetAvailability changes a node's availability as someone else would (docker node
// update): a write, with a new version.
func (m *Swarm) SetAvailability(hostname string, a swarmtypes.NodeAvailability) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setAvailability(m.mustNode(hostname), a)
}

// SetNodeState sets a node's state (ready, down, ...), as its heartbeats would.
func (m *Swarm) SetNodeState(hostname string, s swarmtypes.NodeState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.mustNode(hostname)
	n.Status.State = s
	n.Version, n.UpdatedAt = m.nextVersion()
}

// SetReachability sets a manager's reachability. An unreachable manager answers no
// call; without a majority of reachable managers, calls fail with swarm.ErrQuorumLost.
func (m *Swarm) SetReachability(hostname string, r swarmtypes.Reachability) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.mustNode(hostname)
	if n.ManagerStatus == nil {
		panic(fmt.Sprintf("memswarm: node %s is not a manager", hostname))
	}
	n.ManagerStatus.Reachability = r
	n.Version, n.UpdatedAt = m.nextVersion()
}

// SetLeader makes a manager the leader.
func (m *Swarm) SetLeader(hostname string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.mustNode(hostname)
	if n.ManagerStatus == nil {
		panic(fmt.Sprintf("memswarm: node %s is not a manager", hostname))
	}
	if old := m.leader(); old != nil {
		old.ManagerStatus.Leader = false
	}
	n.ManagerStatus.Leader = true
}

func (m *Swarm) mustService(name string) *service {
	s, ok := m.services[name]
	if !ok {
		panic(fmt.Sprintf("memswarm: no service %s", name))
	}
	return s
}

// Service returns the service of that name as an inspect shows it (no task counts).
func (m *Swarm) Service(name string) (swarmtypes.Service, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.services[name]
	if !ok {
		return swarmtypes.Service{}, false
	}
	return clone(s.Service), true
}

// Services returns the names of the services, sorted.
func (m *Swarm) Services() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.services)
}

// Networks returns the names of the networks, sorted.
func (m *Swarm) Networks() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.networks)
}

// SecretNames returns the names of the secrets, sorted (Secrets is the port call).
func (m *Swarm) SecretNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.secrets)
}

// ConfigNames returns the names of the configs, sorted (Configs is the port call).
func (m *Swarm) ConfigNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.configs)
}

// SetUpdateState moves the service's update as Swarm's updater would: a write (new
// version). StartedAt is set if unset, CompletedAt on completed and rollback_completed.
// It makes an UpdateStatus if the service has none.
func (m *Swarm) SetUpdateState(serviceName string, state swarmtypes.UpdateState, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setUpdateState(m.mustService(serviceName), state, message)
}

func (m *Swarm) setUpdateState(s *service, state swarmtypes.UpdateState, message string) {
	s.updatePending = false
	s.Version, s.UpdatedAt = m.nextVersion()
	defer m.emit(events.ActionUpdate, s) // the updater's write, with the state it wrote
	now := s.UpdatedAt
	st := s.UpdateStatus
	if st == nil {
		st = &swarmtypes.UpdateStatus{}
	} else {
		st = clone(st)
	}
	st.State, st.Message = state, message
	if st.StartedAt == nil {
		st.StartedAt = &now
	}
	st.CompletedAt = nil
	if state == swarmtypes.UpdateStateCompleted || state == swarmtypes.UpdateStateRollbackCompleted {
		st.CompletedAt = &now
	}
	s.UpdateStatus = st
}

// StartUpdates is a lagging updater (LaggingUpdater) picking up the writes it has yet
// to start on: their services go to updating.
func (m *Swarm) StartUpdates() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.services {
		if s.updatePending {
			m.startUpdate(s)
		}
	}
}

// FailUpdate plays Swarm's updater giving up on an update with failure_action
// rollback: the spec goes back to the previous one, which is then dropped (an
// automatic rollback leaves no previous spec, unlike a requested one), and the update
// status says rollback_started with the update's start time. Converge, or
// SetUpdateState, completes the rollback.
func (m *Swarm) FailUpdate(serviceName, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.mustService(serviceName)
	if s.PreviousSpec == nil {
		panic("memswarm: FailUpdate of " + serviceName + ", which has no previous spec")
	}
	s.setSpec(*s.PreviousSpec)
	s.PreviousSpec = nil
	m.setUpdateState(s, swarmtypes.UpdateStateRollbackStarted, message)
}

// startUpdate is the updater's own write, as on Swarm: a new version.
func (m *Swarm) startUpdate(s *service) {
	m.setUpdateState(s, swarmtypes.UpdateStateUpdating, "update in progress")
}

// SetRunning sets the number of running tasks the service's task counts report.
// (The counts are not derived from the tasks AddTask places: the test keeps the two
// consistent when it cares.)
func (m *Swarm) SetRunning(serviceName string, running uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mustService(serviceName).running = running
}

// Converge finishes the service's rollout: all desired tasks run, a job's run completes, and an update in
// progress completes (updating → completed, rollback_started → rollback_completed).
// A paused update stays paused.
func (m *Swarm) Converge(serviceName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.converge(m.mustService(serviceName))
}

// ConvergeAll converges every service.
func (m *Swarm) ConvergeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.services {
		m.converge(s)
	}
}

func (m *Swarm) converge(s *service) {
	s.running = m.desired(s)
	if s.JobStatus != nil {
		m.endJob(s, swarmtypes.TaskStateComplete, "")
	}
	if s.updatePending {
		m.startUpdate(s)
	}
	if s.UpdateStatus == nil {
		return
	}
	switch s.UpdateStatus.State {
	case swarmtypes.UpdateStateUpdating:
		m.setUpdateState(s, swarmtypes.UpdateStateCompleted, "update completed")
	case swarmtypes.UpdateStateRollbackStarted:
		m.setUpdateState(s, swarmtypes.UpdateStateRollbackCompleted, "rollback completed")
	default:
		return
	}
	m.replaceTasks(s)
}

// replaceTasks is the end of an update for the tasks the test placed: those Swarm wants
// running now run the service's spec (kept in place: the same IDs, a new version).
func (m *Swarm) replaceTasks(s *service) {
	for _, t := range m.tasks {
		if t.ServiceID == s.ID && t.DesiredState == swarmtypes.TaskStateRunning && !sameJSON(t.Spec, s.Spec.TaskTemplate) {
			t.Version, t.UpdatedAt = m.nextVersion()
			t.Spec = clone(s.Spec.TaskTemplate)
		}
	}
}

// afterWrite runs, under the lock, after every successful port write.
func (m *Swarm) afterWrite() {
	if !m.AutoConverge {
		return
	}
	for _, s := range m.services {
		m.converge(s)
	}
	m.evacuateDrained()
}

// AddTask places a task of the service on the node, in the given state, desired
// running, with the next slot of a replicated service (0 for a global one).
func (m *Swarm) AddTask(serviceName, nodeHostname string, state swarmtypes.TaskState) swarmtypes.Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.mustService(serviceName)
	n := m.mustNode(nodeHostname)
	t := &swarmtypes.Task{ID: m.newID("task"), ServiceID: s.ID, NodeID: n.ID, DesiredState: swarmtypes.TaskStateRunning}
	t.Version, t.CreatedAt = m.nextVersion()
	t.UpdatedAt = t.CreatedAt
	t.Spec = clone(s.Spec.TaskTemplate)
	t.Status = swarmtypes.TaskStatus{State: state, Timestamp: t.CreatedAt, Message: string(state)}
	if s.Spec.Mode.Global == nil {
		for _, o := range m.tasks {
			if o.ServiceID == s.ID && o.Slot > t.Slot {
				t.Slot = o.Slot
			}
		}
		t.Slot++
	}
	m.tasks = append(m.tasks, t)
	return clone(*t)
}

func (m *Swarm) mustTask(id string) *swarmtypes.Task {
	i := slices.IndexFunc(m.tasks, func(t *swarmtypes.Task) bool { return t.ID == id })
	if i < 0 {
		panic(fmt.Sprintf("memswarm: no task %s", id))
	}
	return m.tasks[i]
}

// SetTaskState sets a task's state and error (e.g. failed, "task: non-zero exit (1)").
func (m *Swarm) SetTaskState(taskID string, state swarmtypes.TaskState, errMsg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.mustTask(taskID)
	t.Version, t.UpdatedAt = m.nextVersion()
	t.Status.State, t.Status.Err, t.Status.Message, t.Status.Timestamp = state, errMsg, string(state), t.UpdatedAt
}

// SetTaskDesiredState sets what Swarm wants of a task (e.g. shutdown when it replaces it).
func (m *Swarm) SetTaskDesiredState(taskID string, state swarmtypes.TaskState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.mustTask(taskID)
	t.Version, t.UpdatedAt = m.nextVersion()
	t.DesiredState = state
}

// EvacuateDrained plays Swarm's reaction to a drain: the tasks of every drained node
// that should still run get desired state shutdown and stop. Until then a drain is
// visibly in progress. Replacements elsewhere are the test's to add.
func (m *Swarm) EvacuateDrained() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evacuateDrained()
}

func (m *Swarm) evacuateDrained() {
	drained := map[string]bool{}
	for _, n := range m.nodes {
		drained[n.ID] = n.Spec.Availability == swarmtypes.NodeAvailabilityDrain
	}
	for _, t := range m.tasks {
		if !drained[t.NodeID] || t.DesiredState != swarmtypes.TaskStateRunning {
			continue
		}
		t.Version, t.UpdatedAt = m.nextVersion()
		t.DesiredState = swarmtypes.TaskStateShutdown
		if !swarm.TaskEnded(t.Status.State) {
			t.Status.State, t.Status.Message, t.Status.Timestamp = swarmtypes.TaskStateShutdown, "shutdown", t.UpdatedAt
		}
	}
}

// SecretData is the data the secret of that name was created with: a test's view of
// what reached the Swarm, which Swarm itself never gives back.
func (m *Swarm) SecretData(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.secretData[name]
	return d, ok
}
