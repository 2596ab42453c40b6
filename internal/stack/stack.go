// Package stack is a SwarmStack's domain logic, shared by the controller and the kubectl
// plugin: gathering its inputs, the plan of what to write, aligning writes with adopted
// services, writing, and judging a rollout. The plugin's diff is the controller's write
// by construction. It imports no controller-runtime manager.
package stack

import (
	"context"
	"fmt"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

func NameOf(s *swarmv1.SwarmStack) string {
	if s.Spec.StackName != "" {
		return s.Spec.StackName
	}
	return s.Name
}

func OwnerOf(s *swarmv1.SwarmStack) string { return s.Namespace + "." + s.Name }

// RollingBackSince: Swarm has been rolling the service back since the rollout started.
func RollingBackSince(u *swarmtypes.UpdateStatus, started time.Time) bool {
	switch u.State {
	case swarmtypes.UpdateStateRollbackStarted, swarmtypes.UpdateStateRollbackCompleted, swarmtypes.UpdateStateRollbackPaused:
		return u.StartedAt == nil || !u.StartedAt.Before(started.Add(-ClockSkew))
	}
	return false
}

func PruneEnabled(s *swarmv1.SwarmStack) bool { return s.Spec.Prune == nil || *s.Spec.Prune }

// OwnershipProblem explains why the stack's existing services may not be touched. The
// services of a younger SwarmStack for the same stack are taken back: it is refused
// anyway, and otherwise the two would refuse each other forever.
func OwnershipProblem(current []swarmtypes.Service, owner string, adopt bool, newer map[string]bool) (reason, msg string) {
	for _, svc := range current {
		switch o := svc.Spec.Labels[swarmv1.LabelOwner]; {
		case o == owner, newer[o]:
		case o != "":
			return swarmv1.ReasonConflict, fmt.Sprintf("Service %s belongs to SwarmStack %s", svc.Spec.Name, o)
		case !adopt:
			return swarmv1.ReasonNotOwned, fmt.Sprintf("Service %s exists and was not created by the operator: set spec.adopt to take the stack over", svc.Spec.Name)
		}
	}
	return "", ""
}

// FailedTaskCause names why the newest failed task of a rolled back service failed:
// Swarm's own message ("rollback completed") no longer says. The first such service, in
// the stack's order, is named; the tasks of all of them come in one list.
func FailedTaskCause(ctx context.Context, conn swarm.Swarm, services []swarmtypes.Service, since time.Time) string {
	var ids []string
	for _, svc := range services {
		if svc.UpdateStatus != nil && svc.UpdateStatus.State == swarmtypes.UpdateStateRollbackCompleted {
			ids = append(ids, svc.ID)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	tasks, err := conn.TasksOfServices(ctx, ids)
	if err != nil {
		return ""
	}
	newest := map[string]*swarmtypes.Task{}
	for i := range tasks {
		t := &tasks[i]
		if t.Status.Err == "" || t.CreatedAt.Before(since.Add(-ClockSkew)) {
			continue
		}
		if n := newest[t.ServiceID]; n == nil || t.Status.Timestamp.After(n.Status.Timestamp) {
			newest[t.ServiceID] = t
		}
	}
	for _, svc := range services {
		if t := newest[svc.ID]; t != nil {
			return fmt.Sprintf("; a new task of %s failed: %s", svc.Spec.Name, t.Status.Err)
		}
	}
	return ""
}

// RevisionWrittenAt tells whether some service was written at this revision and when its
// update started (the write time when Swarm has not started it yet).
func RevisionWrittenAt(services []swarmtypes.Service, revision string) (time.Time, bool) {
	var at time.Time
	found := false
	for _, svc := range services {
		if svc.Spec.Labels[swarmv1.LabelRevision] != revision {
			continue
		}
		t := svc.UpdatedAt
		if u := svc.UpdateStatus; u != nil && u.StartedAt != nil {
			t = *u.StartedAt
		}
		if !found || t.Before(at) {
			at, found = t, true
		}
	}
	return at, found
}

// StillUpdating is true for a service written in this rollout whose update Swarm has not
// finished (or not yet started).
func StillUpdating(svc swarmtypes.Service, revision string) bool {
	if svc.Spec.Labels[swarmv1.LabelRevision] != revision || svc.PreviousSpec == nil {
		return false
	}
	if svc.UpdateStatus == nil {
		return !Converged(svc)
	}
	return svc.UpdateStatus.State == swarmtypes.UpdateStateUpdating
}

func LastOutcome(h []swarmv1.HistoryEntry) swarmv1.HistoryEntry {
	if len(h) == 0 {
		return swarmv1.HistoryEntry{}
	}
	return h[0]
}

func OutcomeWords(outcome string) string {
	switch outcome {
	case swarmv1.OutcomeRolledBack:
		return "was rolled back"
	case swarmv1.OutcomePaused:
		return "is paused"
	case swarmv1.OutcomeRollbackPaused:
		return "paused while rolling back"
	case swarmv1.OutcomeDeadlineExceeded:
		return "exceeded its progress deadline"
	case swarmv1.OutcomeFailed:
		return "failed"
	case swarmv1.OutcomeSuperseded:
		return "was superseded"
	}
	return "completed"
}

func VersionSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (" + v + ")"
}
