package swarmstack

import (
	"context"
	"errors"
	"strings"
	"testing"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
)

// stackPolicy makes a stack roll back as one.
func stackPolicy(s *swarmv1.SwarmStack) { s.Spec.RollbackPolicy = swarmv1.RollbackPolicyStack }

// releaseV1 creates the stack at v1 and lets it complete.
func releaseV1(t *testing.T, e *stackEnv, compose string) {
	t.Helper()
	e.sw.AutoConverge = true
	e.createStack("numbers", compose, stackPolicy)
	e.passes("numbers", 3)
	if r := e.ready("numbers"); r.Status != "True" {
		t.Fatalf("v1 not ready: %s", r.Message)
	}
	e.sw.AutoConverge = false
}

func (e *stackEnv) release(compose string) {
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = &compose })
}

// swarmRollsBack plays Swarm's failure_action rollback on one service.
func (e *stackEnv) swarmRollsBack(t *testing.T, name string) {
	t.Helper()
	svc := mustService(t, e.sw, name)
	if err := e.sw.RollbackService(context.Background(), svc.ID, svc.Version); err != nil {
		t.Fatal(err)
	}
	e.sw.SetUpdateState(name, swarmtypes.UpdateStateRollbackCompleted, "rollback completed")
}

func TestStackRollbackPolicyPutsEveryServiceOfAFailedRevisionBack(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.sw.Converge("numbers_web")       // web's update succeeds ...
	e.swarmRollsBack(t, "numbers_api") // ... api's fails and Swarm rolls it back
	e.passes("numbers", 2)
	if a, w := e.image("numbers_api"), e.image("numbers_web"); a != "numbers-api:v1" || w != "numbers-web:v1" {
		t.Fatalf("after the failed release: api=%s web=%s, want both on v1", a, w)
	}
	h := e.stack("numbers").Status.History[0]
	if h.Outcome != swarmv1.OutcomeRolledBack || strings.Join(h.RolledBackServices, ",") != "numbers_api,numbers_web" {
		t.Fatalf("history %+v", h)
	}
	if !strings.Contains(h.Message, "update rolled back") && !strings.Contains(h.Message, "rollback completed") {
		t.Fatalf("history does not say why: %s", h.Message)
	}
	// Nothing is written again by itself.
	before := e.writes()
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	if w := e.sw.Writes()[before:]; len(w) > 0 {
		t.Fatalf("wrote after the stack rollback: %+v", w)
	}
}

func TestStackRollbackPolicyRollsBackAPausedServiceAndTheOthers(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.sw.Converge("numbers_web")
	e.sw.SetUpdateState("numbers_api", swarmtypes.UpdateStatePaused, "update paused due to failure or early termination of task")
	e.passes("numbers", 2)
	if a, w := e.image("numbers_api"), e.image("numbers_web"); a != "numbers-api:v1" || w != "numbers-web:v1" {
		t.Fatalf("api=%s web=%s, want both on v1", a, w)
	}
}

func TestStackRollbackPolicyRemovesAServiceTheRevisionCreated(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.release(strings.Replace(strings.ReplaceAll(twoServices, ":v1", ":v2"), "networks:\n  back: {}", "  extra:\n    image: numbers-web:v2\nnetworks:\n  back: {}", 1))
	e.passes("numbers", 1)
	if _, ok := e.sw.Service("numbers_extra"); !ok {
		t.Fatal("the revision's new service was not created")
	}
	e.sw.Converge("numbers_extra")
	e.sw.Converge("numbers_web")
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	if _, ok := e.sw.Service("numbers_extra"); ok {
		t.Fatal("the service the failed revision created is still there")
	}
	if h := e.stack("numbers").Status.History[0]; !strings.Contains(h.Message, "removed, as the revision created them: numbers_extra") {
		t.Fatalf("history %+v", h)
	}
}

func TestStackRollbackPolicyKeepsAServiceTheRevisionDroppedUntilItCompletes(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	apiOnly := func(tag string) string {
		return "services:\n  api:\n    image: numbers-api:" + tag + "\n    deploy: {replicas: 2}\n    networks: [back]\nnetworks:\n  back: {}\n"
	}
	e.release(apiOnly("v2"))
	e.passes("numbers", 1)
	if _, ok := e.sw.Service("numbers_web"); !ok {
		t.Fatal("a service the revision drops was removed before the revision completed")
	}
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	if w := e.image("numbers_web"); w != "numbers-web:v1" {
		t.Fatalf("after the failed release web runs %q, want numbers-web:v1", w)
	}
	// A good release without web completes: only then does web go.
	e.sw.AutoConverge = true
	e.release(apiOnly("v3"))
	e.passes("numbers", 4)
	if _, ok := e.sw.Service("numbers_web"); ok {
		t.Fatal("web still there after the revision that drops it completed")
	}
}

func TestStackRollbackPolicyLeavesServicesTheRevisionDidNotChange(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.release(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2"))
	e.passes("numbers", 1)
	web := mustService(t, e.sw, "numbers_web")
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	if after := mustService(t, e.sw, "numbers_web"); after.Version.Index != web.Version.Index {
		t.Fatalf("web was written although the revision did not change it")
	}
}

func TestStackRollbackPolicyReportsARefusedRollbackAndDoesNotLoop(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.sw.Converge("numbers_web")
	e.swarmRollsBack(t, "numbers_api")
	e.sw.FailAlways(memswarm.OpRollbackService, errors.New("injected: rollback refused"))
	e.passes("numbers", 1)
	s := e.stack("numbers")
	if h := s.Status.History[0]; h.Outcome != swarmv1.OutcomeRollbackFailed || !strings.Contains(h.Message, "not rolled back: numbers_web") {
		t.Fatalf("history %+v", h)
	}
	if r := e.ready("numbers"); r.Reason != swarmv1.ReasonRollbackFailed {
		t.Fatalf("Ready %s: %s", r.Reason, r.Message)
	}
	calls := 0
	e.passes("numbers", 4)
	for _, c := range e.sw.Calls() {
		if c.Op == memswarm.OpRollbackService {
			calls++
		}
	}
	if calls != 2 { // the test's own (Swarm's rollback of api) and the operator's one try
		t.Fatalf("%d rollback calls, want the operator to try once", calls)
	}
}

// v1 → v2 (api only) → v3 (api and web, fails): web's previous spec carries v1's label,
// not v2's, yet it is what web ran before v3, and web goes back to it.
func TestStackRollbackPolicyRestoresAServiceTheLastReleaseDidNotChange(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.sw.AutoConverge = true
	e.release(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2"))
	e.passes("numbers", 3)
	if s := e.stack("numbers"); s.Status.History[0].Outcome != swarmv1.OutcomeCompleted {
		t.Fatalf("v2 did not complete: %+v", s.Status.History[0])
	}
	e.sw.AutoConverge = false
	v3 := strings.ReplaceAll(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v3"), "numbers-web:v1", "numbers-web:v3")
	e.release(v3)
	e.passes("numbers", 1)
	e.sw.Converge("numbers_web")
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	if a, w := e.image("numbers_api"), e.image("numbers_web"); a != "numbers-api:v2" || w != "numbers-web:v1" {
		t.Fatalf("after the failed v3: api=%s web=%s, want api on v2 and web on v1", a, w)
	}
	h := e.stack("numbers").Status.History[0]
	if h.Outcome != swarmv1.OutcomeRolledBack || strings.Join(h.RolledBackServices, ",") != "numbers_api,numbers_web" {
		t.Fatalf("history %s %v: %s", h.Outcome, h.RolledBackServices, h.Message)
	}
}

// A service written twice during the failed revision (a retry request mid-rollout writes
// every service again: its previous spec is that revision too) is not guessed at: the
// rollback says so.
func TestStackRollbackPolicyRefusesAServiceWrittenTwiceInTheFailedRevision(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Annotations = map[string]string{swarmv1.AnnotationRetry: "1"} })
	e.passes("numbers", 1)
	if prev := mustService(t, e.sw, "numbers_web").PreviousSpec; prev == nil || prev.TaskTemplate.ContainerSpec.Image != "numbers-web:v2" {
		t.Fatalf("the retry did not write web again: previous spec %+v", prev)
	}
	e.sw.Converge("numbers_web")
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	h := e.stack("numbers").Status.History[0]
	if h.Outcome != swarmv1.OutcomeRollbackFailed || !strings.Contains(h.Message, "numbers_web: written more than once") {
		t.Fatalf("history %s: %s", h.Outcome, h.Message)
	}
}

// A fleet's RollbackAll (and a person undoing a bad edit) writes the previous release
// back into the spec after the stack rollback already put it back on the Swarm. That
// revision is in force: the stack says so, instead of the failed release's RolledBack.
func TestSpecBackToTheRevisionSwarmRunsIsReady(t *testing.T) {
	e := newStackEnv(t)
	releaseV1(t, e, twoServices)
	v1 := e.stack("numbers").Status.LastAppliedRevision
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	e.passes("numbers", 1)
	e.sw.Converge("numbers_web")
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	e.sw.ConvergeAll()

	before := e.writes()
	e.release(twoServices)
	e.passes("numbers", 3)
	if w := e.sw.Writes()[before:]; len(w) > 0 {
		t.Errorf("wrote the revision Swarm already runs: %+v", w)
	}
	s := e.stack("numbers")
	if r := e.ready("numbers"); r.Status != "True" || s.Status.LastAppliedRevision != v1 {
		t.Fatalf("spec back on v1, which Swarm runs: Ready=%s %s %q, lastApplied %s want %s", r.Status, r.Reason, r.Message, s.Status.LastAppliedRevision, v1)
	}
}
