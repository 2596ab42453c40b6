package swarmstack

import (
	"context"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/window"
)

// maintenancePoll re-checks a revision held by a drain: the maintenance's status
// changes do not wake the stack's reconciler.
const maintenancePoll = 5 * time.Second

// holdForMaintenance holds a new revision while a SwarmNodeMaintenance on the same
// SwarmCluster is Draining: new tasks would land on nodes about to go, and the drain
// would reschedule tasks the update replaces. A rollout is written only when no drain
// runs, so the drain, already running, started first and goes first; the maintenance
// side waits for rollouts that started before its drain (see waitForRollouts), and so
// the two never wait on each other. Maintenances are read from the informer cache, by
// the clusterRef index.
func holdForMaintenance(ctx context.Context, sc *stackScope) (string, string, time.Duration, error) {
	s := sc.s
	gauge := metrics.StackRevisionHeld.WithLabelValues(s.Namespace, s.Name, swarmv1.ReasonMaintenanceInProgress)
	if s.Spec.WaitForMaintenances != nil && !*s.Spec.WaitForMaintenances {
		gauge.Set(0)
		return "", "", 0, nil
	}
	var list swarmv1.SwarmNodeMaintenanceList
	if err := sc.r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingFields{reconcile.IndexClusterRef: s.Spec.ClusterRef.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return "", "", 0, fmt.Errorf("listing the maintenances of cluster %q: %w", s.Spec.ClusterRef.Name, err)
	}
	var draining []string
	for i := range list.Items {
		m := &list.Items[i]
		if m.Status.Phase != swarmv1.PhaseDraining || !m.DeletionTimestamp.IsZero() {
			continue
		}
		desc := "SwarmNodeMaintenance " + m.Name
		if at := m.FirstDrainedAt(); !at.IsZero() {
			desc += " (draining since " + window.Stamp(at) + ")"
		}
		draining = append(draining, desc)
	}
	if len(draining) == 0 {
		gauge.Set(0)
		return "", "", 0, nil
	}
	gauge.Set(1)
	msg := fmt.Sprintf("Revision %s waits for %s: it started first; set spec.waitForMaintenances to false to roll out regardless",
		stack.ShortRev(sc.rendered.Revision), strings.Join(draining, ", "))
	return swarmv1.ReasonMaintenanceInProgress, msg, maintenancePoll, nil
}
