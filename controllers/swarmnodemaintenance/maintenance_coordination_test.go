package swarmnodemaintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// A maintenance and the rollouts of the SwarmStacks on its cluster, on the in-memory
// swarm.

// rollingStack puts a SwarmStack of cluster prod in the API whose newest rollout is
// Progressing since startedAt.
func (w *maintenanceWorld) rollingStack(name string, startedAt time.Time) *swarmv1.SwarmStack {
	w.t.Helper()
	s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: swarmv1.SwarmStackSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "prod"}}}
	w.env.Create(s)
	s.Status.History = []swarmv1.HistoryEntry{{Revision: "sha256:abc", StartedAt: metav1.NewTime(startedAt), Outcome: swarmv1.OutcomeProgressing}}
	if err := w.env.Client.Status().Update(context.Background(), s); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// finishRollout marks the stack's rollout Completed.
func (w *maintenanceWorld) finishRollout(s *swarmv1.SwarmStack) {
	w.t.Helper()
	w.env.Get(s)
	s.Status.History[0].Outcome = swarmv1.OutcomeCompleted
	if err := w.env.Client.Status().Update(context.Background(), s); err != nil {
		w.t.Fatal(err)
	}
}

func reconcilingOf(m *swarmv1.SwarmNodeMaintenance) string {
	if c := meta.FindStatusCondition(m.Status.Conditions, swarmv1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason + ": " + c.Message
	}
	return ""
}

func TestMaintenanceWaitsForARolloutThatStartedFirst(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	s := w.rollingStack("numbers", w.env.Clock.Now().Add(-time.Minute))
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
	w.runFor(time.Minute)
	got := w.get(m)
	if w.availability("w1") != avActive || len(heldNodes(got.Status.Nodes)) > 0 {
		t.Fatalf("drained under a rollout: %s", describeEntries(got.Status.Nodes))
	}
	if got.Status.Phase != swarmv1.PhasePending || !strings.HasPrefix(reconcilingOf(got), swarmv1.ReasonRolloutInProgress) ||
		!strings.Contains(reconcilingOf(got), "unit/numbers") {
		t.Fatalf("want Pending, RolloutInProgress naming unit/numbers; got %s, %s", got.Status.Phase, reconcilingOf(got))
	}
	if len(got.Status.WaitingOn) != 1 || !strings.HasPrefix(got.Status.WaitingOn[0], "unit/numbers") || got.Status.WaitingSince == nil {
		t.Fatalf("status does not say whom it waits on: %v since %v", got.Status.WaitingOn, got.Status.WaitingSince)
	}
	w.finishRollout(s)
	w.runFor(10 * time.Second)
	got = w.get(m)
	if w.availability("w1") != avDrain || got.Status.Phase != swarmv1.PhaseInMaintenance {
		t.Fatalf("after the rollout: w1 %s, phase %s: %s", w.availability("w1"), got.Status.Phase, describeEntries(got.Status.Nodes))
	}
	if len(got.Status.WaitingOn) > 0 || got.Status.WaitingSince != nil {
		t.Fatalf("still says it waits: %v", got.Status.WaitingOn)
	}
}

func TestMaintenanceRolloutWaitTimeout(t *testing.T) {
	cases := map[string]struct {
		policy    string
		wantAv    string
		wantPhase string
	}{
		"Proceed drains after the timeout": {policy: "", wantAv: string(avDrain), wantPhase: swarmv1.PhaseInMaintenance},
		"Block stays blocked":              {policy: swarmv1.OnRolloutWaitTimeoutBlock, wantAv: string(avActive), wantPhase: swarmv1.PhaseBlocked},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newMaintenanceWorld(t, "m1", "w1", "w2")
			w.rollingStack("numbers", w.env.Clock.Now())
			m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"},
				RolloutWaitTimeout: &metav1.Duration{Duration: 5 * time.Minute}, OnRolloutWaitTimeout: tc.policy})
			w.runFor(4 * time.Minute)
			if w.availability("w1") != avActive {
				t.Fatal("drained before the timeout")
			}
			w.runFor(2 * time.Minute)
			got := w.get(m)
			if string(w.availability("w1")) != tc.wantAv || got.Status.Phase != tc.wantPhase {
				t.Fatalf("after the timeout: w1 %s, phase %s (%s)", w.availability("w1"), got.Status.Phase, readyReason(got))
			}
			events := w.env.Events()
			if tc.policy == "" && !testenv.HasEvent(events, swarmv1.ReasonRolloutWaitTimeout) {
				t.Fatalf("no event says it drains anyway: %v", events)
			}
			if tc.policy != "" && readyReason(got) != "False/"+swarmv1.ReasonRolloutWaitTimeout {
				t.Fatalf("Ready %s", readyReason(got))
			}
		})
	}
}

func TestMaintenanceDoesNotWaitForARolloutThatStartedAfterItsDrain(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
	w.runFor(10 * time.Second)
	if w.availability("w1") != avDrain {
		t.Fatal("w1 not drained")
	}
	// A stack that does not wait for maintenances rolls out during the window; then a
	// second node joins the maintenance: the drain started first and goes on.
	w.rollingStack("numbers", w.env.Clock.Now())
	w.env.Mutate(m, func() { m.Spec.Nodes = []string{"w1", "w2"}; m.Spec.MaxConcurrent = 2 })
	w.runFor(10 * time.Second)
	got := w.get(m)
	if w.availability("w2") != avDrain || len(got.Status.WaitingOn) > 0 {
		t.Fatalf("w2 %s, waiting on %v: %s", w.availability("w2"), got.Status.WaitingOn, describeEntries(got.Status.Nodes))
	}
}

func TestMaintenanceThatOptsOutDrainsDuringARollout(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1")
	w.rollingStack("numbers", w.env.Clock.Now().Add(-time.Minute))
	no := false
	w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, WaitForRollouts: &no})
	w.runFor(10 * time.Second)
	if w.availability("w1") != avDrain {
		t.Fatal("an opted-out maintenance waited for a rollout")
	}
}

func TestMaintenanceIgnoresRolloutsOnOtherClusters(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1")
	s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}, Spec: swarmv1.SwarmStackSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "staging"}}}
	w.env.Create(s)
	s.Status.History = []swarmv1.HistoryEntry{{Revision: "sha256:abc", StartedAt: metav1.NewTime(w.env.Clock.Now()), Outcome: swarmv1.OutcomeProgressing}}
	if err := w.env.Client.Status().Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
	w.runFor(10 * time.Second)
	if w.availability("w1") != avDrain {
		t.Fatal("waited for a rollout on another cluster")
	}
}

// A node recorded (not yet written) while another is already drained does not move the
// drain's start to now: a rollout that began after the first drain is no reason to wait.
func TestMaintenanceWithAPendingNodeKeepsItsFirstDrainAsItsStart(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2", "w3")
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
	w.runFor(10 * time.Second)
	if w.availability("w1") != avDrain {
		t.Fatal("w1 not drained")
	}
	w.env.Mutate(m, func() { m.Spec.Nodes = []string{"w1", "w2", "w3"}; m.Spec.MaxConcurrent = 2 })
	w.step() // records w2: its write is pending
	w.env.Clock.Advance(100 * time.Millisecond)
	w.rollingStack("numbers", w.env.Clock.Now()) // after the first drain, before w2's write
	w.env.Clock.Advance(100 * time.Millisecond)
	w.step()
	if got := w.get(m); len(got.Status.WaitingOn) > 0 {
		t.Fatalf("waits on a rollout that started after its first drain: %v: %s", got.Status.WaitingOn, describeEntries(got.Status.Nodes))
	}
}

// A maintenance whose selection or window fails takes no node, so it waits for
// nothing: status must not go on naming the rollouts it waited for before.
func TestMaintenanceWhoseSelectionFailsNoLongerSaysItWaits(t *testing.T) {
	cases := map[string]struct {
		reason string
		spoil  func(m *swarmv1.SwarmNodeMaintenance)
	}{
		"a node named in spec.nodes is not in the swarm": {swarmv1.ReasonUnknownNode, func(m *swarmv1.SwarmNodeMaintenance) {
			m.Spec.Nodes = []string{"w1", "gone"}
		}},
		"the window cannot be read": {swarmv1.ReasonInvalidWindow, func(m *swarmv1.SwarmNodeMaintenance) {
			m.Spec.Window = &swarmv1.MaintenanceWindow{Schedule: "0 2 * * *"} // no duration
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newMaintenanceWorld(t, "m1", "w1", "w2")
			w.rollingStack("numbers", w.env.Clock.Now().Add(-time.Minute))
			m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
			w.runFor(time.Minute)
			if got := w.get(m); len(got.Status.WaitingOn) == 0 {
				t.Fatal("not waiting for the rollout")
			}
			w.env.Mutate(m, func() { tc.spoil(m) })
			w.runFor(10 * time.Second)
			got := w.get(m)
			if readyReason(got) != "False/"+tc.reason {
				t.Fatalf("Ready %s", readyReason(got))
			}
			if len(got.Status.WaitingOn) > 0 || got.Status.WaitingSince != nil {
				t.Fatalf("a stalled maintenance still says it waits on %v since %v", got.Status.WaitingOn, got.Status.WaitingSince)
			}
		})
	}
}

// The rollout wait counts from when it began: a pass that cannot list the stacks knows
// nothing new and must not restart the clock of rolloutWaitTimeout.
func TestMaintenanceRolloutWaitKeepsItsStartThroughAFailedStackList(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	w.rollingStack("numbers", w.env.Clock.Now().Add(-time.Minute))
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, RolloutWaitTimeout: &metav1.Duration{Duration: 5 * time.Minute}})
	w.runFor(2 * time.Minute)
	began := w.get(m).Status.WaitingSince
	if began == nil {
		t.Fatal("not waiting for the rollout")
	}
	lists := &testenv.StackLists{Client: w.cache, Err: errors.New("injected: the cache is not synced")}
	w.rec.Client = lists
	w.step()
	lists.Err = nil
	w.env.Clock.Advance(time.Second)
	w.step()
	if got := w.get(m).Status.WaitingSince; got == nil || !got.Equal(began) {
		t.Fatalf("the wait began at %v, and after a failed list at %v", began, got)
	}
	w.runUntil(began.Add(5*time.Minute+time.Second), nil)
	if w.availability("w1") != avDrain {
		t.Fatalf("w1 %s once rolloutWaitTimeout has passed since the wait began", w.availability("w1"))
	}
}

// A maintenance reads the stacks of its cluster only, however many others the namespace
// holds.
func TestMaintenanceReadsTheStacksOfItsClusterOnly(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1")
	w.rollingStack("numbers", w.env.Clock.Now().Add(-time.Minute))
	for i := range 50 {
		w.env.Create(&swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("staging-%d", i)},
			Spec: swarmv1.SwarmStackSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "staging"}}})
	}
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}})
	lists := &testenv.StackLists{Client: w.cache}
	w.rec.Client = lists
	w.step()
	if got := w.get(m); len(got.Status.WaitingOn) != 1 || lists.Read != 1 {
		t.Fatalf("waiting on %v, having read %d stacks; want numbers, read alone", got.Status.WaitingOn, lists.Read)
	}
}
