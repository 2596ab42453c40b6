package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// orderedNumbers is the numbers app with a migration job in front: the "migration" runs
// the numbers binary's ${MIGRATE} command ("version" exits 0, "bogus" exits 2), the api
// waits for it to complete, the web for the api to be healthy.
const orderedNumbers = `
services:
  migrate:
    image: numbers-api:${TAG}
    entrypoint: ["/app", "${MIGRATE}"]
    healthcheck: {disable: true}
    deploy: {mode: replicated-job, restart_policy: {condition: none}}
  numbers-api:
    image: numbers-api:${TAG}
    healthcheck: {interval: 1s, start_period: 1s}
    networks: [app-net]
    depends_on: {migrate: {condition: service_completed_successfully}}
    deploy:
      replicas: 2
      update_config: {monitor: 3s, failure_action: rollback}
      rollback_config: {monitor: 1s}
  numbers-web:
    image: numbers-web:${TAG}
    environment: [RngApi__Url=http://numbers-api/rng]
    healthcheck: {interval: 1s, start_period: 1s}
    networks: [app-net]
    depends_on: {numbers-api: {condition: service_healthy}}
    deploy:
      update_config: {monitor: 1s}
      rollback_config: {monitor: 1s}
networks:
  app-net: {}
`

// TestOrderedReleaseMigrationThenAPIThenWeb: a good ordered release writes job → api →
// web in that order, as the update start times on the swarm show; a failing migration
// leaves api and web untouched; an unhealthy api leaves web untouched and, with
// rollbackPolicy Stack, the api goes back.
func TestOrderedReleaseMigrationThenAPIThenWeb(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "ordered")
	text := orderedNumbers
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version:        "v1",
				UpdateOrder:    swarmv1.UpdateOrderDependsOn,
				RollbackPolicy: swarmv1.RollbackPolicyStack,
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "docker-compose.yml", Inline: &text}},
					Variables: map[string]string{"TAG": "v1", "MIGRATE": "version"}},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	const job, api, web = "numbers_migrate", "numbers_numbers-api", "numbers_numbers-web"
	release := func(version, tag, migrate string) {
		t.Helper()
		update(t, stack, func(s *swarmv1.SwarmStack) {
			s.Spec.Version = version
			s.Spec.Compose.Variables = map[string]string{"TAG": tag, "MIGRATE": migrate}
		})
	}
	waitOutcome(t, stack, "v1", swarmv1.OutcomeCompleted, 4*time.Minute)
	if h := stack.Status.History[0]; strings.Join(h.Waves, " | ") != job+" | "+api+" | "+web {
		t.Fatalf("v1 waves %q", h.Waves)
	}

	// A good release: each wave starts only after the one before reached its condition.
	release("v3", "v3", "version")
	waitOutcome(t, stack, "v3", swarmv1.OutcomeCompleted, 4*time.Minute)
	if h := stack.Status.History[0]; strings.Join(h.Waves, " | ") != job+" | "+api+" | "+web {
		t.Fatalf("v3 waves %q", h.Waves)
	}
	// From the swarm itself: status times are whole seconds.
	jobDone := jobCompletedAt(t, job)
	a, w := swarmUpdateStatus(t, api), swarmUpdateStatus(t, web)
	if a.StartedAt == nil || a.CompletedAt == nil || w.StartedAt == nil {
		t.Fatalf("update times missing: api %+v, web %+v", a, w)
	}
	if a.StartedAt.Before(jobDone) {
		t.Errorf("api's update started at %s, before the migration completed at %s", a.StartedAt, jobDone)
	}
	if w.StartedAt.Before(*a.CompletedAt) {
		t.Errorf("web's update started at %s, before api's completed at %s", w.StartedAt, a.CompletedAt)
	}

	// A failing migration: api and web are never written.
	release("v4", "v4", "bogus")
	waitOutcome(t, stack, "v4", swarmv1.OutcomeFailed, 3*time.Minute)
	if img := swarmImage(t, api) + " " + swarmImage(t, web); img != "numbers-api:v3 numbers-web:v3" {
		t.Fatalf("after the failed migration: %s", img)
	}
	if h := stack.Status.History[0]; !strings.Contains(h.Message, "job failed") || slices.Contains(h.Waves, api) {
		t.Fatalf("history %+v", h)
	}

	// An unhealthy api (v5 without Broken=false): web is never written, api goes back.
	release("v5", "v5", "version")
	waitOutcome(t, stack, "v5", swarmv1.OutcomeRolledBack, 5*time.Minute)
	if h := stack.Status.History[0]; slices.Contains(h.Waves, web) {
		t.Fatalf("history says web was written: %+v", h)
	}
	eventually(t, 3*time.Minute, "api back on v3, web untouched", func() string {
		if img := swarmImage(t, api) + " " + swarmImage(t, web); img != "numbers-api:v3 numbers-web:v3" {
			return img
		}
		return ""
	})
	if c := readyCondition(t, stack); c.Status != metav1.ConditionFalse || c.Reason != swarmv1.ReasonRolledBack {
		t.Errorf("Ready %+v", c)
	}
}

// swarmUpdateStatus is the service's update status as the swarm holds it.
func swarmUpdateStatus(t *testing.T, name string) swarmtypes.UpdateStatus {
	t.Helper()
	svc, _, err := dockerClient(t).ServiceInspectWithRaw(context.Background(), name, swarmServiceInspectOptions)
	if err != nil {
		t.Fatal(err)
	}
	if svc.UpdateStatus == nil {
		t.Fatalf("%s has no update status", name)
	}
	return *svc.UpdateStatus
}

// jobCompletedAt is when the job's current run completed, by the swarm's clock.
func jobCompletedAt(t *testing.T, name string) time.Time {
	t.Helper()
	cli := dockerClient(t)
	svc, _, err := cli.ServiceInspectWithRaw(context.Background(), name, swarmServiceInspectOptions)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := cli.TaskList(context.Background(), swarmtypes.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		t.Fatal(err)
	}
	var done time.Time
	for _, tk := range tasks {
		if tk.JobIteration != nil && svc.JobStatus != nil && tk.JobIteration.Index == svc.JobStatus.JobIteration.Index &&
			tk.Status.State == swarmtypes.TaskStateComplete && tk.Status.Timestamp.After(done) {
			done = tk.Status.Timestamp
		}
	}
	if done.IsZero() {
		t.Fatalf("%s: no completed task in its current run", name)
	}
	return done
}
