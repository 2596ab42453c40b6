package swarmnodemaintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/placement"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// rebalancePoll follows the force updates of the stack being rebalanced.
const rebalancePoll = 2 * time.Second

// rebalance spreads services again after a window (spec.rebalance): Swarm never moves
// tasks back to a node that returns. Once every node of the window is back (ready and
// restored), the replicated services whose tasks are uneven across their eligible nodes
// are force-updated (ForceUpdate+1: Swarm replaces the tasks as the service's
// update_config says, and places them afresh), one stack at a time: the next stack waits
// until the updates of the one before ended. The stack reconciler does not take a force
// update for drift (drifted ignores ForceUpdate) and the spec hash is unchanged, so it
// does not write the service back. It returns when to look again (0: nothing to do).
func (p *maintenancePass) rebalance(ctx context.Context) (time.Duration, error) {
	st := &p.m.Status
	after, back := p.windowOver()
	if after.IsZero() {
		return 0, nil
	}
	if st.Rebalance == nil || !st.Rebalance.After.Time.Equal(after) {
		st.Rebalance = &swarmv1.RebalanceStatus{After: metav1.NewTime(after)}
	}
	rb := st.Rebalance
	if rb.FinishedAt != nil {
		return 0, nil
	}
	if !back {
		return guardPoll, nil
	}
	services, err := p.allServices(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing services to rebalance: %w", err)
	}
	if rb.Stack != "" {
		if running := updatesRunning(services, rb); len(running) > 0 {
			reconcile.MarkReconciling(&st.Conditions, p.m.Generation, swarmv1.ReasonRebalancing,
				fmt.Sprintf("Rebalancing stack %s: waiting for the updates of %s", rb.Stack, strings.Join(running, ", ")))
			return rebalancePoll, nil
		}
		rb.Stack = ""
	}
	uneven, err := p.unevenServices(ctx, services, rb.Services)
	if err != nil {
		return 0, err
	}
	if len(uneven) == 0 {
		now := metav1.NewTime(p.now)
		rb.FinishedAt = &now
		if len(rb.Services) > 0 {
			p.rec.Eventf(p.m, corev1.EventTypeNormal, swarmv1.EventRebalanced, "Rebalanced after the window: %s", strings.Join(rb.Services, ", "))
		}
		return 0, nil
	}
	// One stack at a time, in name order.
	stack := stackOf(uneven[0])
	var errs []error
	var written []string
	for _, svc := range uneven {
		if stackOf(svc) != stack {
			continue
		}
		spec := svc.Spec
		spec.TaskTemplate.ForceUpdate++
		ctrl.LoggerFrom(ctx).Info("Force-updating service to spread its tasks", "service", svc.Spec.Name)
		if _, err := p.conn.UpdateService(ctx, swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: spec}); err != nil {
			if !errors.Is(err, swarm.ErrVersionConflict) { // changed meanwhile: looked at again next pass
				errs = append(errs, fmt.Errorf("rebalancing %s: %w", svc.Spec.Name, err))
			}
			continue
		}
		metrics.ServicesRebalanced.WithLabelValues(p.m.Namespace, p.m.Name).Inc()
		written = append(written, svc.Spec.Name)
	}
	rb.Services = append(rb.Services, written...)
	if len(written) > 0 {
		rb.Stack = stack
		p.rec.Eventf(p.m, corev1.EventTypeNormal, swarmv1.ReasonRebalancing, "Force-updating %s to spread their tasks after the window", strings.Join(written, ", "))
		reconcile.MarkReconciling(&st.Conditions, p.m.Generation, swarmv1.ReasonRebalancing, "Rebalancing stack "+stack+": "+strings.Join(written, ", "))
	}
	return rebalancePoll, errors.Join(errs...)
}

// windowOver returns when the last node of the maintenance was restored (zero while a
// node is held, or when none was ever taken) and whether every restored node that is
// still in the swarm is ready and active again.
func (p *maintenancePass) windowOver() (time.Time, bool) {
	var after time.Time
	back := true
	for i := range p.m.Status.Nodes {
		e := &p.m.Status.Nodes[i]
		if e.Held() {
			return time.Time{}, false
		}
		if e.PreviousAvailability == "" || e.RestoredAt == nil {
			continue
		}
		if e.RestoredAt.After(after) {
			after = e.RestoredAt.Time
		}
		if n, ok := p.byID[e.ID]; ok && (n.Status.State != swarmtypes.NodeStateReady || n.Spec.Availability != swarmtypes.NodeAvailabilityActive) {
			back = false
		}
	}
	return after, back
}

// updatesRunning names the services force-updated in the current stack whose update
// Swarm has not finished.
func updatesRunning(services []swarmtypes.Service, rb *swarmv1.RebalanceStatus) []string {
	var out []string
	for _, svc := range services {
		if stackOf(svc) != rb.Stack || !slices.Contains(rb.Services, svc.Spec.Name) {
			continue
		}
		if u := svc.UpdateStatus; u != nil && (u.State == swarmtypes.UpdateStateUpdating || u.State == swarmtypes.UpdateStateRollbackStarted) {
			out = append(out, svc.Spec.Name)
		}
	}
	return out
}

// stackOf is the stack a service belongs to (docker stack deploy's label), or the
// service itself when it belongs to none.
func stackOf(svc swarmtypes.Service) string {
	if s := svc.Spec.Labels[swarmv1.LabelStackNamespace]; s != "" {
		return s
	}
	return svc.Spec.Name
}

// unevenServices lists, sorted by stack then name, the replicated services not yet
// rebalanced whose running tasks differ by two or more between two eligible nodes.
func (p *maintenancePass) unevenServices(ctx context.Context, services []swarmtypes.Service, done []string) ([]swarmtypes.Service, error) {
	ids := make([]string, 0, len(p.nodes))
	for _, n := range p.nodes {
		ids = append(ids, n.ID)
	}
	tasks, err := p.conn.TasksOnNodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("listing tasks to rebalance: %w", err)
	}
	perNode := map[string]map[string]int{} // service ID → node ID → running tasks
	for _, t := range tasks {
		if t.DesiredState != swarmtypes.TaskStateRunning || t.Status.State != swarmtypes.TaskStateRunning {
			continue
		}
		if perNode[t.ServiceID] == nil {
			perNode[t.ServiceID] = map[string]int{}
		}
		perNode[t.ServiceID][t.NodeID]++
	}
	var out []swarmtypes.Service
	for _, svc := range services {
		if slices.Contains(done, svc.Spec.Name) || !placement.Uneven(svc, p.nodes, perNode[svc.ID]) {
			continue
		}
		out = append(out, svc)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := stackOf(out[i]), stackOf(out[j]); a != b {
			return a < b
		}
		return out[i].Spec.Name < out[j].Spec.Name
	})
	return out, nil
}
