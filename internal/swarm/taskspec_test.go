package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestSameTaskSpecLooksPastPlacementAndRuntimeOnly(t *testing.T) {
	template := swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v2"},
		Placement:     &swarm.Placement{Constraints: []string{"node.role==worker"}},
		Runtime:       swarm.RuntimeContainer,
	}
	task := swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v2"}}
	if !SameTaskSpec(task, template) {
		t.Error("a task that differs in placement and runtime only is taken for another spec")
	}
	task.ContainerSpec.Env = []string{"A=1"}
	if SameTaskSpec(task, template) {
		t.Error("a task with another environment is taken for the template")
	}
	forced := template
	forced.ForceUpdate = 1
	if SameTaskSpec(swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "numbers-api:v2"}}, forced) {
		t.Error("a forced update is taken for no change")
	}
}
