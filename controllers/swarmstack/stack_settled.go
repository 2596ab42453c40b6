package swarmstack

import (
	"context"
	"errors"

	"github.com/docker/docker/api/types/network"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// A pass reads its stack from the API server, not the informer cache, because a copy
// that lags the pass before's status write can make it act twice on one request or call
// a rollout done that has not even been seen (docs/benchmarks.md, early Ready). Most
// passes, though, are of settled stacks (every resync, every restart), and that read was
// the largest share of a resync's cost at 10,000 stacks. So a stack whose cached copy
// looks settled gets its pass on that copy first, read-only: no Docker write (refused),
// no event, no status patch. The pass is kept only when it found nothing to do: it
// skipped the render (its inputs and the services on the Swarm are those of the
// revision in force), changed nothing in status and wanted to write nothing. Anything
// else is dropped and the pass runs again on the API server's copy.
//
// Why a stale copy cannot mislead a kept pass: a copy that lags the operator's own
// status write lags a write to the Swarm too (a rollout, a rollback), and the Swarm's
// services, read fresh, then differ from the revision the copy's inputs digest covers,
// so the render is not skipped; a copy that lags a user's change is followed by that
// change's own event, which reaches the queue only after the cache holds it.

// settledFromCache runs the read-only pass of a stack whose cached copy looks settled.
// ok says its result stands; otherwise the caller reconciles as usual.
func (r *Reconciler) settledFromCache(ctx context.Context, req ctrl.Request) (ctrl.Result, bool) {
	var s swarmv1.SwarmStack
	// r.Get reads the informer cache; the API server is r.APIReader.
	if r.Get(ctx, req.NamespacedName, &s) != nil || !looksSettled(&s) {
		return ctrl.Result{}, false
	}
	before := s.Status.DeepCopy()
	sc := r.newScope(ctx, &s)
	sc.readOnly = true
	err := sc.run(ctx)
	if err != nil || sc.wouldWrite || !sc.renderSkipped || reconcile.StatusChanged(*before, s.Status) {
		return ctrl.Result{}, false
	}
	sc.logPass(nil)
	return sc.result, true
}

// looksSettled: the copy shows a stack whose last revision is in force, Ready for its
// generation, with no rollout in flight and no request waiting.
func looksSettled(s *swarmv1.SwarmStack) bool {
	st := &s.Status
	if !s.DeletionTimestamp.IsZero() || !controllerutil.ContainsFinalizer(s, stackFinalizer) ||
		st.ObservedGeneration != s.Generation || st.RolloutInFlight() != nil ||
		st.InputsDigest == "" || st.LastAppliedRevision == "" || st.LastAttemptedRevision != st.LastAppliedRevision {
		return false
	}
	if ready := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionReady); ready == nil ||
		ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != s.Generation {
		return false
	}
	for annotation, handled := range map[string]string{
		swarmv1.AnnotationReconcileRequestedAt: st.LastHandledReconcileAt,
		swarmv1.AnnotationRollback:             st.LastHandledRollback,
		swarmv1.AnnotationRetry:                st.LastHandledRetry,
	} {
		if v := s.Annotations[annotation]; v != "" && v != handled {
			return false
		}
	}
	return true
}

// errReadOnly refuses a write in a read-only pass.
var errReadOnly = errors.New("a settled pass on the cached copy writes nothing")

// readOnlySwarm refuses every write and notes that the pass wanted one.
type readOnlySwarm struct {
	swarm.Swarm
	wouldWrite *bool
}

func (s readOnlySwarm) refuse() error {
	*s.wouldWrite = true
	return errReadOnly
}

func (s readOnlySwarm) SwapNodeAvailability(context.Context, string, swarmtypes.NodeAvailability, swarmtypes.NodeAvailability) error {
	return s.refuse()
}

func (s readOnlySwarm) CreateService(context.Context, swarm.ServiceWrite) (swarm.WriteResult, error) {
	return swarm.WriteResult{}, s.refuse()
}

func (s readOnlySwarm) UpdateService(context.Context, swarm.ServiceWrite) (swarm.WriteResult, error) {
	return swarm.WriteResult{}, s.refuse()
}

func (s readOnlySwarm) RollbackService(context.Context, string, swarmtypes.Version) error {
	return s.refuse()
}

func (s readOnlySwarm) RemoveService(context.Context, string) error { return s.refuse() }

func (s readOnlySwarm) CreateNetwork(context.Context, string, network.CreateOptions) error {
	return s.refuse()
}

func (s readOnlySwarm) RemoveNetwork(context.Context, string) error { return s.refuse() }

func (s readOnlySwarm) CreateSecret(context.Context, swarmtypes.SecretSpec) (string, error) {
	return "", s.refuse()
}

func (s readOnlySwarm) RemoveSecret(context.Context, string) error { return s.refuse() }

func (s readOnlySwarm) CreateConfig(context.Context, swarmtypes.ConfigSpec) (string, error) {
	return "", s.refuse()
}

func (s readOnlySwarm) RemoveConfig(context.Context, string) error { return s.refuse() }
