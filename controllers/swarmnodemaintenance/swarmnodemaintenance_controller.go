package swarmnodemaintenance

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/placement"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/window"
)

const (
	maintenanceFinalizer = "swarm.swarmops.io/maintenance"
	defaultDrainTimeout  = 10 * time.Minute
	// maintenanceMaxWait caps every requeue: a window boundary far away is approached in
	// steps, so a clock that jumps (or a lost event) is noticed within a minute.
	maintenanceMaxWait = time.Minute
	// drainPoll follows tasks leaving a drained node: Swarm announces no task events.
	drainPoll = 2 * time.Second
	// guardPoll re-checks a blocked node; node events usually come first.
	guardPoll = 10 * time.Second
	// writeSoon separates recording a node's previous availability (one reconcile) from
	// changing it (the next), so the status always knows what to restore.
	writeSoon    = 200 * time.Millisecond
	clusterRetry = 10 * time.Second
)

// Reconciler drains nodes for maintenance windows and puts each one
// back to the availability it had before.
//
// Conditions:
//   - Ready is True while the resource is where it should be at this instant: Pending
//     before a window (nothing held), InMaintenance (every node that may be is drained)
//     or Completed (a one-off window ended and its nodes were restored). It is False with
//     Reconciling=True while nodes are Draining or Restoring; False with the guard's
//     reason while Blocked; False with DrainTimeout when tasks did not leave in time; and
//     False with Stalled=True for input only the user can fix (InvalidWindow,
//     UnknownNode, NoNodesSelected): then no new node is taken, but held nodes are still
//     looked after (see "Rules" below).
//   - InWindow is True inside a window (reason WindowOpen), False outside (WindowClosed).
//   - Blocked is present, True, only while a guard holds a node back (QuorumGuard,
//     ServiceWouldStop, OverlappingMaintenance); like Stalled it is absent otherwise.
//
// Per node (status.nodes), all the state a restart needs:
//   - previousAvailability is recorded, and patched, one reconcile before the node is
//     changed, so a crash between the two cannot lose it;
//   - availability is the node's availability as last seen;
//   - drainedAt is when the operator set the node's availability (drainTimeout counts
//     from there); empty with previousAvailability set means the write is pending;
//   - restoredAt is when the node left the maintenance: restored by the operator, or let
//     go because someone else changed its availability meanwhile (message says which).
//
// Nodes that were already drained (or paused, for availability pause) before the window
// are taken as they are: nothing is written and nothing restored.
//
// Rules:
//   - Held nodes always come back (D1). A node is restored when its window is over or it
//     is no longer selected, whatever else is wrong with the spec: a selection that fails
//     (a node named in spec.nodes left the swarm, a selector that matches nothing) still
//     yields the nodes it can resolve, and a held node among them stays held until its
//     window ends; a window that cannot be read counts as no open window, so every held
//     node is restored. The failure is reported Stalled and blocks only taking new nodes.
//   - Quorum counts held managers, not drained ones (D4). A manager held by any
//     maintenance counts as down for preserveQuorum whatever its availability was: the
//     window is for its reboot. A manager drained by design (drained before, held by no
//     maintenance) that Raft reaches still votes, so it does not count as down and does
//     not block the others; an unreachable one blocks them as any unreachable manager
//     does. An already-drained worker is taken as it is before the guards and uses no
//     slot of maxConcurrent; an already-drained manager taken as it is goes through the
//     slots and the quorum guard like any other manager.
//   - One node, one maintenance (D14). Before recording a node, and again before writing
//     it, the other maintenances are read from the API server, not the cache. A drain
//     found in place while another maintenance holds the node is never taken as a write
//     of ours whose status patch was lost: the claim is dropped (and the node never made
//     active by us); when two claims of one node meet before either wrote, the older
//     maintenance keeps it. (Reconciles of one controller run one at a time, so the fresh
//     read closes the gap a lagging cache leaves.)
type Reconciler struct {
	client.Client
	// APIReader reads the reconciled object itself, bypassing the cache.
	APIReader client.Reader
	// Hub streams the swarms' events (SetupWithManager); Swarms opens them.
	Hub      *swarm.Hub
	Swarms   reconcile.Swarms
	Recorder record.EventRecorder
	Now      func() time.Time
}

// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmnodemaintenances,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmnodemaintenances/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmnodemaintenances/finalizers,verbs=update
// +kubebuilder:rbac:groups=swarm.swarmops.io,resources=swarmclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile moves the selected nodes into maintenance inside the window and back out of
// it after the window, on deletion, or when they leave the selection.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Lifecycle[*swarmv1.SwarmNodeMaintenance]{
		Client: r.Client, APIReader: r.APIReader, Finalizer: maintenanceFinalizer,
		NewObject: func() *swarmv1.SwarmNodeMaintenance { return &swarmv1.SwarmNodeMaintenance{} },
		Status:    func(m *swarmv1.SwarmNodeMaintenance) any { return m.Status },
		Observed:  func(m *swarmv1.SwarmNodeMaintenance) { m.Status.ObservedGeneration = m.Generation },
		Normal:    r.reconcileNormal,
		Remove:    r.reconcileDelete,
		AfterPass: r.afterPass,
	}.Reconcile(ctx, req)
}

// afterPass announces what changed and exports the maintenance's gauges.
func (r *Reconciler) afterPass(before, m *swarmv1.SwarmNodeMaintenance) {
	r.recordTransition(&before.Status, m)
	metrics.NodesInMaintenance.WithLabelValues(m.Namespace, m.Name).Set(float64(len(heldNodes(m.Status.Nodes))))
	inWindow := 0.0
	if meta.IsStatusConditionTrue(m.Status.Conditions, swarmv1.ConditionInWindow) {
		inWindow = 1
	}
	metrics.MaintenanceInWindow.WithLabelValues(m.Namespace, m.Name).Set(inWindow)
	waiting := 0.0
	if len(m.Status.WaitingOn) > 0 {
		waiting = 1
	}
	metrics.MaintenanceWaitingForRollouts.WithLabelValues(m.Namespace, m.Name).Set(waiting)
}

func (r *Reconciler) reconcileNormal(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (ctrl.Result, error) {
	st := &m.Status
	now := r.Now()
	// A window that cannot be read is no open window for the nodes already held: they
	// are restored, and only taking new nodes waits until the spec is fixed.
	w, windowErr := window.MaintenanceAt(m.Spec.Window, m.CreationTimestamp.Time, now)
	if windowErr != nil {
		w = window.Position{}
		st.CurrentWindow, st.NextWindow = nil, nil
		reconcile.SetCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionUnknown, swarmv1.ReasonInvalidWindow, windowErr.Error())
		if len(heldNodes(st.Nodes)) == 0 {
			stall(m, swarmv1.ReasonInvalidWindow, windowErr.Error())
			return ctrl.Result{}, crreconcile.TerminalError(windowErr)
		}
	} else {
		st.CurrentWindow, st.NextWindow = windowTimes(w.Current), windowTimes(w.Next)
		setWindowCondition(m, w)
	}

	conn, err := r.connect(ctx, m)
	if err != nil {
		reconcile.MarkFailed(&st.Conditions, m.Generation, swarmv1.ReasonClusterNotReady, err.Error(), false)
		return ctrl.Result{RequeueAfter: clusterRetry}, nil //nolint:nilerr // reported in status; retried on a timer
	}
	nodes, err := conn.Nodes(ctx)
	if err != nil {
		reconcile.MarkFailed(&st.Conditions, m.Generation, swarmv1.ReasonClusterNotReady, "Listing the swarm's nodes: "+err.Error(), false)
		return ctrl.Result{RequeueAfter: clusterRetry}, nil //nolint:nilerr // reported in status; retried on a timer
	}
	// A selection that fails still returns the nodes it could resolve: held nodes among
	// them stay held for their window, the others are restored, and no node is taken.
	selected, reason, msg := placement.SelectNodes(m.Spec, nodes)
	if windowErr != nil {
		reason, msg = swarmv1.ReasonInvalidWindow, windowErr.Error()
	}
	p := r.newPass(m, conn, nodes, now)
	p.admitNew = reason == ""
	var rw rolloutWait
	rolloutsRead := true
	if p.admitNew {
		if rw, err = r.checkRollouts(ctx, m, selected, w, now); err != nil {
			p.errs = append(p.errs, err)
			p.admitNew, rolloutsRead = false, false
		}
		p.admitNew = p.admitNew && !rw.waiting(m)
	}
	p.run(ctx, selected, w)
	p.conclude(w)
	if reason == "" {
		// A pass that could not read the rollouts keeps the wait as it stood: the clock
		// of rolloutWaitTimeout runs from when the wait began.
		if rolloutsRead {
			r.recordRolloutWait(m, rw)
		}
		requeue := rolloutWaitRequeue(rw, now, p.requeueAfter(w))
		if m.Spec.Rebalance && w.Current == nil && len(p.errs) == 0 {
			d, err := p.rebalance(ctx)
			if err != nil {
				p.errs = append(p.errs, err)
			}
			if d > 0 {
				requeue = min(requeue, d)
			}
		}
		return ctrl.Result{RequeueAfter: requeue}, errors.Join(p.errs...)
	}
	stall(m, reason, msg)
	if windowErr != nil && len(heldNodes(st.Nodes)) == 0 && len(p.errs) == 0 {
		return ctrl.Result{}, crreconcile.TerminalError(windowErr)
	}
	// Node events and the periodic requeue bring us back: a node may join or get its labels.
	return ctrl.Result{RequeueAfter: p.requeueAfter(w)}, errors.Join(p.errs...)
}

// reconcileDelete puts every held node back before letting the resource go.
func (r *Reconciler) reconcileDelete(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (ctrl.Result, bool, error) {
	result, done, err := r.restoreForDeletion(ctx, m)
	if done {
		metrics.NodesInMaintenance.DeleteLabelValues(m.Namespace, m.Name)
		metrics.MaintenanceInWindow.DeleteLabelValues(m.Namespace, m.Name)
		metrics.MaintenanceWaitingForRollouts.DeleteLabelValues(m.Namespace, m.Name)
		metrics.ServicesRebalanced.DeleteLabelValues(m.Namespace, m.Name)
	}
	return result, done, err
}

func (r *Reconciler) restoreForDeletion(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (ctrl.Result, bool, error) {
	st := &m.Status
	if len(heldNodes(st.Nodes)) == 0 {
		return ctrl.Result{}, true, nil
	}
	conn, err := r.connect(ctx, m)
	if errors.Is(err, reconcile.ErrClusterGone) {
		// Nobody can reach that swarm any more: keeping the finalizer would only block the
		// deletion forever. Say loudly what stays as it is.
		r.Recorder.Eventf(m, corev1.EventTypeWarning, "NodesNotRestored", "Nodes %s stay as they are: %v",
			strings.Join(heldNodes(st.Nodes), ", "), err)
		return ctrl.Result{}, true, nil
	}
	var nodes []swarmtypes.Node
	if err == nil {
		nodes, err = conn.Nodes(ctx)
	}
	if err != nil {
		st.Phase = swarmv1.PhaseRestoring
		reconcile.MarkFailed(&st.Conditions, m.Generation, swarmv1.ReasonClusterNotReady, "Restoring nodes before deletion: "+err.Error(), false)
		return ctrl.Result{RequeueAfter: clusterRetry}, false, nil //nolint:nilerr // reported in status; retried on a timer
	}
	p := r.newPass(m, conn, nodes, r.Now())
	for i := range st.Nodes {
		if st.Nodes[i].Held() {
			p.restore(ctx, &st.Nodes[i])
		}
	}
	if left := heldNodes(st.Nodes); len(left) > 0 {
		st.Phase = swarmv1.PhaseRestoring
		reconcile.MarkReconciling(&st.Conditions, m.Generation, swarmv1.PhaseRestoring, "Restoring "+strings.Join(left, ", ")+" before deletion")
		return ctrl.Result{RequeueAfter: writeSoon}, false, errors.Join(p.errs...)
	}
	return ctrl.Result{}, true, nil
}

func (r *Reconciler) connect(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (swarm.Swarm, error) {
	return reconcile.Connect(ctx, r.Client, r.Swarms, m.Namespace, m.Spec.ClusterRef.Name)
}

// SetupWithManager watches SwarmNodeMaintenances, their SwarmClusters and the swarm's node
// events, so that drains and restores are seen as they happen.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &swarmv1.SwarmNodeMaintenance{}, reconcile.IndexClusterRef, reconcile.MaintenanceClusterRef); err != nil {
		return err
	}
	swarmEvents := make(chan event.GenericEvent, 1024)
	r.Hub.Subscribe(func(ev swarm.Event) {
		if ev.Type != events.NodeEventType {
			return
		}
		for _, key := range r.maintenancesOf(context.Background(), ev.Cluster.Namespace, ev.Cluster.Name) {
			reconcile.SendNonBlocking(swarmEvents, &swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		}
	})
	deleting := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return e.ObjectNew.GetDeletionTimestamp() != nil }}
	return ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmNodeMaintenance{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deleting))).
		Watches(&swarmv1.SwarmCluster{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []crreconcile.Request {
			keys := r.maintenancesOf(ctx, o.GetNamespace(), o.GetName())
			reqs := make([]crreconcile.Request, 0, len(keys))
			for _, k := range keys {
				reqs = append(reqs, crreconcile.Request{NamespacedName: k})
			}
			return reqs
		})).
		// A rollout that ends may be what a maintenance waits for.
		Watches(&swarmv1.SwarmStack{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []crreconcile.Request {
			keys := r.maintenancesOf(ctx, o.GetNamespace(), o.(*swarmv1.SwarmStack).Spec.ClusterRef.Name)
			reqs := make([]crreconcile.Request, 0, len(keys))
			for _, k := range keys {
				reqs = append(reqs, crreconcile.Request{NamespacedName: k})
			}
			return reqs
		}), builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(e event.UpdateEvent) bool { return rolloutOutcome(e.ObjectOld) != rolloutOutcome(e.ObjectNew) },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		// A maintenance that goes away may free nodes that others wait for.
		Watches(&swarmv1.SwarmNodeMaintenance{}, handler.EnqueueRequestsFromMapFunc(r.blockedMaintenances),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		WatchesRawSource(source.Channel(swarmEvents, &handler.EnqueueRequestForObject{})).
		Named("swarmnodemaintenance").
		Complete(r)
}

// rolloutOutcome is the outcome of a stack's newest rollout ("" without one).
func rolloutOutcome(o client.Object) string {
	if s, ok := o.(*swarmv1.SwarmStack); ok && len(s.Status.History) > 0 {
		return s.Status.History[0].Outcome + "/" + s.Status.History[0].StartedAt.String()
	}
	return ""
}

// maintenancesOf lists the maintenances of one SwarmCluster, from the informer cache.
func (r *Reconciler) maintenancesOf(ctx context.Context, namespace, cluster string) []ktypes.NamespacedName {
	var list swarmv1.SwarmNodeMaintenanceList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{reconcile.IndexClusterRef: cluster}); err != nil {
		return nil
	}
	out := make([]ktypes.NamespacedName, 0, len(list.Items))
	for _, m := range list.Items {
		out = append(out, ktypes.NamespacedName{Namespace: m.Namespace, Name: m.Name})
	}
	return out
}

// blockedMaintenances lists the Blocked maintenances, in every namespace, as overlaps are
// checked across namespaces.
func (r *Reconciler) blockedMaintenances(ctx context.Context, gone client.Object) []crreconcile.Request {
	var list swarmv1.SwarmNodeMaintenanceList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	var reqs []crreconcile.Request
	for _, m := range list.Items {
		if m.Status.Phase == swarmv1.PhaseBlocked && m.UID != gone.GetUID() {
			reqs = append(reqs, crreconcile.Request{NamespacedName: ktypes.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
		}
	}
	return reqs
}
