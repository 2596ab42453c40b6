package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// coordCompose is a stack whose rollouts take some seconds (one task at a time, a pause
// between them) and whose "sticky" tasks take long to leave a drained node (they ignore
// their stop signal until the grace period ends), so that both a rollout and a drain
// can be caught under way.
func coordCompose(apiImage string) string {
	return fmt.Sprintf(`services:
  api:
    image: %s
    deploy:
      replicas: 2
      update_config: {parallelism: 1, delay: 4s, monitor: 1s, order: stop-first}
  sticky:
    image: numbers-api:v1
    stop_signal: SIGUSR1
    stop_grace_period: 15s
    deploy:
      mode: global
`, apiImage)
}

// TestCoordinationDrainWaitsForARolloutAndARolloutForADrain: a maintenance created
// while a stack rolls out waits (Pending, RolloutInProgress, naming the stack) and
// drains once the rollout completed; a release written while that drain runs waits
// (MaintenanceInProgress) and goes on by itself when the drain is done.
func TestCoordinationDrainWaitsForARolloutAndARolloutForADrain(t *testing.T) {
	env := newMaintenanceEnv(t, "coord")
	worker, _ := workerNames()
	stack := inlineStack(env.ns, "coord", "coord", coordCompose("numbers-api:v1"))
	create(t, stack)
	t.Cleanup(func() { deleteStack(t, stack) })
	waitReady(t, stack, 2*time.Minute)

	// A slow release, then a maintenance while it runs.
	setCompose(t, stack, coordCompose("numbers-api:v2"))
	eventually(t, time.Minute, "v2 rolling out", func() string {
		get(t, stack)
		if len(stack.Status.History) == 0 || stack.Status.History[0].Outcome != swarmv1.OutcomeProgressing || stack.Status.ObservedGeneration != stack.Generation {
			return describeConditions(stack.Status.Conditions)
		}
		return ""
	})
	m := env.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{
		Nodes: []string{worker}, DrainTimeout: &metav1.Duration{Duration: 2 * time.Minute},
		RolloutWaitTimeout: &metav1.Duration{Duration: 5 * time.Minute},
	})
	waitMaintenance(t, m, 30*time.Second, "the maintenance waits for the rollout", func(m *swarmv1.SwarmNodeMaintenance) string {
		if m.Status.Phase != swarmv1.PhasePending || readyIs(m, metav1.ConditionFalse, swarmv1.ReasonRolloutInProgress) != "" ||
			len(m.Status.WaitingOn) != 1 || !strings.HasPrefix(m.Status.WaitingOn[0], env.ns+"/coord") {
			return fmt.Sprintf("waitingOn %v", m.Status.WaitingOn)
		}
		return ""
	})
	get(t, stack)
	if h := stack.Status.History[0]; h.Outcome != swarmv1.OutcomeProgressing {
		t.Logf("note: the rollout ended (%s) before the check; the wait was still seen", h.Outcome)
	}
	if a := env.availability(worker); a != swarm.NodeAvailabilityActive {
		t.Fatalf("%s is %s while the rollout runs", worker, a)
	}

	// The rollout completes; the drain starts and is slow (sticky tasks).
	waitReady(t, stack, 2*time.Minute)
	waitMaintenance(t, m, 30*time.Second, "draining after the rollout", func(m *swarmv1.SwarmNodeMaintenance) string {
		if m.Status.Phase != swarmv1.PhaseDraining {
			return "not draining"
		}
		return ""
	})

	// A release during the drain waits for it, and goes on by itself after it.
	setCompose(t, stack, coordCompose("numbers-api:v3"))
	c := waitReason(t, stack, swarmv1.ReasonMaintenanceInProgress, 20*time.Second)
	if !strings.Contains(c.Message, "SwarmNodeMaintenance kernel") {
		t.Fatalf("the held release does not name the maintenance: %s", c.Message)
	}
	if img := swarmImage(t, "coord_api"); img != "numbers-api:v2" {
		t.Fatalf("written during the drain: api runs %s", img)
	}
	waitMaintenance(t, m, time.Minute, "the worker in maintenance", func(m *swarmv1.SwarmNodeMaintenance) string {
		return readyIs(m, metav1.ConditionTrue, swarmv1.ReasonNodesInMaintenance)
	})
	waitReady(t, stack, 2*time.Minute)
	if img := swarmImage(t, "coord_api"); img != "numbers-api:v3" {
		t.Fatalf("after the drain: api runs %s", img)
	}
}

// TestCoordinationFrozenRevisionAppliedWhenTheWindowEnds: a release written during a
// freeze waits (Frozen, the window's end in the message) and is applied when it ends.
func TestCoordinationFrozenRevisionAppliedWhenTheWindowEnds(t *testing.T) {
	ns, _ := newNamespace(t, "freeze")
	compose := func(img string) string {
		return fmt.Sprintf("services:\n  api:\n    image: %s\n    deploy: {replicas: 1, update_config: {monitor: 1s}}\n", img)
	}
	stack := inlineStack(ns, "frozen", "frozen", compose("numbers-api:v1"))
	create(t, stack)
	t.Cleanup(func() { deleteStack(t, stack) })
	waitReady(t, stack, 2*time.Minute)

	start := metav1.NewTime(time.Now().Add(-time.Second).Truncate(time.Second))
	end := start.Add(15 * time.Second)
	setCompose(t, stack, compose("numbers-api:v2"), func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{{Start: &start, Duration: metav1.Duration{Duration: 15 * time.Second}}}
	})
	c := waitReason(t, stack, swarmv1.ReasonFrozen, 10*time.Second)
	if !strings.Contains(c.Message, end.UTC().Format(time.RFC3339)) {
		t.Fatalf("the message does not give the window's end %s: %s", end.UTC().Format(time.RFC3339), c.Message)
	}
	if img := swarmImage(t, "frozen_api"); img != "numbers-api:v1" {
		t.Fatalf("written during the freeze: %s", img)
	}
	waitReady(t, stack, time.Until(end)+time.Minute)
	if time.Now().Before(end) {
		t.Fatalf("applied before the window's end %s", end)
	}
	if img := swarmImage(t, "frozen_api"); img != "numbers-api:v2" {
		t.Fatalf("after the freeze: %s", img)
	}
}

// TestCoordinationRebalanceSpreadsTasksBack: after a window with spec.rebalance, the
// drained worker, back and empty while the others run its tasks, gets tasks again: the
// uneven service was force-updated and status.rebalance names it.
func TestCoordinationRebalanceSpreadsTasksBack(t *testing.T) {
	env := newMaintenanceEnv(t, "rebalance")
	worker, _ := workerNames()
	replicas := len(bed.Swarm.Workers()) + len(bed.Swarm.Managers())
	stack := inlineStack(env.ns, "spread", "spread", fmt.Sprintf(`services:
  api:
    image: numbers-api:v1
    deploy:
      replicas: %d
      update_config: {parallelism: 2, delay: 0s, monitor: 1s}
`, replicas))
	create(t, stack)
	t.Cleanup(func() { deleteStack(t, stack) })
	waitReady(t, stack, 2*time.Minute)
	const svc = "spread_api"
	workerID := env.node(worker).ID

	start := metav1.NewTime(clock.Now())
	m := env.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{
		Nodes: []string{worker}, Rebalance: true,
		Window: &swarmv1.MaintenanceWindow{Start: &start, Duration: metav1.Duration{Duration: 20 * time.Second}},
	})
	waitMaintenance(t, m, time.Minute, "the worker in maintenance", func(m *swarmv1.SwarmNodeMaintenance) string {
		return readyIs(m, metav1.ConditionTrue, swarmv1.ReasonNodesInMaintenance)
	})
	env.waitRunning(svc, replicas)
	if on, err := env.runningTasks(svc); err != nil || on[workerID] != 0 {
		t.Fatalf("tasks on the drained worker: %v (%v)", on, err)
	}
	waitMaintenance(t, m, 2*time.Minute, "rebalanced after the window", func(m *swarmv1.SwarmNodeMaintenance) string {
		if rb := m.Status.Rebalance; rb == nil || rb.FinishedAt == nil || !slices.Contains(rb.Services, svc) {
			return fmt.Sprintf("rebalance %+v", m.Status.Rebalance)
		}
		return ""
	})
	eventually(t, time.Minute, "tasks on the worker again", func() string {
		on, err := env.runningTasks(svc)
		if err != nil {
			return err.Error()
		}
		if on[workerID] == 0 || total(on) != replicas {
			return fmt.Sprintf("running per node %v", on)
		}
		return ""
	})
}
