package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/swarm"
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

// errClusterGone says the referenced SwarmCluster does not exist.
var errClusterGone = errors.New("SwarmCluster not found")

// SwarmNodeMaintenanceReconciler drains nodes for maintenance windows and puts each one
// back to the availability it had before.
//
// Conditions:
//   - Ready is True while the resource is where it should be at this instant: Pending
//     before a window (nothing held), InMaintenance (every node that may be is drained)
//     or Completed (a one-off window ended and its nodes were restored). It is False with
//     Reconciling=True while nodes are Draining or Restoring; False with the guard's
//     reason while Blocked; False with DrainTimeout when tasks did not leave in time; and
//     False with Stalled=True for input only the user can fix (InvalidWindow,
//     UnknownNode, NoNodesSelected): then no node is touched, and nodes already held stay
//     held until the spec is fixed or the resource deleted.
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
// are taken as they are: nothing is written, nothing restored, and they use no slot of
// maxConcurrent (they take no capacity away that is not already gone).
type SwarmNodeMaintenanceReconciler struct {
	client.Client
	// APIReader reads the reconciled object itself, bypassing the cache.
	APIReader client.Reader
	// Hub streams the swarms' events (SetupWithManager); Swarms opens them.
	Hub      *swarm.Hub
	Swarms   Swarms
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
func (r *SwarmNodeMaintenanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return lifecycle[*swarmv1.SwarmNodeMaintenance]{
		client: r.Client, apiReader: r.APIReader, finalizer: maintenanceFinalizer,
		newObject: func() *swarmv1.SwarmNodeMaintenance { return &swarmv1.SwarmNodeMaintenance{} },
		status:    func(m *swarmv1.SwarmNodeMaintenance) any { return m.Status },
		observed:  func(m *swarmv1.SwarmNodeMaintenance) { m.Status.ObservedGeneration = m.Generation },
		normal:    r.reconcileNormal,
		remove:    r.reconcileDelete,
		afterPass: r.afterPass,
	}.reconcile(ctx, req)
}

// afterPass announces what changed and exports the maintenance's gauges.
func (r *SwarmNodeMaintenanceReconciler) afterPass(before, m *swarmv1.SwarmNodeMaintenance) {
	r.recordTransition(&before.Status, m)
	metrics.NodesInMaintenance.WithLabelValues(m.Namespace, m.Name).Set(float64(len(heldNodes(m.Status.Nodes))))
	inWindow := 0.0
	if meta.IsStatusConditionTrue(m.Status.Conditions, swarmv1.ConditionInWindow) {
		inWindow = 1
	}
	metrics.MaintenanceInWindow.WithLabelValues(m.Namespace, m.Name).Set(inWindow)
}

func (r *SwarmNodeMaintenanceReconciler) reconcileNormal(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (ctrl.Result, error) {
	st := &m.Status
	now := r.Now()
	w, err := computeWindows(m.Spec.Window, m.CreationTimestamp.Time, now)
	if err != nil {
		st.CurrentWindow, st.NextWindow = nil, nil
		setCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionUnknown, swarmv1.ReasonInvalidWindow, err.Error())
		stall(m, swarmv1.ReasonInvalidWindow, err.Error())
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	st.CurrentWindow, st.NextWindow = windowTimes(w.current), windowTimes(w.next)
	setWindowCondition(m, w)

	conn, err := r.connect(ctx, m)
	if err != nil {
		markFailed(&st.Conditions, m.Generation, swarmv1.ReasonClusterNotReady, err.Error(), false)
		return ctrl.Result{RequeueAfter: clusterRetry}, nil //nolint:nilerr // reported in status; retried on a timer
	}
	nodes, err := conn.Nodes(ctx)
	if err != nil {
		markFailed(&st.Conditions, m.Generation, swarmv1.ReasonClusterNotReady, "Listing the swarm's nodes: "+err.Error(), false)
		return ctrl.Result{RequeueAfter: clusterRetry}, nil //nolint:nilerr // reported in status; retried on a timer
	}
	selected, reason, msg := selectNodes(m.Spec, nodes)
	if reason != "" {
		// Node events and the periodic requeue bring us back: a node may join or get its labels.
		stall(m, reason, msg)
		return ctrl.Result{RequeueAfter: maintenanceMaxWait}, nil
	}
	others, err := r.otherMaintenances(ctx, m)
	if err != nil {
		return ctrl.Result{}, err
	}
	p := r.newPass(m, conn, nodes, now)
	p.others = others
	p.run(ctx, selected, w)
	p.conclude(w)
	return ctrl.Result{RequeueAfter: p.requeueAfter(w)}, errors.Join(p.errs...)
}

// reconcileDelete puts every held node back before letting the resource go.
func (r *SwarmNodeMaintenanceReconciler) reconcileDelete(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (ctrl.Result, bool, error) {
	result, done, err := r.restoreForDeletion(ctx, m)
	if done {
		metrics.NodesInMaintenance.DeleteLabelValues(m.Namespace, m.Name)
		metrics.MaintenanceInWindow.DeleteLabelValues(m.Namespace, m.Name)
	}
	return result, done, err
}

func (r *SwarmNodeMaintenanceReconciler) restoreForDeletion(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (ctrl.Result, bool, error) {
	st := &m.Status
	if len(heldNodes(st.Nodes)) == 0 {
		return ctrl.Result{}, true, nil
	}
	conn, err := r.connect(ctx, m)
	if errors.Is(err, errClusterGone) {
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
		markFailed(&st.Conditions, m.Generation, swarmv1.ReasonClusterNotReady, "Restoring nodes before deletion: "+err.Error(), false)
		return ctrl.Result{RequeueAfter: clusterRetry}, false, nil //nolint:nilerr // reported in status; retried on a timer
	}
	p := r.newPass(m, conn, nodes, r.Now())
	for i := range st.Nodes {
		if held(&st.Nodes[i]) {
			p.restore(ctx, &st.Nodes[i])
		}
	}
	if left := heldNodes(st.Nodes); len(left) > 0 {
		st.Phase = swarmv1.PhaseRestoring
		markReconciling(&st.Conditions, m.Generation, swarmv1.PhaseRestoring, "Restoring "+strings.Join(left, ", ")+" before deletion")
		return ctrl.Result{RequeueAfter: writeSoon}, false, errors.Join(p.errs...)
	}
	return ctrl.Result{}, true, nil
}

func (r *SwarmNodeMaintenanceReconciler) connect(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) (swarm.Swarm, error) {
	var cluster swarmv1.SwarmCluster
	if err := r.Get(ctx, ktypes.NamespacedName{Namespace: m.Namespace, Name: m.Spec.ClusterRef.Name}, &cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %q", errClusterGone, m.Spec.ClusterRef.Name)
		}
		return nil, err
	}
	if err := clusterNotReady(&cluster); err != nil {
		return nil, err
	}
	conn, err := r.Swarms.Open(ctx, r.Client, &cluster)
	if err != nil {
		return nil, fmt.Errorf("SwarmCluster %q: %w", cluster.Name, err)
	}
	return conn, nil
}

// otherMaintenances lists every other SwarmNodeMaintenance, in all namespaces: two
// SwarmClusters can name the same swarm, and node IDs are unique across swarms.
func (r *SwarmNodeMaintenanceReconciler) otherMaintenances(ctx context.Context, m *swarmv1.SwarmNodeMaintenance) ([]swarmv1.SwarmNodeMaintenance, error) {
	var list swarmv1.SwarmNodeMaintenanceList
	if err := r.List(ctx, &list); err != nil {
		return nil, err
	}
	out := make([]swarmv1.SwarmNodeMaintenance, 0, len(list.Items))
	for _, o := range list.Items {
		if o.UID != m.UID {
			out = append(out, o)
		}
	}
	return out, nil
}

// stall reports input only the user can fix. Nothing is touched: nodes already held stay
// in maintenance rather than come back in the middle of someone's work.
func stall(m *swarmv1.SwarmNodeMaintenance, reason, msg string) {
	st := &m.Status
	if held := heldNodes(st.Nodes); len(held) > 0 {
		msg += fmt.Sprintf("; %s stay in maintenance until the spec is fixed or the resource is deleted", strings.Join(held, ", "))
	}
	st.Phase = swarmv1.PhaseFailed
	meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionBlocked)
	markFailed(&st.Conditions, m.Generation, reason, msg, true)
}

func setWindowCondition(m *swarmv1.SwarmNodeMaintenance, w windows) {
	st := &m.Status
	switch {
	case w.current != nil && w.current.openEnded():
		setCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionTrue, swarmv1.ReasonWindowOpen,
			"No window is set: in maintenance from creation until deletion")
	case w.current != nil:
		setCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionTrue, swarmv1.ReasonWindowOpen,
			fmt.Sprintf("Window open from %s until %s", stamp(w.current.start), stamp(w.current.end)))
	case w.next != nil:
		setCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionFalse, swarmv1.ReasonWindowClosed,
			fmt.Sprintf("Next window from %s until %s", stamp(w.next.start), stamp(w.next.end)))
	default:
		setCondition(&st.Conditions, m.Generation, swarmv1.ConditionInWindow, metav1.ConditionFalse, swarmv1.ReasonWindowClosed,
			"The window is over")
	}
}

func windowTimes(s *span) *swarmv1.WindowTimes {
	if s == nil {
		return nil
	}
	wt := &swarmv1.WindowTimes{Start: metav1.NewTime(s.start)}
	if !s.openEnded() {
		end := metav1.NewTime(s.end)
		wt.End = &end
	}
	return wt
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// recordTransition announces phase changes (node-level steps are announced as they
// happen).
func (r *SwarmNodeMaintenanceReconciler) recordTransition(before *swarmv1.SwarmNodeMaintenanceStatus, m *swarmv1.SwarmNodeMaintenance) {
	st := &m.Status
	if w := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionInWindow); w != nil {
		wasOpen := meta.IsStatusConditionTrue(before.Conditions, swarmv1.ConditionInWindow)
		switch {
		case w.Status == metav1.ConditionTrue && !wasOpen:
			r.Recorder.Event(m, corev1.EventTypeNormal, swarmv1.ReasonWindowOpen, withReason(m, w.Message))
		case w.Status == metav1.ConditionFalse && wasOpen:
			r.Recorder.Event(m, corev1.EventTypeNormal, swarmv1.ReasonWindowClosed, w.Message)
		}
	}
	if b := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionBlocked); b != nil {
		if old := meta.FindStatusCondition(before.Conditions, swarmv1.ConditionBlocked); old == nil || old.Message != b.Message {
			r.Recorder.Event(m, corev1.EventTypeWarning, b.Reason, b.Message)
		}
	}
	ready := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionReady)
	if ready == nil || st.Phase == before.Phase {
		return
	}
	switch st.Phase {
	case swarmv1.PhaseFailed:
		r.Recorder.Event(m, corev1.EventTypeWarning, ready.Reason, ready.Message)
	case swarmv1.PhaseInMaintenance, swarmv1.PhaseCompleted:
		r.Recorder.Event(m, corev1.EventTypeNormal, ready.Reason, ready.Message)
	}
}

func withReason(m *swarmv1.SwarmNodeMaintenance, msg string) string {
	if m.Spec.Reason == "" {
		return msg
	}
	return msg + " (" + m.Spec.Reason + ")"
}

// Per-node state, read from status.nodes alone (see the reconciler's comment).

// held: the operator took the node and has not let it go yet.
func held(e *swarmv1.MaintenanceNodeStatus) bool {
	return e.PreviousAvailability != "" && e.RestoredAt == nil
}

// writePending: the previous availability is recorded, the new one not yet written.
func writePending(e *swarmv1.MaintenanceNodeStatus) bool { return held(e) && e.DrainedAt == nil }

// usesSlot: a node the operator takes capacity from counts against maxConcurrent; a node
// that was already out before the window does not.
func usesSlot(e *swarmv1.MaintenanceNodeStatus) bool {
	return held(e) && (e.DrainedAt == nil || e.Availability != e.PreviousAvailability)
}

func heldNodes(entries []swarmv1.MaintenanceNodeStatus) []string {
	var out []string
	for i := range entries {
		if held(&entries[i]) {
			out = append(out, entries[i].Name)
		}
	}
	return out
}

// strictness orders availabilities: drain takes more away than pause, pause more than active.
func strictness(a swarmtypes.NodeAvailability) int {
	switch a {
	case swarmtypes.NodeAvailabilityDrain:
		return 2
	case swarmtypes.NodeAvailabilityPause:
		return 1
	}
	return 0
}

// maintenancePass is the work of one reconcile on one SwarmNodeMaintenance. It lives for
// that reconcile only: the reconciler itself is shared by concurrent workers.
type maintenancePass struct {
	m      *swarmv1.SwarmNodeMaintenance
	rec    record.EventRecorder
	conn   swarm.Swarm
	now    time.Time
	nodes  []swarmtypes.Node
	byID   map[string]swarmtypes.Node
	target swarmtypes.NodeAvailability
	others []swarmv1.SwarmNodeMaintenance

	services     []swarmtypes.Service
	servicesRead bool

	// What the pass found, for conditions and requeue.
	blocked  []blockedNode
	timedOut []string
	draining []string
	waiting  []string
	left     []string
	wait     time.Duration
	errs     []error
	// justDrained: nodes whose drain this pass wrote (or confirmed after a restart).
	justDrained map[string]bool
}

type blockedNode struct{ reason, message string }

func (r *SwarmNodeMaintenanceReconciler) newPass(m *swarmv1.SwarmNodeMaintenance, conn swarm.Swarm, nodes []swarmtypes.Node, now time.Time) *maintenancePass {
	p := &maintenancePass{m: m, rec: r.Recorder, conn: conn, now: now, nodes: nodes, byID: map[string]swarmtypes.Node{},
		target: swarmtypes.NodeAvailabilityDrain, justDrained: map[string]bool{}}
	if m.Spec.Availability == string(swarmtypes.NodeAvailabilityPause) {
		p.target = swarmtypes.NodeAvailabilityPause
	}
	for _, n := range nodes {
		p.byID[n.ID] = n
	}
	return p
}

func (p *maintenancePass) soon(d time.Duration) {
	if p.wait == 0 || d < p.wait {
		p.wait = d
	}
}

// run brings every node one step closer to where the window wants it.
func (p *maintenancePass) run(ctx context.Context, selected []swarmtypes.Node, w windows) {
	var windowStart *time.Time
	if w.current != nil {
		windowStart = &w.current.start
	}
	wanted := p.syncEntries(selected, windowStart)
	var draining []*swarmv1.MaintenanceNodeStatus
	st := &p.m.Status
	for i := range st.Nodes {
		e := &st.Nodes[i]
		switch {
		case held(e) && !wanted[e.ID]:
			p.restore(ctx, e)
		case held(e):
			if p.progress(ctx, e) {
				draining = append(draining, e)
			}
		default:
			if n, ok := p.byID[e.ID]; ok {
				e.Availability = string(n.Spec.Availability)
			}
		}
	}
	if windowStart != nil {
		p.admit(ctx, wanted)
	}
	p.followDrains(ctx, draining)
	// Nodes that left the selection are listed only while they still have to be restored.
	kept := st.Nodes[:0]
	for _, e := range st.Nodes {
		if _, ok := wanted[e.ID]; ok || held(&e) {
			kept = append(kept, e)
		}
	}
	st.Nodes = kept
}

// syncEntries lists the selected nodes in status (plus held nodes that left the
// selection) and returns which nodes the window wants in maintenance now. An entry left
// over from an earlier window starts afresh.
func (p *maintenancePass) syncEntries(selected []swarmtypes.Node, windowStart *time.Time) map[string]bool {
	st := &p.m.Status
	old := make(map[string]swarmv1.MaintenanceNodeStatus, len(st.Nodes))
	for _, e := range st.Nodes {
		old[e.ID] = e
	}
	wanted := make(map[string]bool, len(selected))
	out := make([]swarmv1.MaintenanceNodeStatus, 0, len(selected))
	for _, n := range selected {
		e, ok := old[n.ID]
		delete(old, n.ID)
		if !ok || windowStart != nil && e.RestoredAt != nil && e.RestoredAt.Time.Before(*windowStart) {
			e = swarmv1.MaintenanceNodeStatus{ID: n.ID}
		}
		e.Name, e.Role = hostname(n), string(n.Spec.Role)
		wanted[n.ID] = windowStart != nil
		out = append(out, e)
	}
	for _, e := range st.Nodes {
		if _, gone := old[e.ID]; gone && held(&e) {
			out = append(out, e)
		}
	}
	st.Nodes = out
	return wanted
}

// progress looks after a held node the window still wants. It reports whether the node
// is drained and its tasks must be followed.
func (p *maintenancePass) progress(ctx context.Context, e *swarmv1.MaintenanceNodeStatus) bool {
	node := p.byID[e.ID]
	observed := node.Spec.Availability
	if writePending(e) {
		return p.write(ctx, e, observed)
	}
	if string(observed) != e.Availability {
		p.release(e, observed)
		return false
	}
	return observed == swarmtypes.NodeAvailabilityDrain && e.PreviousAvailability != e.Availability
}

// write sets the node's availability, its previous one having been recorded in an
// earlier reconcile.
func (p *maintenancePass) write(ctx context.Context, e *swarmv1.MaintenanceNodeStatus, observed swarmtypes.NodeAvailability) bool {
	log := ctrl.LoggerFrom(ctx).WithValues("node", e.Name)
	to := p.target
	switch {
	case observed == to:
		// Written before a restart, whose status patch was lost: previousAvailability
		// as recorded is still right.
	case strictness(observed) > strictness(to):
		// Someone took the node further out meanwhile: leave it as they want it.
		e.PreviousAvailability = string(observed)
		to = observed
	default:
		e.PreviousAvailability = string(observed)
		log.Info("Setting node availability", "from", observed, "to", to)
		if err := p.conn.SwapNodeAvailability(ctx, e.ID, observed, to); err != nil {
			e.Message = "Setting availability failed, retrying: " + err.Error()
			p.soon(writeSoon)
			if !errors.Is(err, swarm.ErrAvailabilityChanged) {
				p.errs = append(p.errs, fmt.Errorf("node %s: %w", e.Name, err))
			}
			return false
		}
		p.rec.Eventf(p.m, corev1.EventTypeNormal, "NodeDraining", "%s", withReason(p.m, fmt.Sprintf("Set node %s to %s (was %s)", e.Name, to, observed)))
	}
	now := metav1.NewTime(p.now)
	e.DrainedAt = &now
	e.Availability = string(to)
	e.TasksRemaining = 0
	if to == swarmtypes.NodeAvailabilityDrain && e.PreviousAvailability != e.Availability {
		e.Message = "Draining: waiting for its tasks to leave"
		p.justDrained[e.ID] = true
		return true
	}
	e.Message = fmt.Sprintf("In maintenance (%s)", to)
	if e.PreviousAvailability == e.Availability {
		e.Message = fmt.Sprintf("Already %s before the window: stays %s after it", to, to)
	}
	return false
}

// release lets go of a node whose availability someone else changed during the window:
// the operator does not fight them, and will not restore it.
func (p *maintenancePass) release(e *swarmv1.MaintenanceNodeStatus, observed swarmtypes.NodeAvailability) {
	now := metav1.NewTime(p.now)
	e.RestoredAt = &now
	e.TasksRemaining = 0
	e.Message = fmt.Sprintf("Availability changed to %s outside the operator (it had set %s): left as is, not restored", observed, e.Availability)
	e.Availability = string(observed)
	p.left = append(p.left, e.Name)
	p.rec.Eventf(p.m, corev1.EventTypeWarning, "NodeChangedOutside", "Node %s: %s", e.Name, e.Message)
}

// restore puts a held node back to its previous availability, but only if it still has
// the availability the operator set.
func (p *maintenancePass) restore(ctx context.Context, e *swarmv1.MaintenanceNodeStatus) {
	now := metav1.NewTime(p.now)
	node, ok := p.byID[e.ID]
	if !ok {
		e.RestoredAt = &now
		e.Message = "Not restored: the node is no longer part of the swarm"
		p.rec.Eventf(p.m, corev1.EventTypeWarning, "NodeNotRestored", "Node %s: %s", e.Name, e.Message)
		return
	}
	observed := node.Spec.Availability
	prev := swarmtypes.NodeAvailability(e.PreviousAvailability)
	ours := swarmtypes.NodeAvailability(e.Availability)
	if writePending(e) && strictness(observed) > strictness(prev) {
		// The write may have happened right before a restart lost its status patch.
		ours = observed
	}
	switch { //nolint:staticcheck // the cases compare observed with different values
	case observed == prev:
		e.RestoredAt = &now
		if ours == prev {
			e.Message = fmt.Sprintf("Left %s, as it was before the window", prev)
		} else {
			e.Message = fmt.Sprintf("Back to %s", prev)
		}
	case observed == ours:
		ctrl.LoggerFrom(ctx).Info("Restoring node availability", "node", e.Name, "from", observed, "to", prev)
		if err := p.conn.SwapNodeAvailability(ctx, e.ID, observed, prev); err != nil {
			e.Message = "Restoring failed, retrying: " + err.Error()
			p.soon(writeSoon)
			if !errors.Is(err, swarm.ErrAvailabilityChanged) {
				p.errs = append(p.errs, fmt.Errorf("node %s: %w", e.Name, err))
			}
			return
		}
		e.RestoredAt = &now
		e.Message = fmt.Sprintf("Restored to %s", prev)
		p.rec.Eventf(p.m, corev1.EventTypeNormal, "NodeRestored", "Restored node %s to %s", e.Name, prev)
	default:
		e.RestoredAt = &now
		e.Message = fmt.Sprintf("Not restored: availability was changed to %s outside the operator (it had set %s)", observed, ours)
		p.left = append(p.left, e.Name)
		p.rec.Eventf(p.m, corev1.EventTypeWarning, "NodeChangedOutside", "Node %s: %s", e.Name, e.Message)
		e.Availability = string(observed)
		return
	}
	// Restored (now or before a restart): the node has its previous availability again.
	e.Availability = string(prev)
	e.TasksRemaining = 0
}

// admit takes the nodes the window wants and that are not yet taken, as far as slots and
// guards allow. It only records their previous availability: the next reconcile writes.
func (p *maintenancePass) admit(ctx context.Context, wanted map[string]bool) {
	st := &p.m.Status
	slots := int(max(p.m.Spec.MaxConcurrent, 1))
	var candidates []*swarmv1.MaintenanceNodeStatus
	for i := range st.Nodes {
		e := &st.Nodes[i]
		switch {
		case usesSlot(e):
			slots--
		case wanted[e.ID] && e.PreviousAvailability == "":
			candidates = append(candidates, e)
		}
	}
	p.orderCandidates(candidates)
	down := p.downSet()
	managerWaiting := false
	for _, e := range candidates {
		node := p.byID[e.ID]
		observed := node.Spec.Availability
		e.Availability = string(observed)
		e.TasksRemaining = 0
		if msg := p.overlap(e.ID); msg != "" {
			p.block(e, swarmv1.ReasonOverlap, msg)
			managerWaiting = managerWaiting || isManager(node)
			continue
		}
		if strictness(observed) >= strictness(p.target) {
			p.takeAsIs(e, observed)
			continue
		}
		if slots <= 0 {
			e.Message = fmt.Sprintf("Waiting for a free slot: maxConcurrent is %d", max(p.m.Spec.MaxConcurrent, 1))
			p.waiting = append(p.waiting, e.Name)
			managerWaiting = managerWaiting || isManager(node)
			continue
		}
		if p.preserveQuorum() {
			if msg := quorumGuard(node, p.nodes, down); msg != "" {
				p.block(e, swarmv1.ReasonQuorumGuard, msg)
				managerWaiting = managerWaiting || isManager(node)
				continue
			}
			if isLeader(node) && managerWaiting {
				e.Message = "Waiting: the leader enters maintenance after the other managers"
				p.waiting = append(p.waiting, e.Name)
				continue
			}
		}
		if stops := p.servicesStopping(ctx, node, down); len(stops) > 0 {
			p.block(e, swarmv1.ReasonServiceGuard, fmt.Sprintf("%s of node %s would stop services: %s", p.target, e.Name, strings.Join(stops, "; ")))
			managerWaiting = managerWaiting || isManager(node)
			continue
		}
		e.PreviousAvailability = string(observed)
		e.DrainedAt = nil
		e.Message = fmt.Sprintf("Previous availability %s recorded: setting %s", observed, p.target)
		down[e.ID] = true
		slots--
		p.soon(writeSoon)
	}
}

// orderCandidates takes workers first and the leader last: the leader's reboot forces an
// election, best made while every other manager is back.
func (p *maintenancePass) orderCandidates(c []*swarmv1.MaintenanceNodeStatus) {
	rank := func(e *swarmv1.MaintenanceNodeStatus) int {
		n := p.byID[e.ID]
		switch {
		case isLeader(n):
			return 2
		case isManager(n):
			return 1
		}
		return 0
	}
	sort.SliceStable(c, func(i, j int) bool {
		if ri, rj := rank(c[i]), rank(c[j]); ri != rj {
			return ri < rj
		}
		return c[i].Name < c[j].Name
	})
}

// takeAsIs takes a node that is already as far out as the maintenance wants: nothing is
// written, and restoring it later changes nothing.
func (p *maintenancePass) takeAsIs(e *swarmv1.MaintenanceNodeStatus, observed swarmtypes.NodeAvailability) {
	now := metav1.NewTime(p.now)
	e.PreviousAvailability = string(observed)
	e.Availability = string(observed)
	e.DrainedAt = &now
	e.Message = fmt.Sprintf("Already %s before the window: stays %s after it", observed, observed)
	p.rec.Eventf(p.m, corev1.EventTypeNormal, "NodeAlreadyOut", "Node %s was already %s: taken as it is, and left %s after the window", e.Name, observed, observed)
}

func (p *maintenancePass) block(e *swarmv1.MaintenanceNodeStatus, reason, msg string) {
	e.Message = "Blocked: " + msg
	p.blocked = append(p.blocked, blockedNode{reason: reason, message: msg})
}

func (p *maintenancePass) preserveQuorum() bool {
	return p.m.Spec.PreserveQuorum == nil || *p.m.Spec.PreserveQuorum
}

// downSet is every node in maintenance: not active on the swarm, or held by this or any
// other maintenance (a held node may still be active for a moment before its write).
func (p *maintenancePass) downSet() map[string]bool {
	down := map[string]bool{}
	for _, n := range p.nodes {
		if n.Spec.Availability != swarmtypes.NodeAvailabilityActive {
			down[n.ID] = true
		}
	}
	for i := range p.m.Status.Nodes {
		if held(&p.m.Status.Nodes[i]) {
			down[p.m.Status.Nodes[i].ID] = true
		}
	}
	for _, o := range p.others {
		for i := range o.Status.Nodes {
			if held(&o.Status.Nodes[i]) {
				down[o.Status.Nodes[i].ID] = true
			}
		}
	}
	return down
}

// overlap says why another maintenance has the node: it holds it, or it is older and in
// its window wanting it too. The older one (by creation, then namespace/name) goes first.
func (p *maintenancePass) overlap(nodeID string) string {
	for i := range p.others {
		o := &p.others[i]
		for j := range o.Status.Nodes {
			oe := &o.Status.Nodes[j]
			if oe.ID != nodeID {
				continue
			}
			if held(oe) {
				return fmt.Sprintf("node %s is in maintenance by SwarmNodeMaintenance %s/%s", oe.Name, o.Namespace, o.Name)
			}
			if oe.PreviousAvailability == "" && o.DeletionTimestamp.IsZero() && olderThan(o, p.m) && inWindowAt(o, p.now) {
				return fmt.Sprintf("node %s is also wanted by the older SwarmNodeMaintenance %s/%s, which goes first", oe.Name, o.Namespace, o.Name)
			}
		}
	}
	return ""
}

func olderThan(a, b *swarmv1.SwarmNodeMaintenance) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

func inWindowAt(m *swarmv1.SwarmNodeMaintenance, now time.Time) bool {
	w, err := computeWindows(m.Spec.Window, m.CreationTimestamp.Time, now)
	return err == nil && w.current != nil
}

// servicesStopping runs the service guard; a pause keeps tasks where they are, so only a
// drain can stop a service.
func (p *maintenancePass) servicesStopping(ctx context.Context, node swarmtypes.Node, down map[string]bool) []string {
	if p.target != swarmtypes.NodeAvailabilityDrain {
		return nil
	}
	svcs, err := p.allServices(ctx)
	if err != nil {
		return []string{"cannot list the services to check: " + err.Error()}
	}
	return servicesThatWouldStop(node, p.nodes, svcs, down)
}

func (p *maintenancePass) allServices(ctx context.Context) ([]swarmtypes.Service, error) {
	if p.servicesRead {
		return p.services, nil
	}
	svcs, err := p.conn.AllServices(ctx)
	if err != nil {
		return nil, err
	}
	p.services, p.servicesRead = svcs, true
	return svcs, nil
}

// followDrains counts the tasks still on drained nodes; a node with none left is in
// maintenance.
func (p *maintenancePass) followDrains(ctx context.Context, entries []*swarmv1.MaintenanceNodeStatus) {
	if len(entries) == 0 {
		return
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	tasks, err := p.conn.TasksOnNodes(ctx, ids)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("listing tasks on drained nodes: %w", err))
		return
	}
	alive := map[string][]swarmtypes.Task{}
	for _, t := range tasks {
		if taskAlive(t) {
			alive[t.NodeID] = append(alive[t.NodeID], t)
		}
	}
	timeout := durationOr(p.m.Spec.DrainTimeout, defaultDrainTimeout)
	for _, e := range entries {
		left := alive[e.ID]
		was := e.TasksRemaining
		e.TasksRemaining = int32(len(left))
		if len(left) == 0 {
			if was > 0 || p.justDrained[e.ID] {
				p.rec.Eventf(p.m, corev1.EventTypeNormal, "NodeInMaintenance", "Node %s is drained: no task left on it", e.Name)
			}
			e.Message = "In maintenance: no task left on the node"
			continue
		}
		p.draining = append(p.draining, e.Name)
		p.soon(drainPoll)
		if p.now.Sub(e.DrainedAt.Time) <= timeout {
			e.Message = fmt.Sprintf("Draining: %d tasks still on the node", len(left))
			continue
		}
		names := p.taskNames(ctx, left)
		e.Message = fmt.Sprintf("Drain timeout: after %s these tasks are still on the node: %s", timeout, strings.Join(names, ", "))
		p.timedOut = append(p.timedOut, fmt.Sprintf("%s (%s)", e.Name, strings.Join(names, ", ")))
	}
}

// taskAlive: the task occupies its node (its container may still be stopping).
func taskAlive(t swarmtypes.Task) bool {
	switch t.Status.State {
	case swarmtypes.TaskStateNew, swarmtypes.TaskStateAllocated, swarmtypes.TaskStatePending, swarmtypes.TaskStateAssigned,
		swarmtypes.TaskStateAccepted, swarmtypes.TaskStatePreparing, swarmtypes.TaskStateReady, swarmtypes.TaskStateStarting,
		swarmtypes.TaskStateRunning:
		return true
	}
	return false
}

// taskNames names tasks as the docker CLI does: service.slot, or service alone for a
// global service's task.
func (p *maintenancePass) taskNames(ctx context.Context, tasks []swarmtypes.Task) []string {
	names := map[string]string{}
	if svcs, err := p.allServices(ctx); err == nil {
		for _, s := range svcs {
			names[s.ID] = s.Spec.Name
		}
	}
	out := make([]string, 0, len(tasks))
	for _, t := range tasks {
		name := names[t.ServiceID]
		if name == "" {
			name = shortID(t.ServiceID)
		}
		if t.Slot > 0 {
			name = fmt.Sprintf("%s.%d", name, t.Slot)
		}
		out = append(out, fmt.Sprintf("%s (%s)", name, t.Status.State))
	}
	sort.Strings(out)
	return out
}

// conclude sets the phase and the Ready and Blocked conditions from what the pass found.
func (p *maintenancePass) conclude(w windows) {
	st := &p.m.Status
	gen := p.m.Generation
	if len(p.blocked) > 0 {
		msgs := make([]string, 0, len(p.blocked))
		for _, b := range p.blocked {
			msgs = append(msgs, b.message)
		}
		setCondition(&st.Conditions, gen, swarmv1.ConditionBlocked, metav1.ConditionTrue, p.blocked[0].reason, strings.Join(msgs, "; "))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, swarmv1.ConditionBlocked)
	}
	var pending, inMaintenance []string
	for i := range st.Nodes {
		e := &st.Nodes[i]
		switch {
		case writePending(e):
			pending = append(pending, e.Name)
		case held(e):
			inMaintenance = append(inMaintenance, e.Name)
		}
	}
	inWindow := w.current != nil
	switch {
	case len(p.timedOut) > 0:
		st.Phase = swarmv1.PhaseFailed
		markFailed(&st.Conditions, gen, swarmv1.ReasonDrainTimeout,
			fmt.Sprintf("Tasks did not leave within %s: %s", durationOr(p.m.Spec.DrainTimeout, defaultDrainTimeout), strings.Join(p.timedOut, "; ")), false)
	case len(p.blocked) > 0:
		st.Phase = swarmv1.PhaseBlocked
		b := meta.FindStatusCondition(st.Conditions, swarmv1.ConditionBlocked)
		markFailed(&st.Conditions, gen, b.Reason, b.Message, false)
	case !inWindow && len(inMaintenance)+len(pending) > 0:
		st.Phase = swarmv1.PhaseRestoring
		markReconciling(&st.Conditions, gen, swarmv1.PhaseRestoring, "Restoring "+strings.Join(append(inMaintenance, pending...), ", "))
	case len(pending)+len(p.draining) > 0:
		st.Phase = swarmv1.PhaseDraining
		markReconciling(&st.Conditions, gen, swarmv1.PhaseDraining, "Draining "+strings.Join(append(pending, p.draining...), ", "))
	case inWindow:
		st.Phase = swarmv1.PhaseInMaintenance
		markReady(&st.Conditions, gen, swarmv1.ReasonNodesInMaintenance, p.inMaintenanceMessage(inMaintenance))
	case w.next == nil:
		st.Phase = swarmv1.PhaseCompleted
		markReady(&st.Conditions, gen, swarmv1.ReasonNodesRestored, "The window is over and every node is back"+p.leftNote())
	default:
		st.Phase = swarmv1.PhasePending
		markReady(&st.Conditions, gen, swarmv1.ReasonWindowClosed, "Next window starts at "+stamp(w.next.start)+p.leftNote())
	}
}

func (p *maintenancePass) inMaintenanceMessage(inMaintenance []string) string {
	msg := "No node in maintenance"
	if len(inMaintenance) > 0 {
		msg = "In maintenance: " + strings.Join(inMaintenance, ", ")
	}
	if len(p.waiting) > 0 {
		msg += "; waiting: " + strings.Join(p.waiting, ", ")
	}
	return msg + p.leftNote()
}

// leftNote names the nodes this pass let go because someone else changed them; their
// own messages keep the record afterwards.
func (p *maintenancePass) leftNote() string {
	if len(p.left) == 0 {
		return ""
	}
	return "; changed outside the operator and left as is: " + strings.Join(p.left, ", ")
}

// requeueAfter wakes the reconcile for the next step: a pending write, a drain to
// follow, a blocked node, or the window's next boundary, never later than
// maintenanceMaxWait.
func (p *maintenancePass) requeueAfter(w windows) time.Duration {
	d := maintenanceMaxWait
	if p.wait > 0 {
		d = min(d, p.wait)
	}
	if len(p.blocked)+len(p.waiting) > 0 {
		d = min(d, guardPoll)
	}
	var boundary time.Time
	switch {
	case w.current != nil && !w.current.openEnded():
		boundary = w.current.end
	case w.current == nil && w.next != nil:
		boundary = w.next.start
	}
	if !boundary.IsZero() {
		// A little past the boundary, so the clock has crossed it when we look.
		d = min(d, max(boundary.Sub(p.now), 0)+50*time.Millisecond)
	}
	return d
}

// SetupWithManager watches SwarmNodeMaintenances, their SwarmClusters and the swarm's node
// events, so that drains and restores are seen as they happen.
func (r *SwarmNodeMaintenanceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &swarmv1.SwarmNodeMaintenance{}, indexClusterRef,
		func(o client.Object) []string {
			return []string{o.(*swarmv1.SwarmNodeMaintenance).Spec.ClusterRef.Name}
		}); err != nil {
		return err
	}
	swarmEvents := make(chan event.GenericEvent, 1024)
	r.Hub.Subscribe(func(ev swarm.Event) {
		if ev.Type != events.NodeEventType {
			return
		}
		for _, key := range r.maintenancesOf(context.Background(), ev.Cluster.Namespace, ev.Cluster.Name) {
			sendNonBlocking(swarmEvents, &swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		}
	})
	deleting := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return e.ObjectNew.GetDeletionTimestamp() != nil }}
	return ctrl.NewControllerManagedBy(mgr).
		For(&swarmv1.SwarmNodeMaintenance{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deleting))).
		Watches(&swarmv1.SwarmCluster{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			keys := r.maintenancesOf(ctx, o.GetNamespace(), o.GetName())
			reqs := make([]reconcile.Request, 0, len(keys))
			for _, k := range keys {
				reqs = append(reqs, reconcile.Request{NamespacedName: k})
			}
			return reqs
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

// maintenancesOf lists the maintenances of one SwarmCluster, from the informer cache.
func (r *SwarmNodeMaintenanceReconciler) maintenancesOf(ctx context.Context, namespace, cluster string) []ktypes.NamespacedName {
	var list swarmv1.SwarmNodeMaintenanceList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexClusterRef: cluster}); err != nil {
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
func (r *SwarmNodeMaintenanceReconciler) blockedMaintenances(ctx context.Context, gone client.Object) []reconcile.Request {
	var list swarmv1.SwarmNodeMaintenanceList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, m := range list.Items {
		if m.Status.Phase == swarmv1.PhaseBlocked && m.UID != gone.GetUID() {
			reqs = append(reqs, reconcile.Request{NamespacedName: ktypes.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
		}
	}
	return reqs
}
