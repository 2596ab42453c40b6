package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	ctrl "sigs.k8s.io/controller-runtime"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// Two operator instances with leader election against the same API server, as two
// replicas of the Deployment: only the leader acts, and when it dies mid-way the other
// takes over from what the status says, without doing anything twice.

// haPair stops the suite's operator (started again at cleanup) and starts two
// instances campaigning for one Lease; the first is the leader when haPair returns.
// Register cleanups that need an operator (deleting stacks, maintenances) after calling
// haPair: they then run while the surviving instance still leads.
func haPair(t *testing.T, lease string) (leader, standby *testbed.Operator) {
	t.Helper()
	stopOperator()
	t.Cleanup(startOperator)
	start := func(id string) *testbed.Operator {
		op, err := bed.StartOperatorWith(operatorOptions(), testbed.OperatorOptions{
			Logger:         ctrl.Log.WithName("ha-" + id),
			LeaderElection: &testbed.LeaderElection{ID: lease, Namespace: "default", LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(op.Stop)
		return op
	}
	leader = start("a")
	select {
	case <-leader.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("the first instance did not become leader within 30s")
	}
	standby = start("b")
	select {
	case <-standby.Elected():
		t.Fatal("the second instance leads while the first holds the Lease")
	case <-time.After(3 * time.Second):
	}
	return leader, standby
}

// killLeader stops the leader as a crash would (the Lease is not handed over) and
// waits for the standby to take over; it returns how long that took.
func killLeader(t *testing.T, leader, standby *testbed.Operator) time.Duration {
	t.Helper()
	killed := time.Now()
	leader.Stop()
	select {
	case <-standby.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not take over within 30s of the leader's death")
	}
	took := time.Since(killed)
	t.Logf("standby took over %s after the leader died", took.Round(100*time.Millisecond))
	return took
}

// eventCount sums the counts of the namespace's events with the reason whose message
// contains fragment (repeated events are folded into one with a count).
func eventCount(t *testing.T, ns, reason, fragment string) int {
	t.Helper()
	n := 0
	for _, e := range eventsSince(t, ns, reason, time.Time{}) {
		if strings.Contains(e.Message, fragment) {
			n += max(int(e.Count), 1)
		}
	}
	return n
}

func haStack(tag string) string {
	return fmt.Sprintf(`services:
  api:
    image: numbers-api:%s
    deploy:
      replicas: 2
      update_config: {parallelism: 1, monitor: 10s}
`, tag)
}

// TestHALeaderDiesMidRollout: the leader writes a slow update (two tasks, one at a time,
// 10s monitor each) and dies while Swarm rolls it; the standby takes over, follows the
// same rollout to its end and records it once, without writing the service again.
func TestHALeaderDiesMidRollout(t *testing.T) {
	ns, cluster := newNamespace(t, "ha-rollout")
	leader, standby := haPair(t, "swarm-operator-ha-"+ns)
	eventually(t, 30*time.Second, "cluster Ready", clusterReady(t, cluster, nil))
	s := inlineStack(ns, "ha", "ha", haStack("v1"))
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	waitReady(t, s, 2*time.Minute)
	get(t, s)
	v1 := s.Status.LastAppliedRevision

	setCompose(t, s, haStack("v2"))
	var rev string
	eventually(t, 30*time.Second, "the v2 rollout in flight", func() string {
		get(t, s)
		if len(s.Status.History) == 0 {
			return "no history"
		}
		h := s.Status.History[0]
		if h.Revision == v1 || h.Outcome != swarmv1.OutcomeProgressing {
			return fmt.Sprintf("history[0] %s %s", shortRevision(h.Revision), h.Outcome)
		}
		rev = h.Revision
		return ""
	})
	var writeID string
	eventually(t, 10*time.Second, "Swarm updating ha_api", func() string {
		mid, _ := inspectService(t, "ha_api")
		if mid.Spec.Labels[swarmv1.LabelRevision] != rev || mid.UpdateStatus == nil || mid.UpdateStatus.State != swarmtypes.UpdateStateUpdating {
			return fmt.Sprintf("revision %s, update status %+v", mid.Spec.Labels[swarmv1.LabelRevision], mid.UpdateStatus)
		}
		writeID = mid.Spec.Labels[swarmv1.LabelWriteID]
		return ""
	})

	killLeader(t, leader, standby)
	eventually(t, 2*time.Minute, "the rollout completed under the new leader", func() string {
		get(t, s)
		h := s.Status.History[0]
		if h.Revision != rev || h.Outcome != swarmv1.OutcomeCompleted {
			return fmt.Sprintf("history[0] %s %s %q; %s", shortRevision(h.Revision), h.Outcome, h.Message, describeConditions(s.Status.Conditions))
		}
		return ""
	})
	waitReady(t, s, 30*time.Second)

	entries := 0
	for _, h := range s.Status.History {
		if h.Revision == rev {
			entries++
			if h.Outcome != swarmv1.OutcomeCompleted || h.FinishedAt == nil {
				t.Errorf("history entry of the revision: %+v", h)
			}
		}
	}
	if entries != 1 {
		t.Errorf("%d history entries for revision %s, want 1: %+v", entries, shortRevision(rev), s.Status.History)
	}
	if s.Status.LastAppliedRevision != rev || s.Status.LastAttemptedRevision != rev {
		t.Errorf("lastApplied %s lastAttempted %s, want %s", s.Status.LastAppliedRevision, s.Status.LastAttemptedRevision, rev)
	}
	// One write: the service carries the write the old leader made, and its previous
	// spec is v1's (a second write would have made v2 the previous spec).
	end, _ := inspectService(t, "ha_api")
	if got := end.Spec.Labels[swarmv1.LabelWriteID]; got != writeID {
		t.Errorf("ha_api was written again after the takeover: write-id %s, the old leader wrote %s", got, writeID)
	}
	if end.PreviousSpec == nil || end.PreviousSpec.Labels[swarmv1.LabelRevision] != v1 {
		t.Errorf("ha_api's previous spec is not v1's: %v", end.PreviousSpec)
	}
	if end.UpdateStatus == nil || end.UpdateStatus.State != swarmtypes.UpdateStateCompleted {
		t.Errorf("ha_api update status %+v", end.UpdateStatus)
	}
	short := shortRevision(rev)
	if n := eventCount(t, ns, "RolloutStarted", short); n != 1 {
		t.Errorf("%d RolloutStarted events for %s, want 1", n, short)
	}
	eventually(t, 10*time.Second, "one RolloutCompleted event", func() string {
		if n := eventCount(t, ns, "RolloutCompleted", short); n != 1 {
			return fmt.Sprintf("%d RolloutCompleted events for %s", n, short)
		}
		return ""
	})
}

// TestHALeaderDiesMidMaintenanceWindow: the leader drains a worker for a window that
// ends soon and dies inside it; the standby, which never saw the drain, puts the node
// back when the window ends, from what the status recorded.
func TestHALeaderDiesMidMaintenanceWindow(t *testing.T) {
	e := newMaintenanceEnv(t, "ha-maint")
	_, worker := workerNames()
	leader, standby := haPair(t, "swarm-operator-ha-"+e.ns)
	eventually(t, 30*time.Second, "cluster Ready", clusterReady(t, e.cluster, nil))
	e.createService("ha-maint-api", 3, nil)
	e.waitRunning("ha-maint-api", 3)

	// The window (on the suite's clock) opened a minute ago and closes in 40s.
	start := clock.Now().Add(-time.Minute).Truncate(time.Second)
	end := clock.Now().Add(40 * time.Second).Truncate(time.Second)
	m := e.create("ha-window", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{worker}, Window: oneOff(start, end.Sub(start))})
	waitMaintenance(t, m, time.Minute, "the worker in maintenance", phaseWithNodes(swarmv1.PhaseInMaintenance, map[string]string{worker: "active"}))
	e.wantAvailability(map[string]swarmtypes.NodeAvailability{worker: swarmtypes.NodeAvailabilityDrain})
	if clock.Now().After(end.Add(-10 * time.Second)) {
		t.Fatalf("draining took until %s, too close to the window's end %s to test a takeover inside it", clock.Now(), end)
	}

	killLeader(t, leader, standby)
	if !clock.Now().Before(end) {
		t.Fatal("the takeover ended after the window")
	}
	waitMaintenance(t, m, end.Sub(clock.Now())+30*time.Second, "completed with the worker restored by the new leader",
		phaseWithNodes(swarmv1.PhaseCompleted, map[string]string{worker: "active"}))
	e.wantAvailability(map[string]swarmtypes.NodeAvailability{worker: swarmtypes.NodeAvailabilityActive})
	n := nodeStatus(m, worker)
	if n.RestoredAt.Time.Before(end) {
		t.Errorf("restored at %s, before the window's end %s", n.RestoredAt.Time, end)
	}
	if late := n.RestoredAt.Sub(end); late > 15*time.Second {
		t.Errorf("restored %s after the window's end", late)
	}
	for reason, want := range map[string]int{"NodeDraining": 1, "NodeRestored": 1} {
		if got := eventCount(t, e.ns, reason, worker); got != want {
			t.Errorf("%d %s events for %s, want %d", got, reason, worker, want)
		}
	}
}

func shortRevision(rev string) string {
	rev = strings.TrimPrefix(rev, "sha256:")
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
