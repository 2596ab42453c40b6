package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the SwarmStack Ready, Reconciling and Stalled conditions.
const (
	ReasonSucceeded        = "Succeeded"
	ReasonProgressing      = "Progressing"
	ReasonRolledBack       = "RolledBack"
	ReasonRolloutPaused    = "RolloutPaused"
	ReasonRollbackPaused   = "RollbackPaused"
	ReasonDeadlineExceeded = "DeadlineExceeded"
	ReasonComposeInvalid   = "ComposeInvalid"
	ReasonConflict         = "Conflict"
	ReasonNotOwned         = "NotOwned"
	ReasonClusterNotReady  = "ClusterNotReady"
	ReasonSourceNotFound   = "SourceNotFound"
	// ReasonSourceNotReady: the Flux source of spec.sourceRef has no artifact yet, is not
	// Ready, or its artifact could not be fetched or verified; the last applied revision
	// keeps running.
	ReasonSourceNotReady = "SourceNotReady"
	// ReasonDecryptionFailed: a file of the source artifact is encrypted with SOPS and no
	// key of spec.decryption opens it (or its MAC does not match); nothing is written.
	ReasonDecryptionFailed = "DecryptionFailed"
	// ReasonDependencyNotReady: a new revision waits until the SwarmStacks of
	// spec.dependsOn are Ready for their current generation (and those reading the same
	// spec.sourceRef have applied the source revision about to be applied), or they form
	// a cycle.
	ReasonDependencyNotReady = "DependencyNotReady"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonRollingBack        = "RollingBack"
	// ReasonSuspended: spec.suspend is set; the operator writes nothing to the Swarm.
	ReasonSuspended = "Suspended"
	// ReasonRollbackFailed: a requested or deadline rollback could not be written.
	ReasonRollbackFailed = "RollbackFailed"
	// ReasonRolledBackOnRequest: Ready=True, the stack runs the specs a requested
	// rollback put back.
	ReasonRolledBackOnRequest = "RolledBackOnRequest"
	// ReasonFrozen: a new revision waits for the end of a freeze window (spec.freeze or
	// the SwarmCluster's spec.freeze); the message says until when.
	ReasonFrozen = "Frozen"
	// ReasonMaintenanceInProgress: a new revision waits while a SwarmNodeMaintenance on
	// the same cluster drains nodes; the message names it.
	ReasonMaintenanceInProgress = "MaintenanceInProgress"
	// ReasonInvalidFreeze: a freeze window cannot be read (cron, timeZone).
	ReasonInvalidFreeze = "InvalidFreeze"
	// ReasonPolicyViolation: the new revision's compose content breaks the security level
	// in force (namespace label swarm.swarmops.io/enforce, the operator's
	// --stack-security-default, the SwarmCluster's spec.securityLevel: the strictest);
	// nothing is written and what runs keeps running. The message names file, service,
	// field and level.
	ReasonPolicyViolation = "PolicyViolation"
)

// Events of the security levels warn and audit (namespace labels swarm.swarmops.io/warn
// and swarm.swarmops.io/audit): the stack deploys, the violation is reported.
const (
	EventPolicyWarning = "PolicyWarning"
	EventPolicyAudit   = "PolicyAudit"
)

// ConditionPruned is present only while removing what a completed revision no longer
// uses (services it dropped with rollbackPolicy Stack, networks, secrets, configs)
// failed: Status False, reason ReasonPruneFailed, and the passes retry until it works.
// It is durable, so a restart still retries, and a pass with nothing to do costs no
// listing of the stack's objects.
const (
	ConditionPruned   = "Pruned"
	ReasonPruneFailed = "PruneFailed"
)

// AnnotationOverrideFreeze applies a new revision during a freeze window, once per new
// value (recorded in status.lastHandledOverrideFreeze).
const AnnotationOverrideFreeze = "swarm.swarmops.io/override-freeze"

// Event reasons of SwarmStacks (conditions use the reasons above).
const (
	// EventStackRolledBack: rollbackPolicy Stack put the revision's services back.
	EventStackRolledBack   = "StackRolledBack"
	EventRolloutStarted    = "RolloutStarted"
	EventRolloutCompleted  = "RolloutCompleted"
	EventRolloutSuperseded = "RolloutSuperseded"
	EventDriftCorrected    = "DriftCorrected"
	EventRollbackRequested = "RollbackRequested"
	EventRollbackSkipped   = "RollbackSkipped"
	EventStackRemoved      = "StackRemoved"
	// EventStackOrphaned: the stack was deleted while its SwarmCluster (or the cluster's
	// TLS Secret) was gone: nothing could be removed from the Swarm.
	EventStackOrphaned = "StackOrphaned"
	// EventWarnings carries compose and Docker warnings about the revision.
	EventWarnings = "Warnings"
	// EventAdopted: spec.adopt took over services deployed outside the operator; the
	// message names the services that roll once because they use secrets.
	EventAdopted = "Adopted"
	// EventWaveWritten: an ordered release wrote its next wave.
	EventWaveWritten = "WaveWritten"
)

// Rollback policies of a SwarmStack.
const (
	RollbackPolicyService = "Service"
	RollbackPolicyStack   = "Stack"
)

// Update orders of a SwarmStack (spec.updateOrder).
const (
	UpdateOrderParallel  = "Parallel"
	UpdateOrderDependsOn = "DependsOn"
)

// Release states of a service in an ordered release (status.services[].release).
const (
	ReleaseWaiting = "Waiting"
	ReleaseWritten = "Written"
	ReleaseDone    = "Done"
)

// Rollout outcomes recorded in SwarmStack history.
const (
	OutcomeProgressing      = "Progressing"
	OutcomeCompleted        = "Completed"
	OutcomeRolledBack       = "RolledBack"
	OutcomePaused           = "Paused"
	OutcomeRollbackPaused   = "RollbackPaused"
	OutcomeDeadlineExceeded = "DeadlineExceeded"
	OutcomeFailed           = "Failed"
	// OutcomeSuperseded: a new revision or a rollback request was written while this
	// rollout ran, as kubectl apply does to a Deployment mid-rollout.
	OutcomeSuperseded = "Superseded"
	// OutcomeRollbackFailed: rollbackPolicy Stack could not put every service back.
	OutcomeRollbackFailed = "RollbackFailed"
	// OutcomeAdopted: what ran before spec.adopt took the stack over (for example a
	// docker stack deploy); the entry's revision is a digest of those services' specs.
	OutcomeAdopted = "Adopted"
	// OutcomeRolledBackOnRequest: a rollback asked for with the rollback annotation
	// completed. It did what was asked, so it is no failure (RolledBack stays a release
	// that failed); the revision it left is not written again until the spec changes or
	// a retry is requested.
	OutcomeRolledBackOnRequest = "RolledBackOnRequest"
)

// ComposeFile is one compose file of the stack: inline, from a ConfigMap key, or a file
// of the artifact of spec.sourceRef.
// +kubebuilder:validation:XValidation:rule="(has(self.inline) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + (has(self.path) ? 1 : 0) == 1",message="set exactly one of inline or configMapRef (or path, with spec.sourceRef)"
type ComposeFile struct {
	// Name of the file, used in error messages (for example docker-compose.yml).
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// ConfigMapRef reads the file from a ConfigMap key.
	// +optional
	ConfigMapRef *KeySelector `json:"configMapRef,omitempty"`
	// Inline holds the file's content.
	// +optional
	Inline *string `json:"inline,omitempty"`
	// Path of the file inside the artifact of spec.sourceRef, relative to its root (for
	// example stacks/numbers/docker-compose.yml). Needs spec.sourceRef; a path that leaves
	// the artifact (.., absolute, through a symlink) is refused.
	// +optional
	// +kubebuilder:validation:MinLength=1
	Path *string `json:"path,omitempty"`
}

// SourceReference names a Flux source whose artifact holds compose files.
type SourceReference struct {
	// Kind of the source: GitRepository, OCIRepository, Bucket or ExternalArtifact
	// (source.toolkit.fluxcd.io/v1).
	// +kubebuilder:validation:Enum=GitRepository;OCIRepository;Bucket;ExternalArtifact
	Kind string `json:"kind"`
	// Name of the source.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the source. Default the SwarmStack's namespace. Another namespace is
	// refused when the operator runs with --no-cross-namespace-refs.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// DependencyReference names a SwarmStack that must be Ready first.
type DependencyReference struct {
	// Name of the SwarmStack.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the SwarmStack. Default the dependent's namespace. Another namespace
	// is refused when the operator runs with --no-cross-namespace-refs.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// VariablesSource is a ConfigMap or Secret whose keys become compose variables.
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) != has(self.secretRef)",message="set exactly one of configMapRef or secretRef"
type VariablesSource struct {
	// +optional
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
}

// ComposeSource lists the compose files and their variables.
type ComposeSource struct {
	// Files merged in this order: core first, overrides after, as
	// `docker compose -f core.yml -f override.yml config` merges them.
	// +kubebuilder:validation:MinItems=1
	Files []ComposeFile `json:"files"`
	// Variables for ${VAR} interpolation. They win over variablesFrom.
	// +optional
	Variables map[string]string `json:"variables,omitempty"`
	// VariablesFrom reads variables from ConfigMaps and Secrets, later sources winning.
	// +optional
	VariablesFrom []VariablesSource `json:"variablesFrom,omitempty"`
}

// StackSecret sources the data of a compose top-level secret from a Kubernetes Secret.
type StackSecret struct {
	// Name is the key of the secret in the compose file's top-level secrets.
	// +kubebuilder:validation:MinLength=1
	Name      string      `json:"name"`
	SecretRef KeySelector `json:"secretRef"`
}

// StackConfig sources the data of a compose top-level config from a ConfigMap.
type StackConfig struct {
	// Name is the key of the config in the compose file's top-level configs.
	// +kubebuilder:validation:MinLength=1
	Name         string      `json:"name"`
	ConfigMapRef KeySelector `json:"configMapRef"`
}

// RegistryAuth names a kubernetes.io/dockerconfigjson Secret.
type RegistryAuth struct {
	SecretRef LocalObjectReference `json:"secretRef"`
}

// SwarmStackSpec is one compose stack on one Swarm.
// +kubebuilder:validation:XValidation:rule="has(oldSelf.stackName) ? (has(self.stackName) && self.stackName == oldSelf.stackName) : !has(self.stackName)",message="stackName is immutable: create a new SwarmStack instead"
// +kubebuilder:validation:XValidation:rule="self.clusterRef.name == oldSelf.clusterRef.name",message="clusterRef is immutable: create a new SwarmStack instead"
type SwarmStackSpec struct {
	// ClusterRef names the SwarmCluster to deploy onto.
	ClusterRef LocalObjectReference `json:"clusterRef"`

	SwarmStackTemplateSpec `json:",inline"`
}

// SwarmStackTemplateSpec is what a SwarmStack says of its stack, whichever Swarm it is
// on: a SwarmStackSpec without clusterRef, and the template of a SwarmStackSet's stacks.
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

	// Decryption decrypts SOPS-encrypted files read from the source artifact (file: of
	// secrets and configs, env_file:) in memory, as Flux's kustomize-controller does.
	// Without it an encrypted file is refused (reason DecryptionFailed).
	// +optional
	Decryption *Decryption `json:"decryption,omitempty"`

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

	// UpdateOrder: Parallel (default, as docker stack deploy) writes every changed service
	// at once. DependsOn writes them in waves along the compose files' depends_on: a
	// service is written once the conditions on its dependencies hold for this revision
	// (service_started: their update started; service_healthy: their update completed
	// with every task running; service_completed_successfully: the dependency is a job
	// and its run of this revision completed). A wave that fails stops the release: later
	// waves are not written (with rollbackPolicy Stack the written ones go back). The
	// progress deadline covers the whole release. With DependsOn a cycle, a dependency on
	// a service not in the stack (unless required: false), service_completed_successfully
	// on a service that is not a job, and restart: true are refused as ComposeInvalid.
	// +optional
	// +kubebuilder:validation:Enum=Parallel;DependsOn
	// +kubebuilder:default=Parallel
	UpdateOrder string `json:"updateOrder,omitempty"`

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

// UpdateConfig is a service's update or rollback config as Swarm holds it.
type UpdateConfig struct {
	Parallelism     uint64 `json:"parallelism"`
	Delay           string `json:"delay,omitempty"`
	FailureAction   string `json:"failureAction,omitempty"`
	Monitor         string `json:"monitor,omitempty"`
	MaxFailureRatio string `json:"maxFailureRatio,omitempty"`
	Order           string `json:"order,omitempty"`
}

// ServiceStatus is what Swarm reports of one service of the stack.
type ServiceStatus struct {
	Name string `json:"name"`
	// Mode: replicated, global, replicated-job or global-job.
	Mode         string `json:"mode"`
	Image        string `json:"image,omitempty"`
	DesiredTasks uint64 `json:"desiredTasks"`
	// RunningTasks counts running tasks that Swarm wants running, as docker service ls
	// does: tasks that an update replaces and that are still stopping are counted in
	// ShuttingDownTasks instead.
	RunningTasks uint64 `json:"runningTasks"`
	// ShuttingDownTasks counts tasks still running whose desired state is no longer
	// running (replaced by an update, or on a drained node).
	// +optional
	ShuttingDownTasks uint64 `json:"shuttingDownTasks,omitempty"`
	// UpdateState is Swarm's UpdateStatus.State, verbatim (updating, paused, completed,
	// rollback_started, rollback_paused, rollback_completed).
	// +optional
	UpdateState string `json:"updateState,omitempty"`
	// +optional
	UpdateMessage string `json:"updateMessage,omitempty"`
	// +optional
	UpdateStartedAt *metav1.Time `json:"updateStartedAt,omitempty"`
	// +optional
	UpdateCompletedAt *metav1.Time `json:"updateCompletedAt,omitempty"`
	// +optional
	UpdateConfig *UpdateConfig `json:"updateConfig,omitempty"`
	// +optional
	RollbackConfig *UpdateConfig `json:"rollbackConfig,omitempty"`
	// CompletedTasks counts the tasks of a job's current run that completed.
	// +optional
	CompletedTasks uint64 `json:"completedTasks,omitempty"`
	// Wave is the service's place in an ordered release (updateOrder DependsOn): wave 0
	// depends on nothing, wave n on services of earlier waves. Unset with Parallel.
	// +optional
	Wave *int32 `json:"wave,omitempty"`
	// Release says where the service is in the ordered release in flight: Waiting (for
	// the services named in WaitingFor), Written or Done. Unset when no ordered release
	// runs or the release leaves the service as it is.
	// +optional
	// +kubebuilder:validation:Enum=Waiting;Written;Done
	Release string `json:"release,omitempty"`
	// WaitingFor says which dependencies, and which condition, a Waiting service waits
	// for.
	// +optional
	WaitingFor string `json:"waitingFor,omitempty"`
}

// HistoryEntry records one rollout.
type HistoryEntry struct {
	Revision string `json:"revision"`
	// SourceRevision is the revision of the spec.sourceRef artifact the revision was
	// rendered from (for example main@sha1:4f2a...).
	// +optional
	SourceRevision string `json:"sourceRevision,omitempty"`
	Version        string `json:"version,omitempty"`
	// StartedAt is the first write of the revision; Swarm's update states since then are
	// this rollout's.
	StartedAt metav1.Time `json:"startedAt"`
	// WrittenAt is the write that completed the revision on the swarm (later than
	// startedAt when Swarm refused part of it at first): the progress deadline runs from
	// it. Unset while part of the revision is still to be written, and on entries that
	// predate the field, which count from startedAt.
	// +optional
	WrittenAt *metav1.Time `json:"writtenAt,omitempty"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Outcome: Progressing (only the newest entry), Completed, RolledBack, Paused,
	// RollbackPaused, DeadlineExceeded, Failed, RollbackFailed, Superseded, Adopted
	// (the stack as found when spec.adopt took it over) or RolledBackOnRequest.
	Outcome string `json:"outcome"`
	// RolledBackServices names the services that rollbackPolicy Stack put back to the
	// spec they ran before this revision when this rollout failed.
	// +optional
	RolledBackServices []string `json:"rolledBackServices,omitempty"`
	// UpdateOrder is the order the release was written in: DependsOn, or empty for
	// Parallel.
	// +optional
	UpdateOrder string `json:"updateOrder,omitempty"`
	// Waves lists the services of an ordered release wave by wave, as written, e.g.
	// ["numbers_migrate", "numbers_api", "numbers_web"] with one entry per wave (the
	// services of a wave comma-separated).
	// +optional
	// +kubebuilder:validation:MaxItems=100
	Waves []string `json:"waves,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// SwarmStackStatus tells the truth about the stack's rollout.
type SwarmStackStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastAppliedRevision is the revision whose rollout last completed.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// LastAppliedSourceRevision is the spec.sourceRef artifact revision of
	// lastAppliedRevision (for example main@sha1:4f2a...).
	// +optional
	LastAppliedSourceRevision string `json:"lastAppliedSourceRevision,omitempty"`
	// LastAttemptedRevision is the revision last written to the Swarm.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// InputsDigest identifies the inputs of the last render (compose files, variables,
	// Secret and ConfigMap data, source artifact, operator build), the revision they
	// rendered and that revision's services: a pass whose inputs and services on the
	// Swarm give the same digest for the revision in force does not render again. Keyed
	// like the revision, it confirms no guess of the data.
	// +optional
	InputsDigest string `json:"inputsDigest,omitempty"`
	// +optional
	Services []ServiceStatus `json:"services,omitempty"`
	// History of rollouts, newest first, at most 10.
	// +optional
	History []HistoryEntry `json:"history,omitempty"`
	// LastHandledRetry is the value of the retry annotation last acted on.
	// +optional
	LastHandledRetry string `json:"lastHandledRetry,omitempty"`
	// LastHandledRollback is the value of the rollback annotation last acted on.
	// +optional
	LastHandledRollback string `json:"lastHandledRollback,omitempty"`
	// LastHandledReconcileAt is the value of the reconcile-requested-at annotation last acted on.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
	// LastHandledOverrideFreeze is the value of the override-freeze annotation last
	// used to apply a revision during a freeze.
	// +optional
	LastHandledOverrideFreeze string `json:"lastHandledOverrideFreeze,omitempty"`
	// Warnings about the last rendered revision: compose warnings (an unset variable, an
	// ignored key) and the warnings Docker returned when the services were written. At
	// most 20, each cut to 512 characters; Secret values are redacted.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Warnings []string `json:"warnings,omitempty"`
}

// SwarmStack is one compose stack deployed onto one Swarm.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterRef.name`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.status.lastAppliedSourceRevision`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SwarmStack struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SwarmStackSpec   `json:"spec,omitempty"`
	Status SwarmStackStatus `json:"status,omitempty"`
}

// SwarmStackList is a list of SwarmStack.
//
// +kubebuilder:object:root=true
type SwarmStackList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SwarmStack `json:"items"`
}

// Decryption says how files of the source artifact are decrypted, with Flux's names.
type Decryption struct {
	// Provider of the encryption; sops is the one there is.
	// +kubebuilder:validation:Enum=sops
	Provider string `json:"provider"`

	// SecretRef names a Secret in the stack's namespace holding the private keys: keys
	// ending in .agekey hold age identities, keys ending in .asc armored PGP private keys.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
}
