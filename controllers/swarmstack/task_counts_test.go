package swarmstack

import (
	"strings"
	"testing"

	swarmtypes "github.com/docker/docker/api/types/swarm"
)

// TestTaskCountsLeaveOutTasksAnUpdateReplaces: during a start-first update Swarm counts
// the old tasks still running (3/2 here); status counts what docker service ls counts
// and shows the stopping ones apart.
func TestTaskCountsLeaveOutTasksAnUpdateReplaces(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	e.release(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2"))
	e.passes("numbers", 1)
	old := e.sw.AddTask("numbers_api", "worker1", swarmtypes.TaskStateRunning)
	e.sw.SetTaskDesiredState(old.ID, swarmtypes.TaskStateShutdown)
	e.sw.AddTask("numbers_api", "worker1", swarmtypes.TaskStateRunning)
	e.sw.AddTask("numbers_api", "manager1", swarmtypes.TaskStateRunning)
	e.sw.SetRunning("numbers_api", 3) // Swarm's own count: every running task
	e.passes("numbers", 1)
	for _, svc := range e.stack("numbers").Status.Services {
		if svc.Name != "numbers_api" {
			continue
		}
		if svc.RunningTasks != 2 || svc.DesiredTasks != 2 || svc.ShuttingDownTasks != 1 {
			t.Fatalf("api counts %d/%d running, %d shutting down; want 2/2 and 1", svc.RunningTasks, svc.DesiredTasks, svc.ShuttingDownTasks)
		}
		return
	}
	t.Fatal("no status for numbers_api")
}
