package memswarm

import (
	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/swarmops/swarm-operator/internal/swarm"
)

// Jobs (replicated-job, global-job) as Swarm runs them (contract_test, scenario Jobs):
// every write of a job service, its creation, an update or a rollback, starts a new run.
// The run's iteration (JobStatus.JobIteration) counts the runs: 0 for the first, one
// more on each write (not a version); its tasks carry it and want to complete, and a
// failed task is no longer wanted (desired state shutdown). A replicated job runs TotalCompletions tasks (1 when unset), a
// global job one per active ready node (one without nodes). Tasks start pending; the
// test ends the run with CompleteJob or FailJob (or Converge). Concurrency limits and
// restarts of failed tasks are not modelled: FailJob is a run whose restarts ran out.

func isJob(spec swarmtypes.ServiceSpec) bool {
	return spec.Mode.ReplicatedJob != nil || spec.Mode.GlobalJob != nil
}

// runJob starts a new run of a job service just written; other services are left
// alone. Tasks of earlier runs stay as they ended, or are shut down.
func (m *Swarm) runJob(s *service) {
	if !isJob(s.Spec) {
		return
	}
	var iteration swarmtypes.Version
	if s.JobStatus != nil {
		iteration.Index = s.JobStatus.JobIteration.Index + 1
	}
	s.JobStatus = &swarmtypes.JobStatus{JobIteration: iteration, LastExecution: s.UpdatedAt}
	for _, t := range m.tasks {
		if t.ServiceID == s.ID && !swarm.TaskEnded(t.Status.State) {
			t.DesiredState = swarmtypes.TaskStateShutdown
			t.Status.State, t.Status.Message = swarmtypes.TaskStateShutdown, "shutdown"
		}
	}
	var nodes []string
	if s.Spec.Mode.GlobalJob != nil {
		for _, h := range sortedKeys(m.nodes) {
			if n := m.nodes[h]; n.Spec.Availability == swarmtypes.NodeAvailabilityActive && n.Status.State == swarmtypes.NodeStateReady {
				nodes = append(nodes, n.ID)
			}
		}
	} else {
		total := uint64(1)
		if rj := s.Spec.Mode.ReplicatedJob; rj.TotalCompletions != nil {
			total = *rj.TotalCompletions
		}
		for range total {
			nodes = append(nodes, "")
		}
	}
	if len(nodes) == 0 && s.Spec.Mode.GlobalJob != nil {
		nodes = []string{""}
	}
	for i, node := range nodes {
		t := &swarmtypes.Task{ID: m.newID("task"), ServiceID: s.ID, NodeID: node, DesiredState: swarmtypes.TaskStateComplete,
			JobIteration: &iteration}
		t.Version, t.CreatedAt = m.nextVersion()
		t.UpdatedAt = t.CreatedAt
		t.Spec = clone(s.Spec.TaskTemplate)
		t.Status = swarmtypes.TaskStatus{State: swarmtypes.TaskStatePending, Timestamp: t.CreatedAt, Message: "pending"}
		if s.Spec.Mode.GlobalJob == nil {
			t.Slot = i + 1
		}
		m.tasks = append(m.tasks, t)
	}
}

// jobTasks counts the tasks of the job's current run in the state.
func (m *Swarm) jobTasks(s *service, state swarmtypes.TaskState) uint64 {
	var n uint64
	for _, t := range m.tasks {
		if t.ServiceID == s.ID && t.Status.State == state && t.JobIteration != nil && s.JobStatus != nil &&
			t.JobIteration.Index == s.JobStatus.JobIteration.Index {
			n++
		}
	}
	return n
}

// CompleteJob ends the job's current run: its tasks that have not ended complete.
func (m *Swarm) CompleteJob(serviceName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endJob(m.mustService(serviceName), swarmtypes.TaskStateComplete, "")
}

// FailJob ends the job's current run in failure: its tasks that have not ended fail
// with errMsg (e.g. "task: non-zero exit (1)"), and no task replaces them.
func (m *Swarm) FailJob(serviceName, errMsg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endJob(m.mustService(serviceName), swarmtypes.TaskStateFailed, errMsg)
}

func (m *Swarm) endJob(s *service, state swarmtypes.TaskState, errMsg string) {
	if s.JobStatus == nil {
		panic("memswarm: " + s.Spec.Name + " is not a job")
	}
	for _, t := range m.tasks {
		if t.ServiceID != s.ID || swarm.TaskEnded(t.Status.State) || t.JobIteration == nil || t.JobIteration.Index != s.JobStatus.JobIteration.Index {
			continue
		}
		t.Version, t.UpdatedAt = m.nextVersion()
		t.Status.State, t.Status.Err, t.Status.Message, t.Status.Timestamp = state, errMsg, string(state), t.UpdatedAt
		if state == swarmtypes.TaskStateFailed {
			t.DesiredState = swarmtypes.TaskStateShutdown
		}
	}
}
