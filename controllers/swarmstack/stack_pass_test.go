package swarmstack

// The stack pass decides once, after judging the rollout in flight: the defects of
// issue 22 where a gate, a source, a refused write or a request ended a pass before the
// rollout was judged, each on the in-memory Swarm.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/stack"
)

// writesOf counts the writes of one kind to one service since the index `from`.
func (e *stackEnv) writesOf(op memswarm.Op, service string, from int) int {
	svc, ok := e.sw.Service(service)
	n := 0
	for _, w := range e.sw.Writes()[from:] {
		if w.Op == op && ok && w.Target == svc.ID {
			n++
		}
	}
	return n
}

// swarmRollsBackAPI plays Swarm's updater starting on the writes, failing api's new
// tasks and rolling api back by itself (failure_action rollback) to the end.
func (e *stackEnv) swarmRollsBackAPI() {
	e.sw.StartUpdates()
	e.sw.FailUpdate("numbers_api", "update rolled back due to failure or early termination of task")
	e.sw.Converge("numbers_api")
}

// wantOutcome fails the test unless the newest history entry has that outcome.
func (e *stackEnv) wantOutcome(outcome string) {
	e.t.Helper()
	if h := e.newest(); h.Outcome != outcome {
		e.t.Fatalf("want %s, history %+v", outcome, h)
	}
}

func (e *stackEnv) newest() swarmv1.HistoryEntry {
	e.t.Helper()
	h := e.stack("numbers").Status.History
	if len(h) == 0 {
		e.t.Fatal("no history")
	}
	return h[0]
}

// Demo step 4 under load: Swarm refused part of the revision, rolled back what it took
// while the write was retried, and the retry wrote that service again (the demo saw the
// api "update in progress" after its rollback, then a second rollback).
func TestSwarmRollbackDuringARefusedWriteIsJudgedNotWrittenAgain(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.sw.Fail(memswarm.OpUpdateService, 2, errors.New("injected: manager refused the write"))
	e.passes("numbers", 1)
	if e.image("numbers_api") != "numbers-api:v2" || e.image("numbers_web") != "numbers-web:v1" {
		t.Fatalf("want a partial write, got api=%s web=%s", e.image("numbers_api"), e.image("numbers_web"))
	}
	// Swarm's updater starts on api, its new tasks fail, and failure_action rolls it back.
	e.swarmRollsBackAPI()
	from := len(e.sw.Writes())
	e.passes("numbers", 4)
	if n := e.writesOf(memswarm.OpUpdateService, "numbers_api", from); n != 0 {
		t.Fatalf("api written %d times after Swarm rolled it back: %v", n, e.sw.Writes()[from:])
	}
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("api runs %s", got)
	}
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	if r := e.ready("numbers"); r.Status != metav1.ConditionFalse || r.Reason != swarmv1.ReasonRolledBack {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

// The deadline counts from the write that completed the revision: passes that Swarm
// refused do not spend it.
func TestProgressDeadlineCountsFromTheWriteThatCompletedTheRevision(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		d := int32(60)
		s.Spec.ProgressDeadlineSeconds = &d
		v2 := strings.ReplaceAll(twoServices, ":v1", ":v2")
		s.Spec.Compose.Files[0].Inline = &v2
	})
	e.sw.Fail(memswarm.OpUpdateService, 2, errors.New("injected: manager refused the write"))
	e.passes("numbers", 1)
	// Swarm refuses web for two minutes, twice the deadline.
	e.sw.FailAlways(memswarm.OpUpdateService, errors.New("injected: manager refused the write"))
	for range 8 {
		e.clk.Advance(15 * time.Second)
		_, _ = e.pass("numbers")
	}
	e.sw.Heal()
	e.passes("numbers", 1) // writes web
	if e.image("numbers_web") != "numbers-web:v2" {
		t.Fatalf("web runs %s", e.image("numbers_web"))
	}
	e.passes("numbers", 2)
	if h := e.newest(); h.Outcome != swarmv1.OutcomeProgressing || h.WrittenAt == nil {
		t.Fatalf("the rollout just written is not in progress with its write time: %+v", h)
	}
	if e.image("numbers_web") != "numbers-web:v2" {
		t.Fatal("the deadline rolled back what was just written")
	}
}

// A new revision that a gate holds does not end the rollout in flight: it is judged to
// its end, and withdrawing the held revision leaves the stack on what completed.
func TestRevisionHeldByAGateDoesNotAbandonTheRolloutInFlight(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	v2 := strings.ReplaceAll(twoServices, ":v1", ":v2")
	e.release(v2)
	e.passes("numbers", 1)
	v2Rev := e.newest().Revision
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now().Add(-time.Minute), 24*time.Hour)}
		v3 := strings.ReplaceAll(twoServices, ":v1", ":v3")
		s.Spec.Compose.Files[0].Inline = &v3
	})
	e.passes("numbers", 1)
	if h := e.newest(); h.Revision != v2Rev || h.Outcome != swarmv1.OutcomeProgressing {
		t.Fatalf("the rollout of v2 was given up for a held revision: %+v", h)
	}
	if r := e.ready("numbers"); r.Reason != swarmv1.ReasonProgressing || !strings.Contains(r.Message, "freeze") {
		t.Fatalf("want the rollout's progress and the hold, got %s: %s", r.Reason, r.Message)
	}
	e.sw.ConvergeAll()
	e.passes("numbers", 2)
	if h := e.newest(); h.Revision != v2Rev || h.Outcome != swarmv1.OutcomeCompleted {
		t.Fatalf("want v2 Completed, history %+v", h)
	}
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = &v2 })
	e.passes("numbers", 2)
	s := e.stack("numbers")
	if s.Status.LastAppliedRevision != v2Rev {
		t.Fatalf("lastAppliedRevision %s, want v2's %s", stack.ShortRev(s.Status.LastAppliedRevision), stack.ShortRev(v2Rev))
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

// With rollbackPolicy Stack, a rollout that fails while the next revision is frozen is
// still rolled back as a stack and recorded.
func TestStackRollbackHappensWhileTheNextRevisionIsHeld(t *testing.T) {
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices, func(s *swarmv1.SwarmStack) { s.Spec.RollbackPolicy = swarmv1.RollbackPolicyStack })
	e.passes("numbers", 3)
	e.sw.AutoConverge = false
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now().Add(-time.Minute), 24*time.Hour)}
		v3 := strings.ReplaceAll(twoServices, ":v1", ":v3")
		s.Spec.Compose.Files[0].Inline = &v3
	})
	e.passes("numbers", 1)
	e.swarmRollsBackAPI()
	e.sw.Converge("numbers_web")
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	if w := e.image("numbers_web"); w != "numbers-web:v1" {
		t.Fatalf("web stays on %s after the stack rollback", w)
	}
}

// A source that goes missing during a rollout does not stop its judgement: Swarm's
// rollback is recorded while the ConfigMap is gone.
func TestRolloutIsJudgedWhileItsSourceIsMissing(t *testing.T) {
	e := newStackEnv(t)
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "numbers-compose"}, Data: map[string]string{"c.yml": twoServices}}
	if err := e.c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	e.sw.AutoConverge = true
	e.createStack("numbers", "", func(s *swarmv1.SwarmStack) {
		s.Spec.Compose.Files = []swarmv1.ComposeFile{{Name: "c.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "numbers-compose", Key: "c.yml"}}}
	})
	e.passes("numbers", 3)
	e.sw.AutoConverge = false
	cm.Data["c.yml"] = strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2")
	if err := e.c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	e.passes("numbers", 1)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatal("v2 not written")
	}
	if err := e.c.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	e.swarmRollsBackAPI()
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	if r := e.ready("numbers"); r.Reason != swarmv1.ReasonSourceNotFound {
		t.Fatalf("want SourceNotFound once the rollout is judged, got %s: %s", r.Reason, r.Message)
	}
}

// A requested rollback that Swarm completed did what was asked: its own outcome, and
// Ready=True, not the Stalled RolledBack of a failed release.
func TestRequestedRollbackThatCompletedIsNotReportedAsAFailedRelease(t *testing.T) {
	e := appliedStack(t)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = v2Compose() })
	e.passes("numbers", 3)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Annotations = map[string]string{swarmv1.AnnotationRollback: "1"} })
	e.passes("numbers", 3)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("api runs %s", got)
	}
	e.wantOutcome(swarmv1.OutcomeRolledBackOnRequest)
	s := e.stack("numbers")
	r := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady)
	if r.Status != metav1.ConditionTrue || r.Reason != swarmv1.ReasonRolledBackOnRequest {
		t.Fatalf("Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
	if c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionStalled); c != nil {
		t.Fatalf("Stalled %s: %s", c.Reason, c.Message)
	}
	// And the revision it took back is not written again by itself.
	e.passes("numbers", 3)
	if got := e.image("numbers_api"); got != "numbers-api:v1" {
		t.Fatalf("after more passes api runs %s", got)
	}
}

// A release written through override-freeze is followed and judged like any other:
// when Swarm rolls it back, the conditions say RolledBack, not Frozen.
func TestReleaseWrittenThroughAFreezeOverrideReportsItsOwnOutcome(t *testing.T) {
	e := appliedStack(t)
	e.sw.AutoConverge = false
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Freeze = []swarmv1.TimeWindow{oneOffFreeze(e.clk.Now().Add(-time.Minute), 24*time.Hour)}
		s.Annotations = map[string]string{swarmv1.AnnotationOverrideFreeze: "hotfix-1"}
		s.Spec.Compose.Files[0].Inline = v2Compose()
	})
	e.passes("numbers", 1)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatal("override did not write the revision")
	}
	e.passes("numbers", 1)
	if r := e.ready("numbers"); r.Reason == swarmv1.ReasonFrozen {
		t.Fatalf("the written revision is reported as frozen: %s", r.Message)
	}
	e.swarmRollsBackAPI()
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	if r := e.ready("numbers"); r.Reason != swarmv1.ReasonRolledBack {
		t.Fatalf("want Ready reason RolledBack, got %s: %s", r.Reason, r.Message)
	}
}

// Suspend judges the rollout in flight and writes nothing, however it ends.
func TestSuspendedStackRecordsTheOutcomeOfItsRollout(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Suspend = true })
	from := len(e.sw.Writes())
	e.sw.StartUpdates()
	e.sw.ConvergeAll()
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeCompleted)
	if len(e.sw.Writes()) != from {
		t.Fatalf("a suspended stack wrote: %v", e.sw.Writes()[from:])
	}
	if u := mustService(t, e.sw, "numbers_api").UpdateStatus; u == nil || u.State != swarmtypes.UpdateStateCompleted {
		t.Fatalf("api %+v", u)
	}
}

func TestCapWarningsBoundsCountAndLength(t *testing.T) {
	if capWarnings(nil) != nil {
		t.Errorf("capWarnings(nil) != nil")
	}
	var ws []string
	for i := range 25 {
		ws = append(ws, fmt.Sprint("w", i))
	}
	ws[0] = strings.Repeat("é", 400) // 800 bytes
	got := capWarnings(ws)
	if len(got) != 20 || got[19] != "w19" {
		t.Errorf("CapWarnings kept %d, last %q", len(got), got[len(got)-1])
	}
	if len(got[0]) > 512 || !utf8.ValidString(got[0]) || !strings.HasSuffix(got[0], "...") {
		t.Errorf("long warning: len %d, valid %v", len(got[0]), utf8.ValidString(got[0]))
	}
}

// Seen on a loaded sandbox (TestStackReleaseRoutine, step 4): with a one-second monitor,
// Swarm's updater can miss the failures of start-first tasks that failed their health
// check before it watched them, and mark the update completed while every old task still
// runs (a start-first slot drops its old task only once the new one runs). Later it runs
// the update again and rolls back. Judged on Swarm's word, the release was recorded
// Completed, and Swarm's own rollback was then "corrected" as drift by writing the bad
// revision again.
func TestUpdateSwarmCompletedWhileOldTasksRunIsNotACompletedRelease(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	for range 3 {
		e.sw.AddTask("numbers_api", "worker1", swarmtypes.TaskStateRunning)
	}
	from := len(e.sw.Writes())
	e.release(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2"))
	e.passes("numbers", 1)
	e.sw.Converge("numbers_web")
	// The updater's word without the tasks: completed, the v1 tasks still run.
	e.sw.SetUpdateState("numbers_api", swarmtypes.UpdateStateCompleted, "update completed")
	e.passes("numbers", 3)
	if h := e.newest(); h.Outcome != swarmv1.OutcomeProgressing {
		t.Fatalf("Swarm says completed, the old tasks run: history %s %q", h.Outcome, h.Message)
	}
	if r := e.ready("numbers"); !strings.Contains(r.Message, "numbers_api: ") || !strings.Contains(r.Message, "previous spec") {
		t.Errorf("Ready while the old tasks run: %s", r.Message)
	}

	// Swarm runs the update again, sees the failures and rolls back by itself.
	e.sw.FailUpdate("numbers_api", "update rolled back due to failure or early termination of task")
	e.sw.Converge("numbers_api")
	e.passes("numbers", 3)
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	if n := e.writesOf(memswarm.OpUpdateService, "numbers_api", from); n != 1 {
		t.Errorf("api written %d times by the release, want once: Swarm's rollback is no drift to correct", n)
	}
}
