package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Strategy types of a SwarmStackSet.
const (
	// StrategyAllAtOnce releases to every selected cluster at once, as one step "all".
	StrategyAllAtOnce = "AllAtOnce"
	// StrategyProgressive walks spec.strategy.steps in order.
	StrategyProgressive = "Progressive"
)

// Failure policies of a SwarmStackSet.
const (
	// OnFailureHalt stops the release: no further cluster receives the revision, and a
	// stack written it that had not started its rollout is suspended.
	OnFailureHalt = "Halt"
	// OnFailureRollbackAll halts and writes the previous completed template back to every
	// cluster that received the failed revision.
	OnFailureRollbackAll = "RollbackAll"
)

// ApprovalManual makes a step wait for the approve annotation.
const ApprovalManual = "Manual"

// Phases of one step of a SwarmStackSet release.
const (
	StepPending          = "Pending"
	StepProgressing      = "Progressing"
	StepSoaking          = "Soaking"
	StepAwaitingApproval = "AwaitingApproval"
	StepCompleted        = "Completed"
	StepHalted           = "Halted"
)

// AllAtOnceStep is the name of the one step of strategy AllAtOnce.
const AllAtOnceStep = "all"

// AnnotationApprove releases a step with approval Manual: its value is the step's name,
// optionally followed by "@" and anything (kubectl swarm approve writes
// "<step>@<revision>") so that approving the same step of a later release is a new
// value. Each value is acted on once (status.lastHandledApprove).
const AnnotationApprove = "swarm.swarmops.io/approve"

// AnnotationSetRevision on a generated SwarmStack is the SwarmStackSet revision (template
// hash) its spec was written from.
const AnnotationSetRevision = "swarm.swarmops.io/set-revision"

// LabelSet on a generated SwarmStack is the name of the SwarmStackSet that owns it, and
// LabelSetCluster the SwarmCluster it was generated for.
const (
	LabelSet        = "swarm.swarmops.io/set"
	LabelSetCluster = "swarm.swarmops.io/set-cluster"
)

// Reasons of the SwarmStackSet conditions.
const (
	// ReasonReleaseProgressing: a release walks its steps.
	ReasonReleaseProgressing = "ReleaseProgressing"
	// ReasonSoaking: a step's clusters are Ready and wait out its soak.
	ReasonSoaking = "Soaking"
	// ReasonAwaitingApproval: a Manual step waits for the approve annotation.
	ReasonAwaitingApproval = "AwaitingApproval"
	// ReasonReleaseHalted: more clusters failed than spec.strategy.maxFailures allows.
	ReasonReleaseHalted = "ReleaseHalted"
	// ReasonInvalidStrategy: the strategy cannot be followed (a step with maxConcurrent
	// below 1, a duplicate step name, a bad selector).
	ReasonInvalidStrategy = "InvalidStrategy"
	// ReasonReleaseCompleted: every selected cluster runs the revision, Ready.
	ReasonReleaseCompleted = "ReleaseCompleted"
	// ReasonNoClusters: the selector selects no SwarmCluster.
	ReasonNoClusters = "NoClusters"
)

// ConditionUnmatched is present, Status True (a Warning), while selected clusters are
// matched by no step; status.unmatched names them.
const (
	ConditionUnmatched = "Unmatched"
	ReasonUnmatched    = "ClustersMatchedByNoStep"
)

// Event reasons of SwarmStackSets.
const (
	EventReleaseStarted   = "ReleaseStarted"
	EventStepStarted      = "StepStarted"
	EventStepApproved     = "StepApproved"
	EventReleaseCompleted = "ReleaseCompleted"
	EventReleaseHalted    = "ReleaseHalted"
	EventRollbackAll      = "RollbackAll"
	// EventStackSuspended: a halted release suspended a generated stack that had not
	// completed it, so that its Swarm never gets it.
	EventStackSuspended   = "StackSuspended"
	EventClusterUnmatched = "ClusterUnmatched"
	EventSetStackOrphaned = "StackOrphaned"
	EventSetStackDeleted  = "StackDeleted"
)

// SwarmStackTemplate is what each generated SwarmStack is made from.
type SwarmStackTemplate struct {
	// Metadata: labels and annotations put on every generated SwarmStack, beside the
	// set's own (swarm.swarmops.io/set, swarm.swarmops.io/set-cluster,
	// swarm.swarmops.io/set-revision).
	// +optional
	Metadata TemplateMetadata `json:"metadata,omitempty"`
	// Spec of every generated SwarmStack; its clusterRef is the cluster's.
	Spec SwarmStackTemplateSpec `json:"spec"`
}

// TemplateMetadata is the part of an object's metadata a template sets.
type TemplateMetadata struct {
	// Labels of every generated SwarmStack.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations of every generated SwarmStack.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// StackSetStep is one wave of a Progressive release.
type StackSetStep struct {
	// Name of the step, unique in the set; the approve annotation names it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$`
	Name string `json:"name"`
	// ClusterSelector picks the step's clusters among those spec.clusterSelector selects.
	// A cluster belongs to the first step that selects it; one no step selects is
	// reported in status.unmatched and never receives a release. An empty selector
	// selects every cluster left.
	ClusterSelector metav1.LabelSelector `json:"clusterSelector"`
	// MaxConcurrent: how many of the step's clusters roll at once, a number or a
	// percentage of the step's clusters (rounded up), at least 1. Default 1.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxConcurrent *intstr.IntOrString `json:"maxConcurrent,omitempty"`
	// Soak: how long every cluster of the step must have been Ready on the revision
	// before the next step starts. Default 0.
	// +optional
	Soak *metav1.Duration `json:"soak,omitempty"`
	// Approval Manual: the step starts only after the annotation
	// swarm.swarmops.io/approve names it (see AnnotationApprove). Default none.
	// +optional
	// +kubebuilder:validation:Enum=Manual
	Approval string `json:"approval,omitempty"`
}

// StackSetStrategy says how a new revision reaches the clusters.
// +kubebuilder:validation:XValidation:rule="self.type != 'Progressive' || (has(self.steps) && size(self.steps) > 0)",message="strategy Progressive needs at least one step"
// +kubebuilder:validation:XValidation:rule="!has(self.steps) || self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",message="step names must be unique"
type StackSetStrategy struct {
	// Type: AllAtOnce (default; every cluster at once, steps ignored) or Progressive
	// (steps in order).
	// +optional
	// +kubebuilder:validation:Enum=AllAtOnce;Progressive
	// +kubebuilder:default=AllAtOnce
	Type string `json:"type,omitempty"`
	// Steps of a Progressive release, in order.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Steps []StackSetStep `json:"steps,omitempty"`
	// MaxFailures: how many clusters may fail the release (outcome RolledBack,
	// DeadlineExceeded, Failed and the other failed outcomes of a SwarmStack, or past
	// progressDeadline) before the set halts. Default 0: the first failure halts.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxFailures int32 `json:"maxFailures,omitempty"`
	// OnFailure: Halt (default; no further cluster receives the revision, those that
	// have it keep it) or RollbackAll (halt, and write the last completed template back
	// to every cluster that received the revision). A stack that was written the
	// revision but had not started rolling it out (held by a gate or an unreachable
	// Swarm) is suspended on a halt (event StackSuspended), unless RollbackAll writes it
	// the previous template; a rollout under way finishes. A halted release stays halted
	// until the template changes, which lifts the suspension.
	// +optional
	// +kubebuilder:validation:Enum=Halt;RollbackAll
	// +kubebuilder:default=Halt
	OnFailure string `json:"onFailure,omitempty"`
	// ProgressDeadline: a cluster not Ready on the revision this long after the set
	// wrote it counts as failed (outcome DeadlineExceeded), whatever it waits for
	// (a rollout, a freeze window, a dependency). Default 30m.
	// +optional
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`
}

// SwarmStackSetSpec releases one stack to many Swarms.
type SwarmStackSetSpec struct {
	// ClusterSelector selects SwarmClusters of the set's namespace; each gets one
	// SwarmStack named <set>-<cluster>. An empty selector selects every cluster.
	ClusterSelector metav1.LabelSelector `json:"clusterSelector"`
	// Template of the generated SwarmStacks. A change to it is a new release
	// (status.revision), which walks the strategy.
	Template SwarmStackTemplate `json:"template"`
	// Strategy of a release. Default AllAtOnce.
	// +optional
	Strategy StackSetStrategy `json:"strategy,omitempty"`
	// Suspend stops writing the generated SwarmStacks; status is still refreshed.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// DeletionPolicy for the SwarmStacks the set owns, when the set is deleted or a
	// cluster leaves the selector: Delete (default) deletes the SwarmStack (its own
	// spec.deletionPolicy then decides about the Swarm); Orphan keeps it, without the
	// owner reference.
	// +optional
	// +kubebuilder:validation:Enum=Delete;Orphan
	// +kubebuilder:default=Delete
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// StackSetStepStatus is one step of the current release.
type StackSetStepStatus struct {
	// Name of the step (AllAtOnce: "all").
	Name string `json:"name"`
	// Phase: Pending, Progressing, Soaking, AwaitingApproval, Completed or Halted.
	Phase string `json:"phase"`
	// Clusters in the step.
	Clusters int32 `json:"clusters"`
	// Updated: clusters of the step Ready on the revision.
	Updated int32 `json:"updated"`
	// Approved is set when the approve annotation released the step for this revision.
	// +optional
	Approved bool `json:"approved,omitempty"`
	// SoakedAt is when the step's soak ends (or ended).
	// +optional
	SoakedAt *metav1.Time `json:"soakedAt,omitempty"`
}

// StackSetClusterStatus is one selected cluster.
type StackSetClusterStatus struct {
	// Name of the SwarmCluster.
	Name string `json:"name"`
	// Stack is the generated SwarmStack's name.
	Stack string `json:"stack"`
	// Step the cluster belongs to; empty when no step selects it.
	// +optional
	Step string `json:"step,omitempty"`
	// Revision of the set written to the stack (its template hash); empty before the
	// first write.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Outcome of the revision on the cluster: Pending (not written yet), Progressing,
	// Completed, a failed outcome of the SwarmStack (RolledBack, DeadlineExceeded,
	// Failed, ...), or DeadlineExceeded past spec.strategy.progressDeadline.
	// +optional
	Outcome string `json:"outcome,omitempty"`
	// Ready: the stack is Ready for its current spec.
	Ready bool `json:"ready"`
	// WrittenAt is when the set wrote the revision to the stack; the progress deadline
	// runs from it.
	// +optional
	WrittenAt *metav1.Time `json:"writtenAt,omitempty"`
	// ReadyAt is when the stack became Ready on the revision; the soak runs from it.
	// +optional
	ReadyAt *metav1.Time `json:"readyAt,omitempty"`
	// Message of the stack's Ready condition, or why the set holds the cluster back.
	// +optional
	Message string `json:"message,omitempty"`
}

// StackSetHistoryEntry records one release of the set.
type StackSetHistoryEntry struct {
	// Revision of the release: the hash of spec.template.
	Revision string `json:"revision"`
	// Version is spec.template.spec.version of the release.
	// +optional
	Version string `json:"version,omitempty"`
	// StartedAt is when the set first saw the template.
	StartedAt metav1.Time `json:"startedAt"`
	// FinishedAt is when the release completed, halted or was superseded.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Outcome: Progressing (only the newest), Completed, Halted, RolledBack (halted and
	// the template written back) or Superseded.
	Outcome string `json:"outcome"`
	// Message says why a release halted (which clusters failed).
	// +optional
	Message string `json:"message,omitempty"`
}

// SwarmStackSetStatus is the release's progress over the clusters.
type SwarmStackSetStatus struct {
	// ObservedGeneration is the generation the last finished pass planned from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (always), Reconciling and Stalled (kstatus, only while true),
	// Unmatched (True while selected clusters are matched by no step).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Revision is the hash of spec.template (sha256:...).
	// +optional
	Revision string `json:"revision,omitempty"`
	// Steps of the current release, in order.
	// +optional
	Steps []StackSetStepStatus `json:"steps,omitempty"`
	// Clusters selected by spec.clusterSelector, by name.
	// +optional
	Clusters []StackSetClusterStatus `json:"clusters,omitempty"`
	// Unmatched names selected clusters that no step selects: they receive no release.
	// +optional
	Unmatched []string `json:"unmatched,omitempty"`
	// ClustersSummary is "<ready on the revision>/<selected>", for kubectl get.
	// +optional
	ClustersSummary string `json:"clustersSummary,omitempty"`
	// CurrentStep is the step the release is at, for kubectl get.
	// +optional
	CurrentStep string `json:"currentStep,omitempty"`
	// Halted: the release of status.revision failed past maxFailures; nothing more is
	// written until the template changes.
	// +optional
	Halted bool `json:"halted,omitempty"`
	// LastCompletedRevision is the last revision that reached every cluster, and
	// LastCompletedTemplate its template: what RollbackAll and clusters joining during a
	// release receive.
	// +optional
	LastCompletedRevision string `json:"lastCompletedRevision,omitempty"`
	// LastCompletedTemplate is the template of lastCompletedRevision.
	// +optional
	LastCompletedTemplate *SwarmStackTemplate `json:"lastCompletedTemplate,omitempty"`
	// LastHandledApprove is the value of the approve annotation last acted on.
	// +optional
	LastHandledApprove string `json:"lastHandledApprove,omitempty"`
	// History of releases, newest first, at most 10.
	// +optional
	History []StackSetHistoryEntry `json:"history,omitempty"`
}

// SwarmStackSet releases one stack to many Swarms, in steps.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Clusters",type=string,JSONPath=`.status.clustersSummary`
// +kubebuilder:printcolumn:name="Step",type=string,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.revision`,priority=0
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SwarmStackSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SwarmStackSetSpec   `json:"spec,omitempty"`
	Status SwarmStackSetStatus `json:"status,omitempty"`
}

// SwarmStackSetList is a list of SwarmStackSet.
//
// +kubebuilder:object:root=true
type SwarmStackSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SwarmStackSet `json:"items"`
}
