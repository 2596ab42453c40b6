package v1alpha1

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// KeySelector names one key of a ConfigMap or Secret in the same namespace.
type KeySelector struct {
	// Name of the ConfigMap or Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key inside its data.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// Condition types shared by the kinds of this API (kstatus).
const (
	// ConditionReady is always present: True when the object is in its desired state.
	ConditionReady = "Ready"
	// ConditionReconciling is present only while the operator is making progress.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is present only while progress needs a change from the user.
	ConditionStalled = "Stalled"
)

// Annotations that ask for an action once per new value.
const (
	// AnnotationReconcileRequestedAt asks for a reconcile now.
	AnnotationReconcileRequestedAt = "swarm.swarmops.io/reconcile-requested-at"
	// AnnotationRetry asks to apply again a revision that rolled back.
	AnnotationRetry = "swarm.swarmops.io/retry"
	// AnnotationRollback asks to roll every service of the stack back to its previous spec.
	AnnotationRollback = "swarm.swarmops.io/rollback"
)

// Labels the operator puts on the Swarm objects it owns.
const (
	// LabelOwner is "<namespace>.<name>" of the owning SwarmStack.
	LabelOwner = "swarm.swarmops.io/owner"
	// LabelRevision is the stack revision a service spec was last applied at.
	LabelRevision = "swarm.swarmops.io/revision"
	// LabelSpecHash is the hash of the rendered service spec, used to skip no-op updates.
	LabelSpecHash = "swarm.swarmops.io/spec-hash"
	// LabelWriteID changes with every write of the operator to a service. When a service's
	// previous spec carries the same value as its spec, someone else wrote the service
	// after the operator did: that is drift.
	LabelWriteID = "swarm.swarmops.io/write-id"
	// LabelStackNamespace is the label docker stack deploy puts on every stack object.
	LabelStackNamespace = "com.docker.stack.namespace"
	// LabelStackImage is the label docker stack deploy puts on services.
	LabelStackImage = "com.docker.stack.image"
)
