package swarm

import (
	"bytes"
	"encoding/json"

	"github.com/docker/docker/api/types/swarm"
)

// SameTaskSpec tells whether a task runs the given service task template, as Swarm's
// updater decides which tasks an update must replace. Placement is left out: a task
// whose node still satisfies new constraints keeps running. So is Runtime: Docker
// reports it on a service's template and not on its tasks (the memswarm contract shows
// it on a real Swarm), and it follows from which spec the template holds anyway.
func SameTaskSpec(task, template swarm.TaskSpec) bool {
	task.Placement, template.Placement = nil, nil
	task.Runtime, template.Runtime = "", ""
	a, errA := json.Marshal(task)
	b, errB := json.Marshal(template)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// TaskEnded tells whether a task in that state will not run again.
func TaskEnded(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}
