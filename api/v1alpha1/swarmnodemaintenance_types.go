package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phases of a SwarmNodeMaintenance.
const (
	PhasePending       = "Pending"
	PhaseDraining      = "Draining"
	PhaseInMaintenance = "InMaintenance"
	PhaseRestoring     = "Restoring"
	PhaseCompleted     = "Completed"
	PhaseBlocked       = "Blocked"
	PhaseFailed        = "Failed"
)

// Condition types and reasons of a SwarmNodeMaintenance.
const (
	ConditionInWindow = "InWindow"
	ConditionBlocked  = "Blocked"

	ReasonWindowOpen         = "WindowOpen"
	ReasonWindowClosed       = "WindowClosed"
	ReasonInvalidWindow      = "InvalidWindow"
	ReasonUnknownNode        = "UnknownNode"
	ReasonNoNodesSelected    = "NoNodesSelected"
	ReasonQuorumGuard        = "QuorumGuard"
	ReasonServiceGuard       = "ServiceWouldStop"
	ReasonOverlap            = "OverlappingMaintenance"
	ReasonDrainTimeout       = "DrainTimeout"
	ReasonNodesInMaintenance = "NodesInMaintenance"
	ReasonNodesRestored      = "NodesRestored"
	// ReasonRolloutInProgress: the maintenance waits (phase Pending) for rollouts of
	// SwarmStacks on its cluster that started before it; the message names them.
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonRolloutWaitTimeout: rollouts still ran after rolloutWaitTimeout; with
	// onRolloutWaitTimeout Proceed the maintenance goes on (an event says so), with Block
	// it stays Blocked until they end.
	ReasonRolloutWaitTimeout = "RolloutWaitTimeout"
	// EventRebalanced: services were force-updated to spread their tasks after a window.
	EventRebalanced = "Rebalanced"
	// ReasonRebalancing: after the window, services are being force-updated (Reconciling).
	ReasonRebalancing = "Rebalancing"
)

// What a maintenance does when rollouts still run after rolloutWaitTimeout.
const (
	OnRolloutWaitTimeoutProceed = "Proceed"
	OnRolloutWaitTimeoutBlock   = "Block"
)

// NodeSelector selects nodes by role and labels; both must match.
type NodeSelector struct {
	// Role: manager or worker.
	// +optional
	// +kubebuilder:validation:Enum=manager;worker
	Role string `json:"role,omitempty"`
	// Labels that the node's spec labels must all have.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// TimeWindow is a one-off window (start) or a recurring one (schedule in timeZone), each
// lasting duration: the window type of maintenance exclusions, SwarmStack.spec.freeze
// and SwarmCluster.spec.freeze. Cron in timeZone follows daylight saving as maintenance
// windows do.
// +kubebuilder:validation:XValidation:rule="has(self.start) != has(self.schedule)",message="set exactly one of start or schedule"
// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || has(self.schedule)",message="timeZone applies only to schedule"
// +kubebuilder:validation:XValidation:rule="duration(self.duration) > duration('0s')",message="duration must be positive, for example 2h"
type TimeWindow struct {
	// Start of a one-off window.
	// +optional
	Start *metav1.Time `json:"start,omitempty"`
	// Schedule of a recurring window, a 5-field cron expression.
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// TimeZone (IANA) in which schedule is read. Default UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Duration of each window.
	Duration metav1.Duration `json:"duration"`
}

// MaintenanceWindow is a one-off window (start) or a recurring one (schedule), each
// lasting duration. Absent: from now until the resource is deleted.
// +kubebuilder:validation:XValidation:rule="!(has(self.start) && has(self.schedule))",message="set start or schedule, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || has(self.schedule)",message="timeZone applies only to schedule"
// +kubebuilder:validation:XValidation:rule="duration(self.duration) > duration('0s')",message="duration must be positive, for example 2h"
type MaintenanceWindow struct {
	// Start of a one-off window.
	// +optional
	Start *metav1.Time `json:"start,omitempty"`
	// Schedule of a recurring window, a 5-field cron expression.
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// TimeZone (IANA) in which schedule is read. Default UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Duration of each window.
	Duration metav1.Duration `json:"duration"`
	// Exclude are blackout windows: no window starts inside one of them (a recurring
	// activation that falls inside is skipped; a one-off window that would start inside
	// one does not happen). A window already open runs to its end.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Exclude []TimeWindow `json:"exclude,omitempty"`
}

// SwarmNodeMaintenanceSpec is a drain window over some nodes.
// +kubebuilder:validation:XValidation:rule="(has(self.nodes) && size(self.nodes) > 0) || has(self.nodeSelector)",message="set nodes, nodeSelector or both"
// +kubebuilder:validation:XValidation:rule="!has(self.drainTimeout) || duration(self.drainTimeout) > duration('0s')",message="drainTimeout must be a positive duration, for example 10m"
type SwarmNodeMaintenanceSpec struct {
	ClusterRef LocalObjectReference `json:"clusterRef"`
	// Nodes by hostname or node ID.
	// +optional
	Nodes []string `json:"nodes,omitempty"`
	// NodeSelector selects nodes as an alternative or addition to nodes.
	// +optional
	NodeSelector *NodeSelector `json:"nodeSelector,omitempty"`
	// Availability set during the window: drain (default) or pause.
	// +optional
	// +kubebuilder:validation:Enum=drain;pause
	// +kubebuilder:default=drain
	Availability string `json:"availability,omitempty"`
	// +optional
	Window *MaintenanceWindow `json:"window,omitempty"`
	// MaxConcurrent nodes in maintenance at once. Default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=1
	MaxConcurrent int32 `json:"maxConcurrent,omitempty"`
	// DrainTimeout is how long tasks may take to leave a node. Default 10m.
	// +optional
	DrainTimeout *metav1.Duration `json:"drainTimeout,omitempty"`
	// PreserveQuorum: never more managers in maintenance than Raft tolerates, only while
	// all other managers are reachable, and the leader last. Default true.
	// +optional
	// +kubebuilder:default=true
	PreserveQuorum *bool `json:"preserveQuorum,omitempty"`
	// Reason is recorded in events.
	// +optional
	Reason string `json:"reason,omitempty"`
	// WaitForRollouts: before taking a node, wait (phase Pending, reason
	// RolloutInProgress) while a SwarmStack on the same SwarmCluster is rolling out and
	// that rollout started before this maintenance drained its first node of the window.
	// Default true; false drains regardless of rollouts.
	// +optional
	// +kubebuilder:default=true
	WaitForRollouts *bool `json:"waitForRollouts,omitempty"`
	// RolloutWaitTimeout bounds that wait, counted from when the maintenance began to
	// wait. Default 30m.
	// +optional
	RolloutWaitTimeout *metav1.Duration `json:"rolloutWaitTimeout,omitempty"`
	// OnRolloutWaitTimeout: Proceed (default) drains anyway after rolloutWaitTimeout and
	// says so in a Warning event; Block stays Blocked (reason RolloutWaitTimeout) until
	// the rollouts end.
	// +optional
	// +kubebuilder:validation:Enum=Proceed;Block
	// +kubebuilder:default=Proceed
	OnRolloutWaitTimeout string `json:"onRolloutWaitTimeout,omitempty"`
	// Rebalance: after the window, once every node is back, force-update (Swarm's
	// ForceUpdate, honouring each service's update_config) the replicated services
	// whose tasks are spread unevenly across the eligible nodes (the busiest node runs
	// two or more tasks more than the idlest), one stack at a time, each stack's updates
	// finished before the next. Services pinned to nodes by node.id or node.hostname
	// constraints are skipped. status.rebalance says which services were rebalanced.
	// Default false.
	// +optional
	Rebalance bool `json:"rebalance,omitempty"`
}

// WindowTimes is the start and end of one window.
type WindowTimes struct {
	Start metav1.Time `json:"start"`
	// +optional
	End *metav1.Time `json:"end,omitempty"`
}

// MaintenanceNodeStatus is the state of one node of the maintenance.
type MaintenanceNodeStatus struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"`
	Role string `json:"role,omitempty"`
	// PreviousAvailability is what the node had before the operator changed it; the node
	// returns to it after the window.
	// +optional
	PreviousAvailability string `json:"previousAvailability,omitempty"`
	// +optional
	Availability string `json:"availability,omitempty"`
	// +optional
	TasksRemaining int32 `json:"tasksRemaining"`
	// +optional
	DrainedAt *metav1.Time `json:"drainedAt,omitempty"`
	// +optional
	RestoredAt *metav1.Time `json:"restoredAt,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// SwarmNodeMaintenanceStatus is the state of the maintenance; it survives restarts.
type SwarmNodeMaintenanceStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Phase string `json:"phase,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	CurrentWindow *WindowTimes `json:"currentWindow,omitempty"`
	// +optional
	NextWindow *WindowTimes `json:"nextWindow,omitempty"`
	// +optional
	Nodes []MaintenanceNodeStatus `json:"nodes,omitempty"`
	// WaitingOn names the SwarmStacks (namespace/name) whose rollouts this maintenance
	// waits for; empty when it waits for none.
	// +optional
	WaitingOn []string `json:"waitingOn,omitempty"`
	// WaitingSince is when the current wait for rollouts began (rolloutWaitTimeout
	// counts from here).
	// +optional
	WaitingSince *metav1.Time `json:"waitingSince,omitempty"`
	// Rebalance is the spreading of services after the last window (spec.rebalance).
	// +optional
	Rebalance *RebalanceStatus `json:"rebalance,omitempty"`
}

// RebalanceStatus reports the rebalance that follows a window.
type RebalanceStatus struct {
	// After is when the window's last node was restored: the rebalance follows it.
	After metav1.Time `json:"after"`
	// Stack whose services are being force-updated now ("" when none).
	// +optional
	Stack string `json:"stack,omitempty"`
	// Services force-updated so far after this window.
	// +optional
	Services []string `json:"services,omitempty"`
	// FinishedAt is when every uneven service was rebalanced.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// SwarmNodeMaintenance drains nodes of a Swarm for a window and puts them back after.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterRef.name`
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.nodes[*].name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Next window",type=string,JSONPath=`.status.nextWindow.start`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SwarmNodeMaintenance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SwarmNodeMaintenanceSpec   `json:"spec,omitempty"`
	Status SwarmNodeMaintenanceStatus `json:"status,omitempty"`
}

// SwarmNodeMaintenanceList is a list of SwarmNodeMaintenance.
//
// +kubebuilder:object:root=true
type SwarmNodeMaintenanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SwarmNodeMaintenance `json:"items"`
}
