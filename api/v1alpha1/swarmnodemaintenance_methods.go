package v1alpha1

import "time"

// What other kinds need to know of a maintenance, read from its status alone: the stack
// reconciler holds revisions while a maintenance drains, and the maintenance reconciler
// decides its own steps from the same facts.

// nodeRoleManager is Swarm's manager role as MaintenanceNodeStatus.Role records it.
const nodeRoleManager = "manager"

// Held tells whether the operator took the node and has not let it go yet.
func (e *MaintenanceNodeStatus) Held() bool {
	return e.PreviousAvailability != "" && e.RestoredAt == nil
}

// WritePending tells whether the node's previous availability is recorded but the new
// one not yet written.
func (e *MaintenanceNodeStatus) WritePending() bool { return e.Held() && e.DrainedAt == nil }

// UsesSlot tells whether the node counts against maxConcurrent: a node the operator takes
// capacity from does; a worker that was already out before the window does not. A
// manager always does, even one taken as it was: its reboot, not its availability, is
// what endangers quorum.
func (e *MaintenanceNodeStatus) UsesSlot() bool {
	return e.Held() && (e.DrainedAt == nil || e.Availability != e.PreviousAvailability ||
		e.Role == nodeRoleManager)
}

// FirstDrainedAt is when the maintenance first set a node it still holds (zero if none
// yet): when its drain started.
func (m *SwarmNodeMaintenance) FirstDrainedAt() time.Time {
	var first time.Time
	for i := range m.Status.Nodes {
		e := &m.Status.Nodes[i]
		if e.Held() && e.DrainedAt != nil && (first.IsZero() || e.DrainedAt.Time.Before(first)) {
			first = e.DrainedAt.Time
		}
	}
	return first
}
