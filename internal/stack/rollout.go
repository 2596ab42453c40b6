package stack

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

const (
	historyLimit = 10
	// StartGrace is how long after a write a service with no UpdateStatus is still taken
	// as "not started yet" rather than "nothing to roll": Swarm clears UpdateStatus when a
	// spec is written and sets it when its updater picks the service up.
	StartGrace = 2 * time.Second
	// ClockSkew is how much older than the rollout an UpdateStatus may look and still be
	// taken as this rollout's (the swarm's clock is not ours).
	ClockSkew = 2 * time.Second
)

// taskCounts are a service's running tasks split by what Swarm wants of them.
type taskCounts struct{ running, shuttingDown uint64 }

// ExactTaskCounts corrects Swarm's RunningTasks, which counts every running task, old
// ones that an update replaces included (9/6 in a start-first update of 6), to what
// docker service ls shows: running tasks whose desired state is running. It costs one
// task list, made only while some service may hold such old tasks.
func ExactTaskCounts(ctx context.Context, conn swarm.Swarm, svcs []swarmtypes.Service) map[string]taskCounts {
	var ids []string
	for _, svc := range svcs {
		if mayHoldOldTasks(svc) {
			ids = append(ids, svc.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	tasks, err := conn.TasksOfServices(ctx, ids)
	if err != nil {
		return nil // Swarm's own counts, then; the next pass tries again
	}
	counts := map[string]taskCounts{}
	for _, t := range tasks {
		if t.Status.State != swarmtypes.TaskStateRunning {
			continue
		}
		c := counts[t.ServiceID]
		if t.DesiredState == swarmtypes.TaskStateRunning {
			c.running++
		} else {
			c.shuttingDown++
		}
		counts[t.ServiceID] = c
	}
	for i := range svcs {
		if c, ok := counts[svcs[i].ID]; ok && svcs[i].ServiceStatus != nil {
			st := *svcs[i].ServiceStatus
			st.RunningTasks = c.running
			svcs[i].ServiceStatus = &st
		}
	}
	return counts
}

// mayHoldOldTasks: an update runs, or Swarm counts more running tasks than it wants.
func mayHoldOldTasks(svc swarmtypes.Service) bool {
	if u := svc.UpdateStatus; u != nil && (u.State == swarmtypes.UpdateStateUpdating || u.State == swarmtypes.UpdateStateRollbackStarted) {
		return true
	}
	return svc.ServiceStatus != nil && svc.ServiceStatus.RunningTasks > svc.ServiceStatus.DesiredTasks
}

// ServiceStatuses turns Swarm's view of the stack's services into status entries.
func ServiceStatuses(svcs []swarmtypes.Service, counts map[string]taskCounts) []swarmv1.ServiceStatus {
	out := make([]swarmv1.ServiceStatus, 0, len(svcs))
	for _, svc := range svcs {
		st := swarmv1.ServiceStatus{Name: svc.Spec.Name, Mode: serviceMode(svc.Spec.Mode), ShuttingDownTasks: counts[svc.ID].shuttingDown}
		if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
			st.Image = cs.Image
		}
		if svc.ServiceStatus != nil {
			st.DesiredTasks = svc.ServiceStatus.DesiredTasks
			st.RunningTasks = svc.ServiceStatus.RunningTasks
			st.CompletedTasks = svc.ServiceStatus.CompletedTasks
		}
		if u := svc.UpdateStatus; u != nil {
			st.UpdateState = string(u.State)
			st.UpdateMessage = u.Message
			if u.StartedAt != nil && !u.StartedAt.IsZero() {
				t := metav1.NewTime(*u.StartedAt)
				st.UpdateStartedAt = &t
			}
			if u.CompletedAt != nil && !u.CompletedAt.IsZero() {
				t := metav1.NewTime(*u.CompletedAt)
				st.UpdateCompletedAt = &t
			}
		}
		st.UpdateConfig = updateConfigStatus(svc.Spec.UpdateConfig)
		st.RollbackConfig = updateConfigStatus(svc.Spec.RollbackConfig)
		out = append(out, st)
	}
	return out
}

func serviceMode(m swarmtypes.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.ReplicatedJob != nil:
		return "replicated-job"
	case m.GlobalJob != nil:
		return "global-job"
	default:
		return "replicated"
	}
}

func updateConfigStatus(u *swarmtypes.UpdateConfig) *swarmv1.UpdateConfig {
	if u == nil {
		return nil
	}
	return &swarmv1.UpdateConfig{
		Parallelism:     u.Parallelism,
		Delay:           u.Delay.String(),
		FailureAction:   u.FailureAction,
		Monitor:         u.Monitor.String(),
		MaxFailureRatio: fmt.Sprintf("%g", u.MaxFailureRatio),
		Order:           u.Order,
	}
}

// Verdict is what the services say about the rollout in flight.
type Verdict struct {
	Outcome string // "" while in progress
	Reason  string // condition reason while in progress or on failure
	Message string
	// RollbackCause is Swarm's reason for rolling services back, which it states only
	// while the rollback runs ("update rolled back due to failure ...").
	RollbackCause string
}

// thisRolloutsUpdate is the service's UpdateStatus if it belongs to the rollout that
// started at `started`, nil if there is none or it is left over from an earlier one.
func thisRolloutsUpdate(svc swarmtypes.Service, started time.Time) *swarmtypes.UpdateStatus {
	u := svc.UpdateStatus
	if u != nil && u.StartedAt != nil && u.StartedAt.Before(started.Add(-ClockSkew)) {
		return nil
	}
	return u
}

// StillOnPreviousSpec finds the services of the rollout whose tasks have not taken its
// new task spec although their counts look done: written in the rollout with another
// task template, converged, and tasks that Swarm wants running still on an older spec.
// Two of Swarm's states hide that:
//   - no update status: the updater has not started yet; on a loaded manager it can take
//     longer than any grace, and a clock cannot tell "not started" from "nothing to roll";
//   - completed: a start-first slot keeps its old task until the new one runs, and the
//     updater counts a new task's failure only if it sees it within the monitor period;
//     with a short monitor on a loaded manager it marks the update completed while every
//     old task still runs, and rolls back only when it runs the update again.
//
// The tasks decide, as Swarm's updater itself decides which tasks are dirty. It lists
// tasks only past the start grace and only for such services; when the list fails, they
// all count as still on the previous spec, and the next pass asks again.
func StillOnPreviousSpec(ctx context.Context, conn swarm.Swarm, svcs []swarmtypes.Service, started, now time.Time) map[string]bool {
	if now.Sub(started) < StartGrace {
		return nil
	}
	var ids []string
	specs := map[string]swarmtypes.TaskSpec{}
	for _, svc := range svcs {
		prev := svc.PreviousSpec
		if u := thisRolloutsUpdate(svc, started); u != nil && u.State != swarmtypes.UpdateStateCompleted {
			continue
		}
		if prev == nil || svc.UpdatedAt.Before(started.Add(-ClockSkew)) ||
			!Converged(svc) || swarm.SameTaskSpec(prev.TaskTemplate, svc.Spec.TaskTemplate) {
			continue
		}
		ids = append(ids, svc.ID)
		specs[svc.ID] = svc.Spec.TaskTemplate
	}
	if len(ids) == 0 {
		return nil
	}
	stale := map[string]bool{}
	tasks, err := conn.TasksOfServices(ctx, ids)
	if err != nil {
		for _, id := range ids {
			stale[id] = true
		}
		return stale
	}
	for _, t := range tasks {
		if t.DesiredState == swarmtypes.TaskStateRunning && !swarm.TaskEnded(t.Status.State) && !swarm.SameTaskSpec(t.Spec, specs[t.ServiceID]) {
			stale[t.ServiceID] = true
		}
	}
	return stale
}

// JudgeRollout decides whether the rollout that started at `started` has ended and how.
// A service whose update Swarm rolled back makes the whole rollout RolledBack, once no
// service is still moving: a rollback is a failure, even though Swarm and the docker CLI
// report it as a finished update. stale holds the IDs of the services whose tasks still
// run the previous spec (StillOnPreviousSpec), jobs the runs of the job services by ID
// (JobRuns): a job's run moves until it completed, and one that failed fails the
// rollout (outcome Failed), once no other service is still moving.
func JudgeRollout(svcs []swarmtypes.Service, started, now time.Time, stale map[string]bool, jobs map[string]JobRun) Verdict {
	var moving, rolledBack, paused, rollbackPaused, rollingBack, failed []string
	for _, svc := range svcs {
		name := svc.Spec.Name
		if IsJob(svc) {
			run, ok := RunOf(jobs, svc)
			switch {
			case !ok:
				moving = append(moving, name+": job run not read yet")
			case run.Failed:
				failed = append(failed, name+": "+run.Message)
			case !run.Done:
				moving = append(moving, name+": "+run.Message)
			}
			continue
		}
		u := thisRolloutsUpdate(svc, started)
		if u == nil {
			switch {
			case stale[svc.ID]:
				moving = append(moving, name+": waiting for Swarm's updater to start")
			case now.Sub(started) < StartGrace || !Converged(svc):
				moving = append(moving, fmt.Sprintf("%s: %s", name, taskProgress(svc)))
			}
			continue
		}
		msg := name + ": " + u.Message
		switch u.State {
		case swarmtypes.UpdateStateUpdating:
			moving = append(moving, msg)
		case swarmtypes.UpdateStateRollbackStarted:
			moving = append(moving, msg)
			rollingBack = append(rollingBack, msg)
		case swarmtypes.UpdateStatePaused:
			paused = append(paused, msg)
		case swarmtypes.UpdateStateRollbackPaused:
			rollbackPaused = append(rollbackPaused, msg)
		case swarmtypes.UpdateStateRollbackCompleted:
			rolledBack = append(rolledBack, msg)
		case swarmtypes.UpdateStateCompleted:
			if stale[svc.ID] {
				moving = append(moving, name+": Swarm reports the update completed, but tasks of the previous spec still run")
			} else if !Converged(svc) {
				moving = append(moving, fmt.Sprintf("%s: %s", name, taskProgress(svc)))
			}
		}
	}
	sort.Strings(moving)
	cause := strings.Join(rollingBack, "; ")
	switch {
	case len(rollbackPaused) > 0:
		return Verdict{swarmv1.OutcomeRollbackPaused, swarmv1.ReasonRollbackPaused, strings.Join(rollbackPaused, "; "), cause}
	case len(paused) > 0:
		return Verdict{swarmv1.OutcomePaused, swarmv1.ReasonRolloutPaused, strings.Join(paused, "; "), cause}
	case len(moving) > 0:
		reason := swarmv1.ReasonProgressing
		if len(rolledBack)+len(rollingBack) > 0 {
			reason = swarmv1.ReasonRollingBack
		}
		return Verdict{"", reason, strings.Join(moving, "; "), cause}
	case len(failed) > 0:
		return Verdict{swarmv1.OutcomeFailed, OutcomeReason(swarmv1.OutcomeFailed), strings.Join(slices.Concat(failed, rolledBack), "; "), cause}
	case len(rolledBack) > 0:
		return Verdict{swarmv1.OutcomeRolledBack, swarmv1.ReasonRolledBack, strings.Join(rolledBack, "; "), cause}
	}
	return Verdict{swarmv1.OutcomeCompleted, swarmv1.ReasonSucceeded, "all services converged", ""}
}

// JudgeOnWritten judges the rollout of cur on the services it wrote (writtenByRollout). A
// service it did not write may be degraded for reasons of its own: blaming the release
// would hold it Progressing until the deadline rolled back what works. Such services are
// named in the verdict's message (and in status.services, as every service).
func JudgeOnWritten(ctx context.Context, conn swarm.Swarm, svcs []swarmtypes.Service, cur *swarmv1.HistoryEntry, now time.Time, jobs map[string]JobRun) Verdict {
	started := cur.StartedAt.Time
	var written []swarmtypes.Service
	var others []string
	for _, svc := range svcs {
		if writtenByRollout(svc, cur.Revision, started) {
			written = append(written, svc)
		} else if why := degraded(svc); why != "" {
			others = append(others, svc.Spec.Name+": "+why)
		}
	}
	v := JudgeRollout(written, started, now, StillOnPreviousSpec(ctx, conn, written, started, now), jobs)
	if len(others) == 0 {
		return v
	}
	if v.Outcome == swarmv1.OutcomeCompleted {
		v.Message = "the services it wrote converged"
	}
	v.Message += "; not written by it, left as they are: " + strings.Join(others, "; ")
	return v
}

// writtenByRollout: the rollout of revision, started at `started`, wrote the service: its
// spec carries the revision, or it was rolled back from it (by Swarm, the deadline or a
// rollback request), since the rollout started. A spec of the revision older than the
// rollout is an earlier rollout's.
func writtenByRollout(svc swarmtypes.Service, revision string, started time.Time) bool {
	if svc.UpdatedAt.Before(started.Add(-ClockSkew)) {
		return false
	}
	if svc.Spec.Labels[swarmv1.LabelRevision] == revision {
		return true
	}
	if svc.PreviousSpec != nil && svc.PreviousSpec.Labels[swarmv1.LabelRevision] == revision {
		return true
	}
	// Swarm's own rollback (failure_action rollback) drops the previous spec: the spec it
	// rolled back from is gone, but its rollback started within this rollout.
	u := svc.UpdateStatus
	return u != nil && RollingBackSince(u, started)
}

// degraded says why a service does not run as it should: tasks missing, or an update of
// its own that is stuck or rolling back; "" when it runs as it wants.
func degraded(svc swarmtypes.Service) string {
	if u := svc.UpdateStatus; u != nil {
		switch u.State {
		case swarmtypes.UpdateStatePaused, swarmtypes.UpdateStateRollbackPaused, swarmtypes.UpdateStateRollbackStarted:
			return u.Message
		}
	}
	if !Converged(svc) {
		return taskProgress(svc)
	}
	return ""
}

// Converged is true when a service runs as many tasks as it wants; jobs never "run".
func Converged(svc swarmtypes.Service) bool {
	if svc.Spec.Mode.ReplicatedJob != nil || svc.Spec.Mode.GlobalJob != nil {
		return true
	}
	if svc.ServiceStatus == nil {
		return false
	}
	return svc.ServiceStatus.RunningTasks >= svc.ServiceStatus.DesiredTasks
}

func taskProgress(svc swarmtypes.Service) string {
	if svc.ServiceStatus == nil {
		return "waiting for tasks"
	}
	return fmt.Sprintf("%d/%d tasks running", svc.ServiceStatus.RunningTasks, svc.ServiceStatus.DesiredTasks)
}

// FailedOutcome is true for outcomes after which the same revision is not applied again
// until the spec changes or a retry is requested: re-applying would only fail again.
func FailedOutcome(outcome string) bool {
	switch outcome {
	case swarmv1.OutcomeRolledBack, swarmv1.OutcomePaused, swarmv1.OutcomeRollbackPaused,
		swarmv1.OutcomeDeadlineExceeded, swarmv1.OutcomeFailed, swarmv1.OutcomeRollbackFailed:
		return true
	}
	return false
}

// OutcomeReason maps a finished rollout's outcome to the Ready condition's reason.
func OutcomeReason(outcome string) string {
	switch outcome {
	case swarmv1.OutcomeRolledBack:
		return swarmv1.ReasonRolledBack
	case swarmv1.OutcomePaused:
		return swarmv1.ReasonRolloutPaused
	case swarmv1.OutcomeRollbackPaused:
		return swarmv1.ReasonRollbackPaused
	case swarmv1.OutcomeDeadlineExceeded:
		return swarmv1.ReasonDeadlineExceeded
	case swarmv1.OutcomeFailed:
		return swarmv1.ReasonApplyFailed
	case swarmv1.OutcomeRollbackFailed:
		return swarmv1.ReasonRollbackFailed
	}
	return swarmv1.ReasonSucceeded
}

// DeadlineFrom is when the rollout's progress deadline starts: the write that completed
// its revision. A first partial write (Swarm refusing the rest, retried) starts the
// rollout but not the deadline, or the pass after the final write would roll back what
// it had just written. Entries without WrittenAt count from StartedAt.
//
// An ordered release (updateOrder DependsOn) counts from StartedAt: the deadline covers
// the whole release, every wave and the waits between them.
func DeadlineFrom(e *swarmv1.HistoryEntry) time.Time {
	if e.UpdateOrder == swarmv1.UpdateOrderDependsOn {
		return e.StartedAt.Time
	}
	if e.WrittenAt != nil && e.WrittenAt.After(e.StartedAt.Time) {
		return e.WrittenAt.Time
	}
	return e.StartedAt.Time
}

// PushHistory adds a rollout at the front and keeps at most historyLimit entries.
func PushHistory(h []swarmv1.HistoryEntry, e swarmv1.HistoryEntry) []swarmv1.HistoryEntry {
	h = append([]swarmv1.HistoryEntry{e}, h...)
	if len(h) > historyLimit {
		h = h[:historyLimit]
	}
	return h
}

func ShortRev(rev string) string {
	rev = strings.TrimPrefix(rev, "sha256:")
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
