// Package swarmstackset releases one stack to many Swarms: a SwarmStackSet writes one
// SwarmStack per selected SwarmCluster and walks a new template through its steps,
// judging each cluster by the status its SwarmStack reports. It never talks to a Swarm.
package swarmstackset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/stack"
)

const setFinalizer = "swarm.swarmops.io/stackset"

// Reconciler writes the SwarmStacks of SwarmStackSets.
type Reconciler struct {
	client.Client
	// APIReader reads the reconciled set itself, bypassing the cache.
	APIReader client.Reader
	Recorder  record.EventRecorder
	// Now is the clock of soaks and progress deadlines.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacksets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacksets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacksets/finalizers,verbs=update
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmstacks,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmclusters,verbs=get;list;watch

// Reconcile plans one pass of the set and writes the SwarmStacks the plan names.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Lifecycle[*swarmv1.SwarmStackSet]{
		Client: r.Client, APIReader: r.APIReader, Finalizer: setFinalizer,
		NewObject: func() *swarmv1.SwarmStackSet { return &swarmv1.SwarmStackSet{} },
		Status:    func(s *swarmv1.SwarmStackSet) any { return s.Status },
		Observed:  func(s *swarmv1.SwarmStackSet) { s.Status.ObservedGeneration = s.Generation },
		Normal:    r.reconcileNormal,
		Remove:    r.reconcileDelete,
	}.Reconcile(ctx, req)
}

func (r *Reconciler) reconcileNormal(ctx context.Context, set *swarmv1.SwarmStackSet) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	sel, err := metav1.LabelSelectorAsSelector(&set.Spec.ClusterSelector)
	if err != nil {
		msg := fmt.Sprintf("spec.clusterSelector: %v", err)
		reconcile.MarkFailed(&set.Status.Conditions, set.Generation, swarmv1.ReasonInvalidStrategy, msg, true)
		return ctrl.Result{}, crreconcile.TerminalError(errors.New(msg))
	}
	clusters, err := r.selectedClusters(ctx, set.Namespace, sel)
	if err != nil {
		return ctrl.Result{}, err
	}
	owned, err := r.ownedStacks(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	observed := map[string]Observed{}
	for _, s := range owned {
		observed[s.Labels[swarmv1.LabelSetCluster]] = ObserveStack(s)
	}
	plan := Make(Input{
		Name: set.Name, Generation: set.Generation, Spec: &set.Spec, Status: set.Status,
		Approve: set.Annotations[swarmv1.AnnotationApprove], Clusters: clusters, Stacks: observed, Now: r.Now(),
	})
	plan.Status.ObservedGeneration = set.Status.ObservedGeneration
	set.Status = plan.Status
	for _, e := range plan.Events {
		r.Recorder.Event(set, e.Type, e.Reason, e.Message)
	}
	var errs []error
	for _, w := range plan.Writes {
		errs = append(errs, r.writeStack(ctx, set, w))
	}
	if !set.Spec.Suspend {
		errs = append(errs, r.letGo(ctx, set, owned, clusters))
	}
	err = errors.Join(errs...)
	log.Info("Reconciled", "revision", stack.ShortRev(plan.Status.Revision), "clusters", plan.Status.ClustersSummary,
		"step", plan.Status.CurrentStep, "writes", len(plan.Writes), "next", plan.RequeueAfter.String())
	return ctrl.Result{RequeueAfter: plan.RequeueAfter}, err
}

// selectedClusters lists the SwarmClusters of the namespace the selector selects.
func (r *Reconciler) selectedClusters(ctx context.Context, namespace string, sel labels.Selector) ([]Cluster, error) {
	var list swarmv1.SwarmClusterList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	out := make([]Cluster, 0, len(list.Items))
	for _, c := range list.Items {
		if c.DeletionTimestamp.IsZero() {
			out = append(out, Cluster{Name: c.Name, Labels: c.Labels})
		}
	}
	return out, nil
}

// ownedStacks lists the SwarmStacks the set controls.
func (r *Reconciler) ownedStacks(ctx context.Context, set *swarmv1.SwarmStackSet) ([]*swarmv1.SwarmStack, error) {
	var list swarmv1.SwarmStackList
	if err := r.List(ctx, &list, client.InNamespace(set.Namespace), client.MatchingLabels{swarmv1.LabelSet: set.Name}); err != nil {
		return nil, err
	}
	var out []*swarmv1.SwarmStack
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], set) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// writeStack creates or updates the generated SwarmStack of one cluster. A SwarmStack of
// that name the set does not own is left alone and reported.
func (r *Reconciler) writeStack(ctx context.Context, set *swarmv1.SwarmStackSet, w Write) error {
	spec := w.Template.Spec.StackSpec(w.Cluster)
	s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: set.StackName(w.Cluster)}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, s, func() error {
		if !s.CreationTimestamp.IsZero() && !metav1.IsControlledBy(s, set) {
			return fmt.Errorf("SwarmStack %s exists and is not owned by SwarmStackSet %s: it is left alone", s.Name, set.Name)
		}
		s.Labels = maps.Clone(w.Template.Metadata.Labels)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[swarmv1.LabelSet], s.Labels[swarmv1.LabelSetCluster] = set.Name, w.Cluster
		annotations := maps.Clone(w.Template.Metadata.Annotations)
		if annotations == nil {
			annotations = map[string]string{}
		}
		// Requests a user put on the generated stack itself (retry, rollback) stay.
		for k, v := range s.Annotations {
			if _, set := annotations[k]; !set && k != swarmv1.AnnotationSetRevision {
				annotations[k] = v
			}
		}
		annotations[swarmv1.AnnotationSetRevision] = w.Revision
		s.Annotations = annotations
		s.Spec = spec
		s.Spec.Suspend = s.Spec.Suspend || w.Suspend
		return controllerutil.SetControllerReference(set, s, r.Scheme())
	})
	if err != nil {
		return fmt.Errorf("writing SwarmStack %s: %w", s.Name, err)
	}
	return nil
}

// letGo applies spec.deletionPolicy to the stacks of clusters the selector no longer
// selects (or that are gone).
func (r *Reconciler) letGo(ctx context.Context, set *swarmv1.SwarmStackSet, owned []*swarmv1.SwarmStack, clusters []Cluster) error {
	selected := map[string]bool{}
	for _, c := range clusters {
		selected[c.Name] = true
	}
	var errs []error
	for _, s := range owned {
		if !selected[s.Labels[swarmv1.LabelSetCluster]] {
			errs = append(errs, r.release(ctx, set, s, "its SwarmCluster left the selector"))
		}
	}
	return errors.Join(errs...)
}

// release deletes a generated stack (deletionPolicy Delete; its own deletionPolicy
// then decides about the Swarm) or orphans it: no owner reference, no set label.
func (r *Reconciler) release(ctx context.Context, set *swarmv1.SwarmStackSet, s *swarmv1.SwarmStack, why string) error {
	if set.Spec.DeletionPolicy == "Orphan" {
		patch := client.MergeFrom(s.DeepCopy())
		s.OwnerReferences = nil
		delete(s.Labels, swarmv1.LabelSet)
		if err := r.Patch(ctx, s, patch); client.IgnoreNotFound(err) != nil {
			return err
		}
		r.Recorder.Eventf(set, corev1.EventTypeNormal, swarmv1.EventSetStackOrphaned, "SwarmStack %s is kept without the set (deletionPolicy Orphan): %s", s.Name, why)
		return nil
	}
	if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
		return err
	}
	r.Recorder.Eventf(set, corev1.EventTypeNormal, swarmv1.EventSetStackDeleted, "SwarmStack %s deleted: %s", s.Name, why)
	return nil
}

// reconcileDelete applies spec.deletionPolicy to every generated stack before the set
// goes; it does not wait for the stacks to leave their Swarms.
func (r *Reconciler) reconcileDelete(ctx context.Context, set *swarmv1.SwarmStackSet) (ctrl.Result, bool, error) {
	owned, err := r.ownedStacks(ctx, set)
	if err != nil {
		return ctrl.Result{}, false, err
	}
	var errs []error
	for _, s := range owned {
		errs = append(errs, r.release(ctx, set, s, "the SwarmStackSet is deleted"))
	}
	err = errors.Join(errs...)
	return ctrl.Result{}, err == nil, err
}

// SetupWithManager watches the sets, the stacks they own and the clusters they select.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	deleting := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return e.ObjectNew.GetDeletionTimestamp() != nil }}
	return ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmStackSet{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deleting))).
		// A stack's status is how a cluster's release is judged.
		Owns(&swarmv1.SwarmStack{}).
		// A cluster that joins, leaves or is relabelled changes the sets of its namespace.
		Watches(&swarmv1.SwarmCluster{}, handler.EnqueueRequestsFromMapFunc(r.setsOfNamespace),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return !labels.Equals(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) || e.ObjectNew.GetDeletionTimestamp() != nil
			}})).
		Named("swarmstackset").
		Complete(r)
}

func (r *Reconciler) setsOfNamespace(ctx context.Context, o client.Object) []crreconcile.Request {
	var list swarmv1.SwarmStackSetList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing SwarmStackSets for a SwarmCluster change")
		return nil
	}
	reqs := make([]crreconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		reqs = append(reqs, crreconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return reqs
}
