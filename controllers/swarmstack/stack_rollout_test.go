package swarmstack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

func TestJudgeRollout(t *testing.T) {
	started := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	later := started.Add(time.Minute)
	svc := func(name string, state swarmtypes.UpdateState, msg string, updateStart time.Time, running, desired uint64) swarmtypes.Service {
		s := swarmtypes.Service{Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: name}},
			ServiceStatus: &swarmtypes.ServiceStatus{RunningTasks: running, DesiredTasks: desired}}
		if state != "" {
			s.UpdateStatus = &swarmtypes.UpdateStatus{State: state, Message: msg, StartedAt: &updateStart}
		}
		return s
	}
	cases := map[string]struct {
		services    []swarmtypes.Service
		now         time.Time
		wantOutcome string
		wantReason  string
		wantCause   bool
		stale       map[string]bool
	}{
		"a rollback Swarm completed is a failure, not a success": {
			services: []swarmtypes.Service{svc("api", swarmtypes.UpdateStateRollbackCompleted, "rollback completed", started, 6, 6)},
			now:      later, wantOutcome: swarmv1.OutcomeRolledBack, wantReason: swarmv1.ReasonRolledBack,
		},
		"the rollout waits while another service still updates": {
			services: []swarmtypes.Service{
				svc("api", swarmtypes.UpdateStateRollbackCompleted, "rollback completed", started, 6, 6),
				svc("web", swarmtypes.UpdateStateUpdating, "update in progress", started, 4, 5),
			},
			now: later, wantOutcome: "", wantReason: swarmv1.ReasonRollingBack,
		},
		"a rollback in progress keeps Swarm's cause": {
			services: []swarmtypes.Service{svc("api", swarmtypes.UpdateStateRollbackStarted, "update rolled back due to failure", started, 6, 6)},
			now:      later, wantOutcome: "", wantReason: swarmv1.ReasonRollingBack, wantCause: true,
		},
		"a paused update is reported as paused": {
			services: []swarmtypes.Service{svc("api", swarmtypes.UpdateStatePaused, "update paused due to failure", started, 5, 6)},
			now:      later, wantOutcome: swarmv1.OutcomePaused, wantReason: swarmv1.ReasonRolloutPaused,
		},
		"a paused rollback is reported as such": {
			services: []swarmtypes.Service{svc("api", swarmtypes.UpdateStateRollbackPaused, "rollback paused", started, 5, 6)},
			now:      later, wantOutcome: swarmv1.OutcomeRollbackPaused, wantReason: swarmv1.ReasonRollbackPaused,
		},
		"completed updates with all tasks running complete the rollout": {
			services: []swarmtypes.Service{svc("api", swarmtypes.UpdateStateCompleted, "update completed", started, 6, 6)},
			now:      later, wantOutcome: swarmv1.OutcomeCompleted, wantReason: swarmv1.ReasonSucceeded,
		},
		"a state left from an earlier rollout is ignored": {
			services: []swarmtypes.Service{svc("api", swarmtypes.UpdateStateRollbackCompleted, "rollback completed", started.Add(-time.Hour), 6, 6)},
			now:      later, wantOutcome: swarmv1.OutcomeCompleted, wantReason: swarmv1.ReasonSucceeded,
		},
		"no update status right after the write is not yet a completion": {
			services: []swarmtypes.Service{svc("api", "", "", time.Time{}, 6, 6)},
			now:      started.Add(500 * time.Millisecond), wantOutcome: "", wantReason: swarmv1.ReasonProgressing,
		},
		"a service Swarm's updater has not started on is still progressing, whatever the time": {
			services: []swarmtypes.Service{func() swarmtypes.Service { s := svc("api", "", "", time.Time{}, 6, 6); s.ID = "api-id"; return s }()},
			stale:    map[string]bool{"api-id": true},
			now:      later, wantOutcome: "", wantReason: swarmv1.ReasonProgressing,
		},
		"a new service completes when its tasks run": {
			services: []swarmtypes.Service{svc("api", "", "", time.Time{}, 6, 6)},
			now:      later, wantOutcome: swarmv1.OutcomeCompleted, wantReason: swarmv1.ReasonSucceeded,
		},
		"a new service whose tasks do not run yet is still progressing": {
			services: []swarmtypes.Service{svc("api", "", "", time.Time{}, 2, 6)},
			now:      later, wantOutcome: "", wantReason: swarmv1.ReasonProgressing,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := stack.JudgeRollout(tc.services, started, tc.now, tc.stale, nil)
			if v.Outcome != tc.wantOutcome || v.Reason != tc.wantReason || (v.RollbackCause != "") != tc.wantCause {
				t.Errorf("got %+v, want outcome %q reason %q cause %v", v, tc.wantOutcome, tc.wantReason, tc.wantCause)
			}
		})
	}
}

func TestPlanServicesSkipsUnchangedAndNeverPrunesOthers(t *testing.T) {
	// Covered end to end by the integration tests; here the pure decisions.
	owner := "ns.app"
	labels := func(hash, owner string) map[string]string {
		return map[string]string{swarmv1.LabelSpecHash: hash, swarmv1.LabelOwner: owner}
	}
	current := []swarmtypes.Service{
		{Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "app_same", Labels: labels("h1", owner)}}},
		{Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "app_changed", Labels: labels("old", owner)}}},
		{Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "app_gone", Labels: labels("x", owner)}}},
		{Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "app_foreign", Labels: labels("x", "other.stack")}}},
		{Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "app_manual"}}},
	}
	rendered := renderedOf("app_same:h1", "app_changed:new", "app_new:n")
	p := stack.PlanServices(rendered, current, owner, true, false)
	if names(p.Create) != "app_new" || names(p.Update) != "app_changed" || len(p.Prune) != 1 || p.Prune[0].Spec.Name != "app_gone" {
		t.Fatalf("plan create %s update %s prune %v", names(p.Create), names(p.Update), p.Prune)
	}
	if p := stack.PlanServices(rendered, current, owner, false, false); len(p.Prune) != 0 {
		t.Error("prune: false removed a service")
	}
	if p := stack.PlanServices(rendered, current, owner, true, true); names(p.Update) != "app_same,app_changed" {
		t.Errorf("a retry must rewrite every existing service, got %s", names(p.Update))
	}
}

// renderedOf builds a rendered stack from "name:hash" pairs.
func renderedOf(pairs ...string) *compose.Stack {
	st := &compose.Stack{}
	for _, p := range pairs {
		name, hash, _ := strings.Cut(p, ":")
		st.Services = append(st.Services, compose.Service{Name: name, Hash: hash})
	}
	return st
}

func names(svcs []compose.Service) string {
	var out []string
	for _, s := range svcs {
		out = append(out, s.Name)
	}
	return strings.Join(out, ",")
}

// StillOnPreviousSpec decides on the tasks, not on the clock, and reads them only where a
// service may be waiting for Swarm's updater.
func TestStillOnPreviousSpecAsksTheTasksNotTheClock(t *testing.T) {
	ctx := context.Background()
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	later := started.Add(time.Minute)
	image := func(tag string) func(*swarmtypes.ServiceSpec) {
		return func(s *swarmtypes.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "numbers-api:" + tag }
	}
	labelled := func(s *swarmtypes.ServiceSpec) { s.Labels = map[string]string{"touched": "yes"} }
	// world: api at v1 with one running task, then the writes of the rollout (at
	// `started`), which a lagging updater has not started on.
	world := func(t *testing.T, writes ...func(*swarmtypes.ServiceSpec)) (*memswarm.Swarm, []swarmtypes.Service) {
		t.Helper()
		sw := memswarm.New()
		sw.Now = func() time.Time { return started }
		sw.AddNode("manager1", swarmtypes.NodeRoleManager)
		sw.LaggingUpdater = true
		one := uint64(1)
		spec := swarmtypes.ServiceSpec{
			Annotations:  swarmtypes.Annotations{Name: "api"},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
			Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &one}},
		}
		res, err := sw.CreateService(ctx, swarm.ServiceWrite{Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		sw.AddTask("api", "manager1", swarmtypes.TaskStateRunning)
		sw.Converge("api")
		for _, w := range writes {
			svc, _ := sw.Service("api")
			next := svc.Spec
			next.TaskTemplate.ContainerSpec = &swarmtypes.ContainerSpec{Image: svc.Spec.TaskTemplate.ContainerSpec.Image}
			w(&next)
			if _, err := sw.UpdateService(ctx, swarm.ServiceWrite{ID: res.ID, Version: svc.Version, Spec: next}); err != nil {
				t.Fatal(err)
			}
		}
		svcs, err := sw.AllServices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sw.ResetCalls()
		return sw, svcs
	}
	taskReads := func(sw *memswarm.Swarm) int {
		n := 0
		for _, c := range sw.Calls() {
			if c.Op == memswarm.OpTasksOfServices {
				n++
			}
		}
		return n
	}

	t.Run("old tasks still run: waiting", func(t *testing.T) {
		sw, svcs := world(t, image("v2"))
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); !got[svcs[0].ID] || taskReads(sw) != 1 {
			t.Errorf("got %v after %d task lists, want api waiting after one", got, taskReads(sw))
		}
	})
	t.Run("within the start grace nothing is read", func(t *testing.T) {
		sw, svcs := world(t, image("v2"))
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, started.Add(stack.StartGrace/2)); got != nil || taskReads(sw) != 0 {
			t.Errorf("got %v after %d task lists", got, taskReads(sw))
		}
	})
	t.Run("the tasks already run the spec written back: not waiting", func(t *testing.T) {
		sw, svcs := world(t, image("v2"), image("v1"))
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); got[svcs[0].ID] || taskReads(sw) != 1 {
			t.Errorf("got %v after %d task lists, want api not waiting", got, taskReads(sw))
		}
	})
	t.Run("a failed task list counts as waiting", func(t *testing.T) {
		sw, svcs := world(t, image("v2"))
		sw.Fail(memswarm.OpTasksOfServices, 1, errors.New("injected: no manager answered"))
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); !got[svcs[0].ID] {
			t.Errorf("got %v, want api waiting", got)
		}
	})
	t.Run("a write that replaces no task reads no task", func(t *testing.T) {
		sw, svcs := world(t, labelled)
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); got != nil || taskReads(sw) != 0 {
			t.Errorf("got %v after %d task lists", got, taskReads(sw))
		}
	})
	t.Run("Swarm says completed while the old tasks run: still on the previous spec", func(t *testing.T) {
		sw, _ := world(t, image("v2"))
		sw.SetUpdateState("api", swarmtypes.UpdateStateCompleted, "update completed")
		svcs, _ := sw.AllServices(ctx)
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); !got[svcs[0].ID] {
			t.Errorf("got %v, want api still on the previous spec", got)
		}
	})
	t.Run("Swarm says completed and the tasks run the new spec: done", func(t *testing.T) {
		sw, _ := world(t, image("v2"))
		sw.Converge("api")
		svcs, _ := sw.AllServices(ctx)
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); got[svcs[0].ID] {
			t.Errorf("got %v, want api done", got)
		}
	})
	t.Run("an update Swarm is running reads no task", func(t *testing.T) {
		sw, _ := world(t, image("v2"))
		sw.StartUpdates()
		svcs, _ := sw.AllServices(ctx)
		sw.ResetCalls()
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, started, later); got != nil || taskReads(sw) != 0 {
			t.Errorf("got %v after %d task lists", got, taskReads(sw))
		}
	})
	t.Run("a service the rollout did not write reads no task", func(t *testing.T) {
		sw, svcs := world(t, image("v2"))
		if got := stack.StillOnPreviousSpec(ctx, sw, svcs, later, later.Add(time.Minute)); got != nil || taskReads(sw) != 0 {
			t.Errorf("got %v after %d task lists", got, taskReads(sw))
		}
	})
}
