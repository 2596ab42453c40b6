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
	// OnFailureHalt stops the release: no further cluster receives the revision.
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

// SwarmStackTemplateSpec is a SwarmStackSpec without clusterRef: every field means what
// it means on a SwarmStack (see SwarmStackSpec for the details). A test keeps the two
// types' fields the same.
// +kubebuilder:validation:XValidation:rule="!has(self.interval) || duration(self.interval) > duration('0s')",message="interval must be a positive duration, for example 10m"
type SwarmStackTemplateSpec struct {

	// StackName on the Swarm. Default metadata.name. Immutable.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`
	// +kubebuilder:validation:MaxLength=63
	StackName string `json:"stackName,omitempty"`

	// Version is free text recorded in history and shown by kubectl get.
	// +optional
	Version string `json:"version,omitempty"`

	// Compose files and variables.
	Compose ComposeSource `json:"compose"`

	// SourceRef is the Flux source whose artifact compose.files[].path are read from;
	// file: of secrets and configs and env_file: are read from it too, relative to the
	// directory of the first path file (as docker compose reads them relative to the
	// first -f file). Its artifact revision is recorded in status and history.
	// +optional
	SourceRef *SourceReference `json:"sourceRef,omitempty"`

	// Decryption decrypts SOPS-encrypted files read from the source artifact, as the
	// SwarmStack's spec.decryption.
	// +optional
	Decryption *Decryption `json:"decryption,omitempty"`

	// UpdateOrder writes each cluster's release in waves along compose depends_on, as the
	// SwarmStack's spec.updateOrder.
	// +optional
	// +kubebuilder:validation:Enum=Parallel;DependsOn
	// +kubebuilder:default=Parallel
	UpdateOrder string `json:"updateOrder,omitempty"`

	// DependsOn lists SwarmStacks that must be Ready for their current generation before
	// a new revision of this one is written (reason DependencyNotReady while waiting). A
	// dependency that reads the same spec.sourceRef must also have applied the source
	// revision this stack is about to apply (its status.lastAppliedSourceRevision), so a
	// new commit reaches this stack only after its dependencies. A cycle is reported and
	// not waited on. Drift correction and rollback requests do not wait.
	// +optional
	DependsOn []DependencyReference `json:"dependsOn,omitempty"`

	// Secrets sources compose secrets from Kubernetes Secrets. Swarm secrets are named
	// with a content hash, so changed data rolls the services that use them.
	// +optional
	Secrets []StackSecret `json:"secrets,omitempty"`

	// Configs sources compose configs from ConfigMaps, named like secrets.
	// +optional
	Configs []StackConfig `json:"configs,omitempty"`

	// RegistryAuth is passed to the Swarm with each service, as --with-registry-auth.
	// +optional
	RegistryAuth *RegistryAuth `json:"registryAuth,omitempty"`

	// ResolveImage as in docker stack deploy: always, changed or never. Default never:
	// resolving needs the registry, and a failed lookup only produces a warning.
	// +optional
	// +kubebuilder:validation:Enum=always;changed;never
	// +kubebuilder:default=never
	ResolveImage string `json:"resolveImage,omitempty"`

	// Prune removes services, and networks, secrets and configs this stack owns, that the
	// compose no longer has. Objects the operator does not own are never removed. Default true.
	// +optional
	// +kubebuilder:default=true
	Prune *bool `json:"prune,omitempty"`

	// Suspend stops all changes to the Swarm; status is still refreshed.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Interval of drift correction. Default 10m.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// ProgressDeadlineSeconds: an update still running after this long is DeadlineExceeded.
	// Default 600.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// OnProgressDeadline: Rollback (ask Swarm to roll the updating services back), Pause
	// (the operator stops writing to the stack until its spec changes or a retry is
	// requested; Swarm has no call that pauses an update in flight, so the update Swarm
	// runs goes on) or Report (only record it). Default Rollback.
	// +optional
	// +kubebuilder:validation:Enum=Rollback;Pause;Report
	// +kubebuilder:default=Rollback
	OnProgressDeadline string `json:"onProgressDeadline,omitempty"`

	// Adopt takes over a stack that exists on the Swarm but was not created by the
	// operator. Default false: such a stack is left alone and the resource is Stalled.
	// +optional
	Adopt bool `json:"adopt,omitempty"`

	// RollbackPolicy: Service (default) lets Swarm roll back each failing service on its
	// own, as docker stack deploy does, so a failed release can end half applied. Stack
	// puts every service the failed revision wrote back to its spec of the last
	// completed revision as soon as one of them rolls back, pauses or passes the progress
	// deadline: services the revision created are removed, services it would remove are
	// only removed once the revision completed, services it did not change are not
	// touched. A rollback Swarm refuses is reported (reason RollbackFailed), not retried.
	// +optional
	// +kubebuilder:validation:Enum=Service;Stack
	// +kubebuilder:default=Service
	RollbackPolicy string `json:"rollbackPolicy,omitempty"`

	// Freeze windows for releases: a new revision (or a retry) written inside one waits,
	// reason Frozen, until the window ends, unless the annotation
	// swarm.swarmops.io/override-freeze gets a new value. Rollback requests and drift
	// correction of the applied revision are never frozen. The SwarmCluster's
	// spec.freeze applies too.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Freeze []TimeWindow `json:"freeze,omitempty"`

	// WaitForMaintenances: a new revision waits (reason MaintenanceInProgress) while a
	// SwarmNodeMaintenance on the same SwarmCluster is Draining and began draining
	// before this revision. Default true; false rolls out regardless.
	// +optional
	// +kubebuilder:default=true
	WaitForMaintenances *bool `json:"waitForMaintenances,omitempty"`

	// DeletionPolicy: Delete removes the stack from the Swarm with the resource; Orphan
	// leaves it running. Default Delete.
	// +optional
	// +kubebuilder:validation:Enum=Delete;Orphan
	// +kubebuilder:default=Delete
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
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
	// to every cluster that received the revision). A halted release stays halted until
	// the template changes.
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
