package controllers

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// lifecycle is the skeleton every reconciler of this package shares: a fresh read, the
// finalizer, then either the deletion or the normal pass, and one status patch at the
// end guarded by an optimistic lock. The phases decide; the skeleton only persists.
type lifecycle[T client.Object] struct {
	client    client.Client
	apiReader client.Reader
	finalizer string
	newObject func() T
	// status returns the object's status, compared before and after a pass.
	status func(T) any
	// observed records that the pass saw the current generation.
	observed func(T)
	// normal runs the phases of a live object.
	normal func(ctx context.Context, obj T) (ctrl.Result, error)
	// remove cleans up before the finalizer goes; done says it may go now.
	remove func(ctx context.Context, obj T) (result ctrl.Result, done bool, err error)
	// afterPass sees the status before and after a normal pass (events, metrics).
	afterPass func(before, after T)
}

func (l lifecycle[T]) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := l.newObject()
	// Read from the API server, not the cache: a pass must see the status the last one
	// wrote, or it could act twice on a request it already handled.
	if err := l.apiReader.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		if !controllerutil.ContainsFinalizer(obj, l.finalizer) {
			return ctrl.Result{}, nil
		}
		before := obj.DeepCopyObject().(T)
		result, done, err := l.remove(ctx, obj)
		if done && err == nil {
			controllerutil.RemoveFinalizer(obj, l.finalizer)
			// NotFound: an earlier pass removed the finalizer already.
			return ctrl.Result{}, client.IgnoreNotFound(l.client.Update(ctx, obj))
		}
		return l.persist(ctx, obj, before, result, err)
	}
	if controllerutil.AddFinalizer(obj, l.finalizer) {
		if err := l.client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	before := obj.DeepCopyObject().(T)
	result, err := l.normal(ctx, obj)
	if err == nil || errors.Is(err, reconcile.TerminalError(nil)) {
		l.observed(obj)
	}
	if l.afterPass != nil {
		l.afterPass(before, obj)
	}
	return l.persist(ctx, obj, before, result, err)
}

// persist patches the status when it changed. The patch carries the resourceVersion the
// pass read: if someone wrote the object meanwhile, the pass decided on old facts, so
// its status is dropped and the object reconciled again at once.
func (l lifecycle[T]) persist(ctx context.Context, obj, before T, result ctrl.Result, err error) (ctrl.Result, error) {
	if !statusChanged(l.status(before), l.status(obj)) {
		return result, err
	}
	perr := l.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
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
