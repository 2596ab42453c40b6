package swarmstack

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
)

// migrationStack is the everyday ordered release: a migration job, an api that needs
// the new schema, a web that needs a healthy api.
const migrationStack = `
services:
  migrate:
    image: numbers-migrate:TAG
    deploy: {mode: replicated-job, restart_policy: {condition: none}}
  api:
    image: numbers-api:TAG
    deploy: {replicas: 2}
    depends_on: {migrate: {condition: service_completed_successfully}}
  web:
    image: numbers-web:TAG
    depends_on:
      api: {condition: service_healthy}
`

func migrationAt(tag string) string { return strings.ReplaceAll(migrationStack, "TAG", tag) }

func dependsOnOrder(s *swarmv1.SwarmStack) { s.Spec.UpdateOrder = swarmv1.UpdateOrderDependsOn }

// releaseOrderedV1 creates the ordered stack at v1 and lets Swarm finish each wave at
// once; from then on the test moves every service.
func releaseOrderedV1(t *testing.T, e *stackEnv, mutate ...func(*swarmv1.SwarmStack)) {
	t.Helper()
	e.sw.AutoConverge = true
	e.createStack("numbers", migrationAt("v1"), append([]func(*swarmv1.SwarmStack){dependsOnOrder}, mutate...)...)
	e.passes("numbers", 5)
	if r := e.ready("numbers"); r.Status != "True" {
		t.Fatalf("v1 not ready: %s", r.Message)
	}
	e.sw.AutoConverge = false
}

// serviceRelease returns the status entry of one service.
func (e *stackEnv) serviceRelease(name string) swarmv1.ServiceStatus {
	e.t.Helper()
	for _, s := range e.stack("numbers").Status.Services {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("no status for %s", name)
	return swarmv1.ServiceStatus{}
}

func (e *stackEnv) images() string {
	return e.image("numbers_migrate") + " " + e.image("numbers_api") + " " + e.image("numbers_web")
}

func TestOrderedReleaseWritesJobThenAPIThenWeb(t *testing.T) {
	e := newStackEnv(t)
	releaseOrderedV1(t, e)
	if h := e.newest(); h.UpdateOrder != swarmv1.UpdateOrderDependsOn || strings.Join(h.Waves, " | ") != "numbers_migrate | numbers_api | numbers_web" {
		t.Fatalf("the first release's history does not record its order: %+v", h)
	}
	// Settled, the passes of new reconcilers skip the render: the waves stay shown.
	e.passes("numbers", 2)
	if web := e.serviceRelease("numbers_web"); web.Wave == nil || *web.Wave != 2 || web.Release != "" {
		t.Fatalf("web of the settled stack: %+v", web)
	}
	e.release(migrationAt("v2"))

	e.passes("numbers", 1)
	if got := e.images(); got != "numbers-migrate:v2 numbers-api:v1 numbers-web:v1" {
		t.Fatalf("wave 0: %s", got)
	}
	api := e.serviceRelease("numbers_api")
	if api.Release != swarmv1.ReleaseWaiting || !strings.Contains(api.WaitingFor, "numbers_migrate (service_completed_successfully: job running") || api.Wave == nil || *api.Wave != 1 {
		t.Fatalf("api while the migration runs: %+v", api)
	}
	if m := e.serviceRelease("numbers_migrate"); m.Release != swarmv1.ReleaseWritten || *m.Wave != 0 {
		t.Fatalf("migrate while it runs: %+v", m)
	}
	e.passes("numbers", 3) // the job still runs: nothing more is written
	if got := e.images(); got != "numbers-migrate:v2 numbers-api:v1 numbers-web:v1" {
		t.Fatalf("written before the migration completed: %s", got)
	}

	e.sw.CompleteJob("numbers_migrate")
	e.passes("numbers", 1)
	if got := e.images(); got != "numbers-migrate:v2 numbers-api:v2 numbers-web:v1" {
		t.Fatalf("wave 1: %s", got)
	}
	e.passes("numbers", 3) // api's update runs: web waits for it to be healthy
	web := e.serviceRelease("numbers_web")
	if e.image("numbers_web") != "numbers-web:v1" || web.Release != swarmv1.ReleaseWaiting || !strings.Contains(web.WaitingFor, "numbers_api (service_healthy: update updating") {
		t.Fatalf("web while api updates: %s %+v", e.image("numbers_web"), web)
	}
	if m := e.serviceRelease("numbers_migrate"); m.Release != swarmv1.ReleaseDone {
		t.Fatalf("the completed migration: %+v", m)
	}

	e.sw.Converge("numbers_api")
	e.passes("numbers", 1)
	if got := e.images(); got != "numbers-migrate:v2 numbers-api:v2 numbers-web:v2" {
		t.Fatalf("wave 2: %s", got)
	}
	e.sw.Converge("numbers_web")
	e.passes("numbers", 1)
	e.wantOutcome(swarmv1.OutcomeCompleted)
	if h := e.newest(); strings.Join(h.Waves, " | ") != "numbers_migrate | numbers_api | numbers_web" {
		t.Fatalf("history waves %q", h.Waves)
	}
	if r := e.ready("numbers"); r.Status != "True" {
		t.Fatalf("not ready after the release: %s", r.Message)
	}
	var waveEvents int
	for _, ev := range e.events() {
		if strings.Contains(ev, swarmv1.EventWaveWritten) {
			waveEvents++
		}
	}
	if waveEvents < 3 {
		t.Fatalf("%d WaveWritten events, want one per wave", waveEvents)
	}
}

func TestOrderedReleaseFailedMigrationLeavesAPIAndWebUntouched(t *testing.T) {
	for _, policy := range []string{swarmv1.RollbackPolicyService, swarmv1.RollbackPolicyStack} {
		t.Run(policy, func(t *testing.T) {
			e := newStackEnv(t)
			releaseOrderedV1(t, e, func(s *swarmv1.SwarmStack) { s.Spec.RollbackPolicy = policy })
			e.release(migrationAt("v2"))
			e.passes("numbers", 1)
			e.sw.FailJob("numbers_migrate", "task: non-zero exit (1)")
			e.passes("numbers", 1)
			// Nothing the release wrote can go back with Stack either: it stays Failed.
			e.wantOutcome(swarmv1.OutcomeFailed)
			if h := e.newest(); !strings.Contains(h.Message, "numbers_migrate: job failed: task: non-zero exit (1)") || strings.Contains(h.Message, "rolled back") {
				t.Fatalf("history does not say the job failed: %s", h.Message)
			}
			before := e.writes()
			e.passes("numbers", 3)
			if got := e.images(); got != "numbers-migrate:v2 numbers-api:v1 numbers-web:v1" || e.writes() != before {
				t.Fatalf("after the failed migration: %s, %d writes", got, e.writes()-before)
			}
			if r := e.ready("numbers"); r.Status != "False" || !strings.Contains(r.Message, "job failed") {
				t.Fatalf("ready %+v", r)
			}
		})
	}
}

func TestOrderedReleaseUnhealthyAPIStopsBeforeWebAndStackRollsBack(t *testing.T) {
	e := newStackEnv(t)
	releaseOrderedV1(t, e, stackPolicy)
	e.release(migrationAt("v2"))
	e.passes("numbers", 1)
	e.sw.CompleteJob("numbers_migrate")
	e.passes("numbers", 1)
	e.swarmRollsBack(t, "numbers_api")
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeRolledBack)
	// web was never written; the job's run stays as it ran (rolling its spec back would
	// run the previous migration again).
	if got := e.images(); got != "numbers-migrate:v2 numbers-api:v1 numbers-web:v1" {
		t.Fatalf("after the failed api wave: %s", got)
	}
	if h := e.newest(); slices.Contains(h.Waves, "numbers_web") {
		t.Fatalf("history says web was written: %+v", h)
	}
}

// A restart between waves keeps nothing but status: a status write lost after a wave
// was written must neither write the wave again nor skip the next one.
func TestOrderedReleaseSurvivesALostStatusBetweenWaves(t *testing.T) {
	e := newStackEnv(t)
	releaseOrderedV1(t, e)
	e.release(migrationAt("v2"))
	e.passes("numbers", 1)
	e.sw.CompleteJob("numbers_migrate")
	from := e.writes()
	e.loseStatusPatches = 1 // the pass that writes api loses its status
	e.passes("numbers", 1)
	e.sw.Converge("numbers_api")
	e.passes("numbers", 2)
	e.sw.Converge("numbers_web")
	e.passes("numbers", 2)
	e.wantOutcome(swarmv1.OutcomeCompleted)
	if n := e.writesOf(memswarm.OpUpdateService, "numbers_api", from); n != 1 {
		t.Fatalf("api written %d times, want once", n)
	}
	if got := e.images(); got != "numbers-migrate:v2 numbers-api:v2 numbers-web:v2" {
		t.Fatalf("after the release: %s", got)
	}
}

func TestOrderedReleaseDeadlineCoversEveryWave(t *testing.T) {
	e := newStackEnv(t)
	releaseOrderedV1(t, e, func(s *swarmv1.SwarmStack) { s.Spec.ProgressDeadlineSeconds = ptr.To[int32](60) })
	e.release(migrationAt("v2"))
	e.passes("numbers", 1)
	e.sw.CompleteJob("numbers_migrate")
	e.passes("numbers", 1) // api written at about 3s; the deadline still counts from the job's write
	e.clk.Advance(58 * time.Second)
	e.passes("numbers", 1)
	e.wantOutcome(swarmv1.OutcomeDeadlineExceeded)
	if e.image("numbers_web") != "numbers-web:v1" {
		t.Fatal("web written after the deadline")
	}
}

func TestOrderedReleaseRefusesACycleAndWritesNothing(t *testing.T) {
	e := newStackEnv(t)
	e.createStack("numbers", `
services:
  api: {image: a, depends_on: [web]}
  web: {image: w, depends_on: [api]}
`, dependsOnOrder)
	e.passes("numbers", 2)
	r := e.ready("numbers")
	if r.Reason != swarmv1.ReasonComposeInvalid || !strings.Contains(r.Message, `cycle among services "api", "web"`) {
		t.Fatalf("ready %+v", r)
	}
	if w := e.writes(); w != 0 {
		t.Fatalf("%d writes for a stack with a cycle", w)
	}
}

// Jobs in a release without ordering: a changed job runs again and the release waits
// for it; an unchanged job is not run again and counts as done.
func TestJobsInAParallelRelease(t *testing.T) {
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", migrationAt("v1"))
	e.passes("numbers", 3)
	e.wantOutcome(swarmv1.OutcomeCompleted)
	e.sw.AutoConverge = false

	from := e.writes()
	e.release(strings.Replace(migrationAt("v1"), "numbers-api:v1", "numbers-api:v2", 1))
	e.passes("numbers", 1)
	e.sw.ConvergeAll()
	e.passes("numbers", 1)
	if r := e.ready("numbers"); r.Status != "True" {
		t.Fatalf("ready %+v", r)
	}
	e.wantOutcome(swarmv1.OutcomeCompleted)
	if n := e.writesOf(memswarm.OpUpdateService, "numbers_migrate", from); n != 0 {
		t.Fatalf("the unchanged job was written %d times", n)
	}

	e.release(strings.Replace(strings.Replace(migrationAt("v1"), "numbers-api:v1", "numbers-api:v2", 1), "numbers-migrate:v1", "numbers-migrate:v2", 1))
	e.passes("numbers", 3)
	if h := e.newest(); h.Outcome != swarmv1.OutcomeProgressing {
		t.Fatalf("the release ended before its job's run: %+v", h)
	}
	if r := e.ready("numbers"); !strings.Contains(r.Message, "numbers_migrate: job running") {
		t.Fatalf("ready %+v", r)
	}
	e.sw.CompleteJob("numbers_migrate")
	e.passes("numbers", 1)
	e.wantOutcome(swarmv1.OutcomeCompleted)
}

// A dependency the release leaves as it is counts as it runs: web, alone in the
// release, waits while the unchanged api it needs healthy is missing tasks, and is
// written once api runs them all.
func TestOrderedReleaseWaitsForAnUnchangedDependencyAsItRuns(t *testing.T) {
	e := newStackEnv(t)
	releaseOrderedV1(t, e)
	e.sw.SetRunning("numbers_api", 1)
	e.release(strings.Replace(migrationAt("v1"), "numbers-web:v1", "numbers-web:v2", 1))
	e.passes("numbers", 2)
	r := e.ready("numbers")
	if e.image("numbers_web") != "numbers-web:v1" || !strings.Contains(r.Message, "waits before its first wave: numbers_web waits for numbers_api (service_healthy: 1/2 tasks running)") {
		t.Fatalf("web %s, ready %+v", e.image("numbers_web"), r)
	}
	if web := e.serviceRelease("numbers_web"); web.Release != swarmv1.ReleaseWaiting {
		t.Fatalf("web %+v", web)
	}
	e.sw.SetRunning("numbers_api", 2)
	e.passes("numbers", 1)
	if e.image("numbers_web") != "numbers-web:v2" {
		t.Fatal("web not written once api runs every task")
	}
	e.sw.ConvergeAll()
	e.passes("numbers", 1)
	e.wantOutcome(swarmv1.OutcomeCompleted)
}
