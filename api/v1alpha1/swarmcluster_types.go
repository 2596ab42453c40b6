package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the SwarmCluster Ready condition.
const (
	ReasonConnected      = "Connected"
	ReasonUnreachable    = "Unreachable"
	ReasonTLSError       = "TLSError"
	ReasonNotAManager    = "NotAManager"
	ReasonNotInSwarm     = "NotInSwarm"
	ReasonSecretNotFound = "SecretNotFound"
	ReasonInvalidSpec    = "InvalidSpec"
	ReasonQuorumLost     = "QuorumLost"
	// ReasonEndpointNotAllowed: an endpoint is outside the operator's allow-list
	// (--swarm-endpoints-allowed), or is insecure or unix:// without the flag that
	// allows it; the message names the endpoint and the rule.
	ReasonEndpointNotAllowed = "EndpointNotAllowed"
)

// ConditionManagerWarning is True when the number of managers weakens the Raft quorum:
// an even number (no fault tolerance gained over one fewer) or more than seven.
const ConditionManagerWarning = "ManagerCountWarning"

// SwarmClusterSpec says how to reach the managers of one Swarm.
// +kubebuilder:validation:XValidation:rule="!has(self.interval) || duration(self.interval) > duration('0s')",message="interval must be a positive duration, for example 30s"
type SwarmClusterSpec struct {
	// Endpoints of manager daemons, tried in order: tcp://host:port or unix:///path.
	// The first that answers as a manager of an active Swarm is used; when it stops
	// answering, the next call goes to another.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:items:Pattern=`^(tcp|unix)://.+`
	Endpoints []string `json:"endpoints"`

	// TLSSecretRef names a Secret with keys ca.crt, tls.crt and tls.key for mutual TLS
	// with tcp:// endpoints. Required for tcp:// unless insecure is true.
	// +optional
	TLSSecretRef *LocalObjectReference `json:"tlsSecretRef,omitempty"`

	// Insecure allows plain tcp:// without TLS. Unsafe: anyone on the network path gets
	// root on the Swarm. For tests and labs only. Default false.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// Interval between health refreshes. Default 30s.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Freeze windows for every SwarmStack on this cluster, in addition to each stack's
	// own spec.freeze: a new revision written inside one waits (reason Frozen).
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Freeze []TimeWindow `json:"freeze,omitempty"`

	// SecurityLevel is the least strict security level of the SwarmStacks on this
	// cluster: privileged, baseline or restricted (docs/security.md). The strictest of it,
	// the namespace label swarm.swarmops.io/enforce and the operator's
	// --stack-security-default applies, so it can tighten the namespace's level, never
	// loosen it. Default: unset (the other two decide).
	// +optional
	// +kubebuilder:validation:Enum=privileged;baseline;restricted
	SecurityLevel string `json:"securityLevel,omitempty"`
}

// ManagerStatus summarises the Raft managers.
type ManagerStatus struct {
	Total     int32  `json:"total"`
	Reachable int32  `json:"reachable"`
	Leader    string `json:"leader,omitempty"`
	// Quorum is floor(total/2)+1: managers that must be reachable for the Swarm to work.
	Quorum int32 `json:"quorum"`
	// FaultTolerance is how many managers may be down at once: total-quorum.
	FaultTolerance int32 `json:"faultTolerance"`
}

// NodeCounts counts the nodes of the Swarm by state and availability.
type NodeCounts struct {
	Total int32 `json:"total"`
	Ready int32 `json:"ready"`
	// Unknown counts nodes whose state the leader does not know (Swarm's "unknown"):
	// right after a leader election, or beyond a partition. They are not counted as
	// not ready: Swarm does not know.
	// +optional
	Unknown int32 `json:"unknown,omitempty"`
	Active  int32 `json:"active"`
	Pause   int32 `json:"pause"`
	Drain   int32 `json:"drain"`
}

// SwarmClusterStatus is what the operator last saw of the Swarm.
type SwarmClusterStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Endpoint in use.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// +optional
	SwarmID string `json:"swarmID,omitempty"`
	// APIVersion negotiated with the endpoint in use.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	Managers *ManagerStatus `json:"managers,omitempty"`
	// +optional
	Nodes *NodeCounts `json:"nodes,omitempty"`
}

// SwarmCluster says how to reach one Docker Swarm through its managers.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Managers",type=string,JSONPath=`.status.managers.reachable`,description="Reachable managers"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SwarmCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SwarmClusterSpec   `json:"spec,omitempty"`
	Status SwarmClusterStatus `json:"status,omitempty"`
}

// SwarmClusterList is a list of SwarmCluster.
//
// +kubebuilder:object:root=true
type SwarmClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SwarmCluster `json:"items"`
}
