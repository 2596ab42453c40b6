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
	ReasonApplyFailed      = "ApplyFailed"
	ReasonRollingBack      = "RollingBack"
	// ReasonSuspended: spec.suspend is set; the operator writes nothing to the Swarm.
	ReasonSuspended = "Suspended"
	// ReasonRollbackFailed: a requested or deadline rollback could not be written.
	ReasonRollbackFailed = "RollbackFailed"
)

// Event reasons of SwarmStacks (conditions use the reasons above).
const (
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
)

// ComposeFile is one compose file of the stack, inline or from a ConfigMap key.
// +kubebuilder:validation:XValidation:rule="has(self.inline) != has(self.configMapRef)",message="set exactly one of inline or configMapRef"
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
// +kubebuilder:validation:XValidation:rule="!has(self.interval) || duration(self.interval) > duration('0s')",message="interval must be a positive duration, for example 10m"
// +kubebuilder:validation:XValidation:rule="self.clusterRef.name == oldSelf.clusterRef.name",message="clusterRef is immutable: create a new SwarmStack instead"
type SwarmStackSpec struct {
	// ClusterRef names the SwarmCluster to deploy onto.
	ClusterRef LocalObjectReference `json:"clusterRef"`

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
	RunningTasks uint64 `json:"runningTasks"`
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
}

// HistoryEntry records one rollout.
type HistoryEntry struct {
	Revision  string      `json:"revision"`
	Version   string      `json:"version,omitempty"`
	StartedAt metav1.Time `json:"startedAt"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Outcome: Progressing (only the newest entry), Completed, RolledBack, Paused,
	// RollbackPaused, DeadlineExceeded, Failed or Superseded.
	Outcome string `json:"outcome"`
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
	// LastAttemptedRevision is the revision last written to the Swarm.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
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
