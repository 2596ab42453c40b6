package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// JobRun is how the current run of a job service (replicated-job, global-job) stands:
// the tasks of its current iteration, as Swarm starts a new run on every write.
type JobRun struct {
	// Iteration is the run judged (the service's JobStatus.JobIteration): a write
	// since starts another run, which this one says nothing about.
	Iteration uint64
	Done      bool // every task the run wants completed
	Failed    bool // a task failed and Swarm will not start another
	Message   string
}

// RunOf is the job's current run among runs, and false when runs judged an earlier one
// (or none).
func RunOf(runs map[string]JobRun, svc swarmtypes.Service) (JobRun, bool) {
	run, ok := runs[svc.ID]
	if !ok || svc.JobStatus == nil || run.Iteration != svc.JobStatus.JobIteration.Index {
		return JobRun{}, false
	}
	return run, true
}

// IsJob: the service runs to completion instead of running on.
func IsJob(svc swarmtypes.Service) bool {
	return svc.Spec.Mode.ReplicatedJob != nil || svc.Spec.Mode.GlobalJob != nil
}

// JobRuns reads the current runs of the job services among svcs, by service ID: one
// task list, made only when there is a job. When the list fails the map is nil: every
// run then counts as still running, and the next pass asks again.
func JobRuns(ctx context.Context, conn swarm.Swarm, svcs []swarmtypes.Service) map[string]JobRun {
	var ids []string
	for _, svc := range svcs {
		if IsJob(svc) {
			ids = append(ids, svc.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	tasks, err := conn.TasksOfServices(ctx, ids)
	if err != nil {
		return nil
	}
	runs := map[string]JobRun{}
	for _, svc := range svcs {
		if IsJob(svc) {
			runs[svc.ID] = jobRun(svc, tasks)
		}
	}
	return runs
}

// jobRun judges the run of the job's current iteration. A failed task fails the run
// only when Swarm will not replace it: its restart policy says none, or the attempts
// it allows are used up. Otherwise (Swarm's default for jobs retries without limit) a
// failing run counts as running, and the progress deadline ends it.
func jobRun(svc swarmtypes.Service, tasks []swarmtypes.Task) JobRun {
	if svc.JobStatus == nil {
		return JobRun{Message: "job: no run started yet"}
	}
	iteration := svc.JobStatus.JobIteration.Index
	var live, completed, failed uint64
	var lastErr string
	for _, t := range tasks {
		if t.ServiceID != svc.ID || t.JobIteration == nil || t.JobIteration.Index != iteration {
			continue
		}
		switch {
		case t.Status.State == swarmtypes.TaskStateComplete:
			completed++
		case t.Status.State == swarmtypes.TaskStateFailed || t.Status.State == swarmtypes.TaskStateRejected:
			failed++
			if lastErr = t.Status.Err; lastErr == "" {
				lastErr = t.Status.Message
			}
		case !swarm.TaskEnded(t.Status.State):
			live++
		}
	}
	want := uint64(1)
	if rj := svc.Spec.Mode.ReplicatedJob; rj != nil && rj.TotalCompletions != nil {
		want = *rj.TotalCompletions
	}
	if svc.Spec.Mode.GlobalJob != nil {
		want = max(completed+live+failed, 1)
		if failed > 0 {
			want = completed + live + 1 // some node's task has not completed
		}
	}
	switch {
	case completed >= want && live == 0:
		return JobRun{Iteration: iteration, Done: true, Message: fmt.Sprintf("job completed (%d tasks)", completed)}
	case failed > 0 && live == 0 && !retried(svc, failed, want-completed):
		return JobRun{Iteration: iteration, Failed: true, Message: "job failed: " + lastErr}
	}
	return JobRun{Iteration: iteration, Message: fmt.Sprintf("job running: %d/%d tasks completed", completed, want)}
}

// retried: Swarm starts another task for a failed one (restart policy).
func retried(svc swarmtypes.Service, failed, missing uint64) bool {
	p := svc.Spec.TaskTemplate.RestartPolicy
	if p == nil {
		return true
	}
	if p.Condition == swarmtypes.RestartPolicyConditionNone {
		return false
	}
	if p.MaxAttempts == nil || *p.MaxAttempts == 0 {
		return true // no limit
	}
	return failed < (*p.MaxAttempts+1)*missing
}

// ReleaseStep is where one service stands in an ordered release.
type ReleaseStep struct {
	Wave       int
	State      string // swarmv1.ReleaseWaiting, ReleaseWritten, ReleaseDone, or "" (not in the release)
	WaitingFor string
}

// OrderRelease decides what an ordered release (updateOrder DependsOn) writes now: the
// services of plan whose dependencies' conditions hold on the services read in this
// pass, and the plan's removals. cur is the rollout in flight, nil before its first
// write; jobs are the job runs (JobRuns). It also says where every rendered service
// stands. A service written in this rollout counts for service_started once Swarm took
// its new tasks (its update started, or nothing is left to replace), for service_healthy
// once its update completed with every task running (Swarm counts a task with a health
// check as running only once healthy), for service_completed_successfully once its job
// run completed. A dependency the release leaves as it is counts as it runs.
func OrderRelease(rendered *compose.Stack, plan ServicePlan, current []swarmtypes.Service, cur *swarmv1.HistoryEntry, jobs map[string]JobRun) (ServicePlan, map[string]ReleaseStep) {
	byName := map[string]swarmtypes.Service{}
	for _, svc := range current {
		byName[svc.Spec.Name] = svc
	}
	unwritten := map[string]bool{}
	for _, svc := range slices.Concat(plan.Create, plan.Update) {
		unwritten[svc.Name] = true
	}
	wave := map[string]int{}
	for i, names := range rendered.Waves {
		for _, n := range names {
			wave[n] = i
		}
	}
	o := releaseOrder{byName: byName, unwritten: unwritten, cur: cur, jobs: jobs}
	write := ServicePlan{Prune: plan.Prune, Drifted: plan.Drifted}
	steps := map[string]ReleaseStep{}
	for _, svc := range rendered.Services {
		step := ReleaseStep{Wave: wave[svc.Name]}
		switch {
		case unwritten[svc.Name]:
			var waits []string
			for _, d := range svc.DependsOn {
				if ok, why := o.holds(d); !ok {
					waits = append(waits, fmt.Sprintf("%s (%s: %s)", d.Service, d.Condition, why))
				}
			}
			if len(waits) > 0 {
				step.State, step.WaitingFor = swarmv1.ReleaseWaiting, strings.Join(waits, "; ")
				break
			}
			step.State = swarmv1.ReleaseWritten // by this pass's write
			if slices.ContainsFunc(plan.Create, func(c compose.Service) bool { return c.Name == svc.Name }) {
				write.Create = append(write.Create, svc)
			} else {
				write.Update = append(write.Update, svc)
			}
		case o.written(svc.Name):
			step.State = swarmv1.ReleaseWritten
			if o.done(byName[svc.Name]) {
				step.State = swarmv1.ReleaseDone
			}
		}
		steps[svc.Name] = step
	}
	return write, steps
}

type releaseOrder struct {
	byName    map[string]swarmtypes.Service
	unwritten map[string]bool
	cur       *swarmv1.HistoryEntry
	jobs      map[string]JobRun
}

// written: the rollout in flight wrote the service.
func (o releaseOrder) written(name string) bool {
	svc, ok := o.byName[name]
	return ok && o.cur != nil && writtenByRollout(svc, o.cur.Revision, o.cur.StartedAt.Time)
}

// holds says whether the dependency's condition holds, and if not why.
func (o releaseOrder) holds(d compose.Dependency) (bool, string) {
	if o.unwritten[d.Service] {
		return false, "not written yet"
	}
	svc, ok := o.byName[d.Service]
	if !ok {
		return false, "not on the swarm"
	}
	if d.Condition == types.ServiceConditionStarted {
		if !o.written(d.Service) || o.started(svc) {
			return true, ""
		}
		return false, "waiting for Swarm's updater to start"
	}
	if IsJob(svc) {
		run, ok := RunOf(o.jobs, svc)
		if !ok {
			return false, "job run not read yet"
		}
		return run.Done, run.Message
	}
	if d.Condition == types.ServiceConditionHealthy {
		if !o.written(d.Service) {
			why := degraded(svc)
			return why == "", why
		}
		if o.done(svc) {
			return true, ""
		}
		if u := thisRolloutsUpdate(svc, o.cur.StartedAt.Time); u != nil {
			return false, "update " + string(u.State) + ", " + taskProgress(svc)
		}
		return false, taskProgress(svc)
	}
	return false, "unknown condition " + d.Condition
}

// started: Swarm took the service's new tasks: its update started, or it has none to
// replace (created by the write, or a spec change that keeps the tasks).
func (o releaseOrder) started(svc swarmtypes.Service) bool {
	if IsJob(svc) || svc.PreviousSpec == nil || thisRolloutsUpdate(svc, o.cur.StartedAt.Time) != nil {
		return true
	}
	return swarm.SameTaskSpec(svc.PreviousSpec.TaskTemplate, svc.Spec.TaskTemplate)
}

// done: a service written in the rollout reached its end: a job's run completed, a
// service's update completed (or it needed none) with every task running.
func (o releaseOrder) done(svc swarmtypes.Service) bool {
	if IsJob(svc) {
		run, ok := RunOf(o.jobs, svc)
		return ok && run.Done
	}
	if !Converged(svc) || svc.ServiceStatus == nil {
		return false
	}
	if u := thisRolloutsUpdate(svc, o.cur.StartedAt.Time); u != nil {
		return u.State == swarmtypes.UpdateStateCompleted
	}
	return o.started(svc)
}

// WaveNames lists the services of a write, for the history entry's waves.
func WaveNames(p ServicePlan) string {
	var names []string
	for _, svc := range slices.Concat(p.Create, p.Update) {
		names = append(names, svc.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
