package swarmnodemaintenance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/placement"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/window"
)

// This file is one reconcile's pass over a maintenance's nodes, in the order run takes
// its phases: sync the status entries with the selection, restore the nodes the window
// no longer wants, progress (write) the held ones, admit new ones through the guards,
// and follow the drains.

// Per-node state is read from status.nodes alone (see the reconciler's comment), by the
// entry's methods: Held, WritePending, UsesSlot.

// heldNodes names the nodes the maintenance holds.
func heldNodes(entries []swarmv1.MaintenanceNodeStatus) []string {
	var out []string
	for i := range entries {
		if entries[i].Held() {
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
	// admitNew is false when the selection or the window failed: held nodes are still
	// looked after and restored, but no new node is taken.
	admitNew bool

	// reader reads the other maintenances from the API server (see freshOthers).
	reader     client.Reader
	others     []swarmv1.SwarmNodeMaintenance
	othersRead bool

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

func (r *Reconciler) newPass(m *swarmv1.SwarmNodeMaintenance, conn swarm.Swarm, nodes []swarmtypes.Node, now time.Time) *maintenancePass {
	p := &maintenancePass{m: m, rec: r.Recorder, conn: conn, now: now, nodes: nodes, byID: map[string]swarmtypes.Node{},
		target: swarmtypes.NodeAvailabilityDrain, admitNew: true, reader: r.APIReader, justDrained: map[string]bool{}}
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
func (p *maintenancePass) run(ctx context.Context, selected []swarmtypes.Node, w window.Position) {
	var windowStart *time.Time
	if w.Current != nil {
		windowStart = &w.Current.Start
	}
	wanted := p.syncEntries(selected, windowStart)
	var draining []*swarmv1.MaintenanceNodeStatus
	st := &p.m.Status
	for i := range st.Nodes {
		e := &st.Nodes[i]
		switch {
		case e.Held() && !wanted[e.ID]:
			p.restore(ctx, e)
		case e.Held():
			if p.progress(ctx, e) {
				draining = append(draining, e)
			}
		default:
			if n, ok := p.byID[e.ID]; ok {
				e.Availability = string(n.Spec.Availability)
			}
		}
	}
	if windowStart != nil && p.admitNew {
		p.admit(ctx, wanted)
	}
	p.followDrains(ctx, draining)
	// Nodes that left the selection are listed only while they still have to be restored.
	kept := st.Nodes[:0]
	for _, e := range st.Nodes {
		if _, ok := wanted[e.ID]; ok || e.Held() {
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
		e.Name, e.Role = placement.Hostname(n), string(n.Spec.Role)
		wanted[n.ID] = windowStart != nil
		out = append(out, e)
	}
	for _, e := range st.Nodes {
		if _, gone := old[e.ID]; gone && e.Held() {
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
	if e.WritePending() {
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
	// Right before the write (or before taking a drain found in place as ours), ask the
	// API server, not the cache, whether another maintenance holds the node.
	o, oe, err := p.heldElsewhere(ctx, e.ID)
	if err != nil {
		e.Message = "Checking other maintenances failed, retrying: " + err.Error()
		p.errs = append(p.errs, fmt.Errorf("node %s: %w", e.Name, err))
		p.soon(writeSoon)
		return false
	}
	if o != nil && (string(observed) != e.PreviousAvailability || oe.DrainedAt != nil || olderThan(o, p.m)) {
		// A drain found in place while another maintenance holds the node is theirs, not
		// a write of ours whose status patch was lost; and when both recorded the node
		// (a lagging cache), the one that wrote, or else the older one, keeps it.
		p.drop(e, observed, fmt.Sprintf("node %s is in maintenance by SwarmNodeMaintenance %s/%s", e.Name, o.Namespace, o.Name))
		return false
	}
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

// drop gives up a claim that never became a write: the node is someone else's. The
// entry becomes a candidate again, which admit then finds blocked by the overlap.
func (p *maintenancePass) drop(e *swarmv1.MaintenanceNodeStatus, observed swarmtypes.NodeAvailability, why string) {
	e.PreviousAvailability = ""
	e.DrainedAt = nil
	e.Availability = string(observed)
	e.TasksRemaining = 0
	e.Message = "Blocked: " + why
	p.rec.Eventf(p.m, corev1.EventTypeWarning, swarmv1.ReasonOverlap, "Node %s: %s; not taken", e.Name, why)
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
	if e.WritePending() && strictness(observed) > strictness(prev) {
		// The write may have happened right before a restart lost its status patch;
		// unless another maintenance holds the node: then the drain is theirs.
		o, _, err := p.heldElsewhere(ctx, e.ID)
		if err != nil {
			e.Message = "Checking other maintenances failed, retrying: " + err.Error()
			p.errs = append(p.errs, fmt.Errorf("node %s: %w", e.Name, err))
			p.soon(writeSoon)
			return
		}
		if o != nil {
			e.RestoredAt = &now
			e.Availability = string(observed)
			e.TasksRemaining = 0
			e.Message = fmt.Sprintf("Not restored: never set by this maintenance; it is %s by SwarmNodeMaintenance %s/%s", observed, o.Namespace, o.Name)
			return
		}
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
//
// A worker already as far out as the window wants is taken as it is, before the guards
// and without a slot: it takes no capacity away that is not already gone. A manager
// taken as it is goes through the slots and the quorum guard like any other: what
// endangers quorum is its reboot during the window, not its availability.
func (p *maintenancePass) admit(ctx context.Context, wanted map[string]bool) {
	st := &p.m.Status
	slots := int(max(p.m.Spec.MaxConcurrent, 1))
	var candidates []*swarmv1.MaintenanceNodeStatus
	for i := range st.Nodes {
		e := &st.Nodes[i]
		switch {
		case e.UsesSlot():
			slots--
		case wanted[e.ID] && e.PreviousAvailability == "":
			candidates = append(candidates, e)
		}
	}
	if len(candidates) == 0 {
		return
	}
	// Overlaps and the quorum count read the other maintenances from the API server.
	if _, err := p.freshOthers(ctx); err != nil {
		p.errs = append(p.errs, fmt.Errorf("listing the other maintenances: %w", err))
		p.soon(writeSoon)
		return
	}
	p.orderCandidates(candidates)
	held := p.heldSet()
	managerWaiting := false
	for _, e := range candidates {
		node := p.byID[e.ID]
		observed := node.Spec.Availability
		e.Availability = string(observed)
		e.TasksRemaining = 0
		if msg := p.overlap(e.ID); msg != "" {
			p.block(e, swarmv1.ReasonOverlap, msg)
			managerWaiting = managerWaiting || placement.IsManager(node)
			continue
		}
		asIs := strictness(observed) >= strictness(p.target)
		if asIs && !placement.IsManager(node) {
			p.takeAsIs(e, observed)
			continue
		}
		if slots <= 0 {
			e.Message = fmt.Sprintf("Waiting for a free slot: maxConcurrent is %d", max(p.m.Spec.MaxConcurrent, 1))
			p.waiting = append(p.waiting, e.Name)
			managerWaiting = managerWaiting || placement.IsManager(node)
			continue
		}
		if p.preserveQuorum() {
			if msg := placement.QuorumGuard(node, p.nodes, held); msg != "" {
				p.block(e, swarmv1.ReasonQuorumGuard, msg)
				managerWaiting = managerWaiting || placement.IsManager(node)
				continue
			}
			if placement.IsLeader(node) && managerWaiting {
				e.Message = "Waiting: the leader enters maintenance after the other managers"
				p.waiting = append(p.waiting, e.Name)
				continue
			}
		}
		if !asIs {
			if stops := p.servicesStopping(ctx, node, held); len(stops) > 0 {
				p.block(e, swarmv1.ReasonServiceGuard, fmt.Sprintf("%s of node %s would stop services: %s", p.target, e.Name, strings.Join(stops, "; ")))
				managerWaiting = managerWaiting || placement.IsManager(node)
				continue
			}
		}
		held[e.ID] = true
		slots--
		if asIs {
			p.takeAsIs(e, observed)
			continue
		}
		e.PreviousAvailability = string(observed)
		e.DrainedAt = nil
		e.Message = fmt.Sprintf("Previous availability %s recorded: setting %s", observed, p.target)
		p.soon(writeSoon)
	}
}

// orderCandidates takes workers first and the leader last: the leader's reboot forces an
// election, best made while every other manager is back.
func (p *maintenancePass) orderCandidates(c []*swarmv1.MaintenanceNodeStatus) {
	rank := func(e *swarmv1.MaintenanceNodeStatus) int {
		n := p.byID[e.ID]
		switch {
		case placement.IsLeader(n):
			return 2
		case placement.IsManager(n):
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

// heldSet is every node held by this or any other maintenance, written or about to be.
// It is what "down" means to the guards. For quorum: a held manager is about to reboot
// whatever its availability was, while a manager drained by design (drained, and held by
// no maintenance) that Raft still reaches votes like any other, so it is not down; an
// unreachable one the quorum guard sees by itself. The service guard skips nodes that
// are not active by itself.
func (p *maintenancePass) heldSet() map[string]bool {
	set := map[string]bool{}
	for i := range p.m.Status.Nodes {
		if p.m.Status.Nodes[i].Held() {
			set[p.m.Status.Nodes[i].ID] = true
		}
	}
	for _, o := range p.others {
		for i := range o.Status.Nodes {
			if o.Status.Nodes[i].Held() {
				set[o.Status.Nodes[i].ID] = true
			}
		}
	}
	return set
}

// freshOthers lists every other SwarmNodeMaintenance, in all namespaces (two
// SwarmClusters can name the same swarm, and node IDs are unique across swarms), from
// the API server rather than the cache: a cache that lags behind a status another
// maintenance has just written would let both hold one node. Read once per pass, and
// only by a pass about to record or write a node.
func (p *maintenancePass) freshOthers(ctx context.Context) ([]swarmv1.SwarmNodeMaintenance, error) {
	if p.othersRead {
		return p.others, nil
	}
	var list swarmv1.SwarmNodeMaintenanceList
	if err := p.reader.List(ctx, &list); err != nil {
		return nil, err
	}
	p.others = make([]swarmv1.SwarmNodeMaintenance, 0, len(list.Items))
	for _, o := range list.Items {
		if o.UID != p.m.UID {
			p.others = append(p.others, o)
		}
	}
	p.othersRead = true
	return p.others, nil
}

// heldElsewhere returns the other maintenance that holds the node, and its entry, if any,
// as the API server has it now.
func (p *maintenancePass) heldElsewhere(ctx context.Context, nodeID string) (*swarmv1.SwarmNodeMaintenance, *swarmv1.MaintenanceNodeStatus, error) {
	others, err := p.freshOthers(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the other maintenances: %w", err)
	}
	for i := range others {
		for j := range others[i].Status.Nodes {
			if oe := &others[i].Status.Nodes[j]; oe.ID == nodeID && oe.Held() {
				return &others[i], oe, nil
			}
		}
	}
	return nil, nil, nil
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
			if oe.Held() {
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
	w, err := window.MaintenanceAt(m.Spec.Window, m.CreationTimestamp.Time, now)
	return err == nil && w.Current != nil
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
	return placement.ServicesThatWouldStop(node, p.nodes, svcs, down)
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
	timeout := reconcile.DurationOr(p.m.Spec.DrainTimeout, defaultDrainTimeout)
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
			name = reconcile.ShortID(t.ServiceID)
		}
		if t.Slot > 0 {
			name = fmt.Sprintf("%s.%d", name, t.Slot)
		}
		out = append(out, fmt.Sprintf("%s (%s)", name, t.Status.State))
	}
	sort.Strings(out)
	return out
}
