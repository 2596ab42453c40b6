package swarmnodemaintenance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/window"
)

// defaultRolloutWaitTimeout bounds the wait of a maintenance for rollouts.
const defaultRolloutWaitTimeout = 30 * time.Minute

// rolloutWait is what a maintenance found about the rollouts on its cluster before
// taking new nodes.
type rolloutWait struct {
	// stacks are the rolling-out SwarmStacks it waits for (namespace/name, started at).
	stacks []string
	// since is when the wait began; timedOut says rolloutWaitTimeout has passed.
	since    time.Time
	timedOut bool
	timeout  time.Duration
}

// waiting: no new node is taken in this pass.
func (rw rolloutWait) waiting(m *swarmv1.SwarmNodeMaintenance) bool {
	return len(rw.stacks) > 0 && (!rw.timedOut || m.Spec.OnRolloutWaitTimeout == swarmv1.OnRolloutWaitTimeoutBlock)
}

// checkRollouts decides whether the maintenance waits before taking new nodes: while a
// SwarmStack on its cluster is rolling out (its newest history entry is Progressing)
// and that rollout started before the maintenance began draining in this window. A
// rollout that started later (a stack that does not wait for maintenances, or a
// rollback, which never waits) does not stop a drain under way: whoever started first
// goes first, so the two sides never wait on each other. It only looks when there are
// nodes left to take; held nodes are looked after whatever it finds.
func (r *Reconciler) checkRollouts(ctx context.Context, m *swarmv1.SwarmNodeMaintenance, selected []swarmtypes.Node, w window.Position, now time.Time) (rolloutWait, error) {
	st := &m.Status
	rw := rolloutWait{timeout: reconcile.DurationOr(m.Spec.RolloutWaitTimeout, defaultRolloutWaitTimeout)}
	if (m.Spec.WaitForRollouts != nil && !*m.Spec.WaitForRollouts) || w.Current == nil || !nodesLeftToTake(st.Nodes, selected) {
		return rw, nil
	}
	started := m.FirstDrainedAt()
	for i := range st.Nodes {
		if started.IsZero() && st.Nodes[i].WritePending() {
			// Recorded in an earlier pass that found nothing to wait for: the drain has
			// begun, though no node is written yet. A drain already written began earlier.
			started = now
		}
	}
	// The cluster's stacks through the clusterRef index, which the stack controller
	// registers (Setup sets up both, and the stack controller reads maintenances through
	// this one's index likewise): a maintenance reads its cluster's stacks, not the
	// namespace's.
	var list swarmv1.SwarmStackList
	if err := r.List(ctx, &list, client.InNamespace(m.Namespace), client.MatchingFields{reconcile.IndexClusterRef: m.Spec.ClusterRef.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return rw, fmt.Errorf("listing the SwarmStacks of cluster %q: %w", m.Spec.ClusterRef.Name, err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		h := s.Status.RolloutInFlight()
		if h == nil || !s.DeletionTimestamp.IsZero() || !started.IsZero() && !h.StartedAt.Time.Before(started) {
			continue
		}
		rw.stacks = append(rw.stacks, fmt.Sprintf("%s/%s (rolling out since %s)", s.Namespace, s.Name, window.Stamp(h.StartedAt.Time)))
	}
	sort.Strings(rw.stacks)
	if len(rw.stacks) == 0 {
		return rw, nil
	}
	rw.since = now
	if st.WaitingSince != nil {
		rw.since = st.WaitingSince.Time
	}
	rw.timedOut = now.Sub(rw.since) >= rw.timeout
	return rw, nil
}

// nodesLeftToTake: some selected node is not held yet.
func nodesLeftToTake(entries []swarmv1.MaintenanceNodeStatus, selected []swarmtypes.Node) bool {
	heldIDs := map[string]bool{}
	for i := range entries {
		if entries[i].Held() {
			heldIDs[entries[i].ID] = true
		}
	}
	for _, n := range selected {
		if !heldIDs[n.ID] {
			return true
		}
	}
	return false
}

// recordRolloutWait writes the wait into status: who waits on whom, since when, and the
// phase and conditions of a maintenance that takes no node because of it.
func (r *Reconciler) recordRolloutWait(m *swarmv1.SwarmNodeMaintenance, rw rolloutWait) {
	st := &m.Status
	wasWaiting := len(st.WaitingOn) > 0
	if len(rw.stacks) == 0 {
		st.WaitingOn, st.WaitingSince = nil, nil
		return
	}
	since := metav1.NewTime(rw.since)
	st.WaitingSince = &since
	names := strings.Join(rw.stacks, ", ")
	if !rw.waiting(m) {
		// Timed out, Proceed: the maintenance goes on and says so once.
		st.WaitingOn = nil
		if wasWaiting {
			r.Recorder.Eventf(m, corev1.EventTypeWarning, swarmv1.ReasonRolloutWaitTimeout,
				"Rollouts still running after rolloutWaitTimeout %s: draining anyway: %s", rw.timeout, names)
		}
		return
	}
	st.WaitingOn = rw.stacks
	// A pass that holds nodes (draining, restoring, blocked or failed) says so first;
	// the wait only keeps new nodes out.
	if st.Phase != swarmv1.PhasePending && st.Phase != swarmv1.PhaseInMaintenance {
		return
	}
	if rw.timedOut {
		msg := fmt.Sprintf("Rollouts still running after rolloutWaitTimeout %s (onRolloutWaitTimeout Block): no node is taken until they end: %s", rw.timeout, names)
		st.Phase = swarmv1.PhaseBlocked
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionBlocked, metav1.ConditionTrue, swarmv1.ReasonRolloutWaitTimeout, msg)
		reconcile.MarkFailed(&st.Conditions, m.Generation, swarmv1.ReasonRolloutWaitTimeout, msg, false)
		return
	}
	msg := fmt.Sprintf("Waiting for rollouts of SwarmStack %s to end before draining (they started first); at most until %s (rolloutWaitTimeout %s)",
		names, window.Stamp(rw.since.Add(rw.timeout)), rw.timeout)
	if len(heldNodes(st.Nodes)) == 0 {
		st.Phase = swarmv1.PhasePending
	}
	meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionBlocked)
	reconcile.MarkReconciling(&st.Conditions, m.Generation, swarmv1.ReasonRolloutInProgress, msg)
}

// rolloutWaitRequeue is when to look again while waiting: rollout ends arrive through
// the SwarmStack watch, the timeout by this timer.
func rolloutWaitRequeue(rw rolloutWait, now time.Time, d time.Duration) time.Duration {
	if len(rw.stacks) == 0 || rw.timedOut {
		return d
	}
	return min(d, guardPoll, max(rw.since.Add(rw.timeout).Sub(now), 0)+50*time.Millisecond)
}
