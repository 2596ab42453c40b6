package reconcile

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Lifecycle is the skeleton every reconciler of this package shares: a fresh read, the
// finalizer, then either the deletion or the normal pass, and one status patch at the
// end guarded by an optimistic lock. The phases decide; the skeleton only persists.
type Lifecycle[T client.Object] struct {
	Client    client.Client
	APIReader client.Reader
	Finalizer string
	NewObject func() T
	// status returns the object's status, compared before and after a pass.
	Status func(T) any
	// observed records that the pass saw the current generation.
	Observed func(T)
	// normal runs the phases of a live object.
	Normal func(ctx context.Context, obj T) (ctrl.Result, error)
	// remove cleans up before the finalizer goes; done says it may go now.
	Remove func(ctx context.Context, obj T) (result ctrl.Result, done bool, err error)
	// afterPass sees the status before and after a normal pass (events, metrics).
	AfterPass func(before, after T)
	// AfterPersist sees the status before and after a normal pass once the changed
	// status is stored: what is announced outside the cluster (notifications) follows
	// what status holds, once, even when a conflict makes a pass run again.
	AfterPersist func(before, after T)
}

func (l Lifecycle[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := l.NewObject()
	// Read from the API server, not the cache: a pass must see the status the last one
	// wrote, or it could act twice on a request it already handled.
	if err := l.APIReader.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		if !controllerutil.ContainsFinalizer(obj, l.Finalizer) {
			return ctrl.Result{}, nil
		}
		before := obj.DeepCopyObject().(T)
		result, done, err := l.Remove(ctx, obj)
		if done && err == nil {
			controllerutil.RemoveFinalizer(obj, l.Finalizer)
			// NotFound: an earlier pass removed the finalizer already.
			return ctrl.Result{}, client.IgnoreNotFound(l.Client.Update(ctx, obj))
		}
		return l.persist(ctx, obj, before, result, err)
	}
	if controllerutil.AddFinalizer(obj, l.Finalizer) {
		if err := l.Client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := obj.DeepCopyObject().(T)
	result, err := l.Normal(ctx, obj)
	if err == nil || errors.Is(err, crreconcile.TerminalError(nil)) {
		l.Observed(obj)
	}
	if l.AfterPass != nil {
		l.AfterPass(before, obj)
	}
	changed := StatusChanged(l.Status(before), l.Status(obj))
	perr := patchStatus(ctx, l.Client, obj, before, changed)
	if changed && perr == nil && l.AfterPersist != nil {
		l.AfterPersist(before, obj)
	}
	return persistResult(perr, result, err)
}

// persist writes the status when the pass changed it (PersistStatus).
func (l Lifecycle[T]) persist(ctx context.Context, obj, before T, result ctrl.Result, err error) (ctrl.Result, error) {
	return PersistStatus(ctx, l.Client, obj, before, StatusChanged(l.Status(before), l.Status(obj)), result, err)
}

func patchStatus(ctx context.Context, c client.Client, obj, before client.Object, changed bool) error {
	if !changed {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// PersistStatus patches the status when it changed. The patch carries the
// resourceVersion the pass read: if someone wrote the object meanwhile, the pass decided
// on old facts, so its status is dropped and the object reconciled again at once. Every
// kind persists through here, so none overwrites a status it did not read.
func PersistStatus(ctx context.Context, c client.Client, obj, before client.Object, changed bool, result ctrl.Result, err error) (ctrl.Result, error) {
	return persistResult(patchStatus(ctx, c, obj, before, changed), result, err)
}

// persistResult is the pass's result once its status patch answered perr.
func persistResult(perr error, result ctrl.Result, err error) (ctrl.Result, error) {
	switch {
	case perr == nil:
		return result, err
	case apierrors.IsConflict(perr):
		return ctrl.Result{Requeue: true}, err //nolint:staticcheck // an immediate, rate-limited retry is what a conflict needs
	case apierrors.IsNotFound(perr):
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, errors.Join(err, perr)
}
