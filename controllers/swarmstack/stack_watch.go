package swarmstack

import (
	"context"
	"maps"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/stack"
)

// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=gitrepositories;ocirepositories;buckets;externalartifacts,verbs=get;list;watch

// sourceKinds are the Flux kinds spec.sourceRef can name.
var sourceKinds = []string{sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, sourcev1.ExternalArtifactKind}

// artifactChanged passes a source event when its artifact (revision or digest) or its
// readiness changed: a new commit starts a rollout as soon as source-controller publishes
// it, and the source's own periodic status writes wake no stack.
var artifactChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(stack.FluxSource)
		n, ok2 := e.ObjectNew.(stack.FluxSource)
		if !ok1 || !ok2 {
			return false
		}
		oa, na := o.GetArtifact(), n.GetArtifact()
		if (oa == nil) != (na == nil) || oa != nil && (oa.Revision != na.Revision || oa.Digest != na.Digest) {
			return true
		}
		return readyStatus(o.GetConditions()) != readyStatus(n.GetConditions())
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// dependencyChanged passes a SwarmStack event that may let its dependents go on: its
// readiness or generation changed (a dependsOn edit may end a cycle), it applied a new
// source revision (a dependent on the same source waits for that, and the dependency may
// have been Ready throughout), or it came or went.
var dependencyChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*swarmv1.SwarmStack)
		n, ok2 := e.ObjectNew.(*swarmv1.SwarmStack)
		if !ok1 || !ok2 {
			return false
		}
		if o.Generation != n.Generation || o.Status.LastAppliedSourceRevision != n.Status.LastAppliedSourceRevision {
			return true
		}
		or := apimeta.FindStatusCondition(o.Status.Conditions, swarmv1.ConditionReady)
		nr := apimeta.FindStatusCondition(n.Status.Conditions, swarmv1.ConditionReady)
		if or == nil || nr == nil {
			return or != nr
		}
		return or.Status != nr.Status || or.ObservedGeneration != nr.ObservedGeneration
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func readyStatus(conds []metav1.Condition) metav1.ConditionStatus {
	if c := apimeta.FindStatusCondition(conds, meta.ReadyCondition); c != nil {
		return c.Status
	}
	return ""
}

// watchSources adds a watch for each Flux source kind whose CRD is installed. Without
// Flux the operator runs as before; a kind installed later is watched after a restart
// (until then such stacks still resync on their interval and SourceNotReady's recheck).
func (r *Reconciler) watchSources(mgr ctrl.Manager, b *builder.Builder) *builder.Builder {
	log := mgr.GetLogger().WithName("swarmstack-sources")
	for _, kind := range sourceKinds {
		gk := schema.GroupKind{Group: sourcev1.GroupVersion.Group, Kind: kind}
		if _, err := mgr.GetRESTMapper().RESTMapping(gk, sourcev1.GroupVersion.Version); err != nil {
			log.Info("Not watching Flux sources of this kind: its CRD is not installed", "kind", kind, "reason", err.Error())
			continue
		}
		obj, _ := stack.NewFluxSource(kind)
		b = b.Watches(obj, handler.EnqueueRequestsFromMapFunc(r.stacksOfSource(kind)), builder.WithPredicates(artifactChanged))
	}
	return b.Watches(&swarmv1.SwarmStack{}, handler.EnqueueRequestsFromMapFunc(r.dependentsOf), builder.WithPredicates(dependencyChanged))
}

// stacksOfSource maps a source to the stacks of any namespace that read it.
func (r *Reconciler) stacksOfSource(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []crreconcile.Request {
		return r.stacksIndexed(ctx, reconcile.IndexSourceRef, stack.SourceKey(kind, o.GetNamespace(), o.GetName()))
	}
}

// dependentsOf maps a SwarmStack to the stacks that depend on it.
func (r *Reconciler) dependentsOf(ctx context.Context, o client.Object) []crreconcile.Request {
	return r.stacksIndexed(ctx, reconcile.IndexDependsOn, ktypes.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}.String())
}

func (r *Reconciler) stacksIndexed(ctx context.Context, index, value string) []crreconcile.Request {
	var list swarmv1.SwarmStackList
	if err := r.List(ctx, &list, client.MatchingFields{index: value}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	reqs := make([]crreconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, crreconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// clusterUsable passes the SwarmCluster changes that matter to its stacks: readiness and
// the endpoint in use. A cluster's status is patched on every probe (node counts, last
// seen managers); waking every stack of it each time would cost O(stacks) for nothing.
var clusterUsable = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	a, okA := e.ObjectOld.(*swarmv1.SwarmCluster)
	b, okB := e.ObjectNew.(*swarmv1.SwarmCluster)
	if !okA || !okB {
		return true
	}
	return a.Generation != b.Generation || reconcile.IsReady(a.Status.Conditions) != reconcile.IsReady(b.Status.Conditions) ||
		a.Status.Endpoint != b.Status.Endpoint || !maps.Equal(a.Annotations, b.Annotations)
}}
