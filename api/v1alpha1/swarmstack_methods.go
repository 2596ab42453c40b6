package v1alpha1

import ktypes "k8s.io/apimachinery/pkg/types"

// RolloutInFlight is the newest history entry while its rollout has not ended, nil
// otherwise. The maintenance controller reads it to wait for rollouts; the stack
// controller follows it.
func (st *SwarmStackStatus) RolloutInFlight() *HistoryEntry {
	if len(st.History) > 0 && st.History[0].Outcome == OutcomeProgressing {
		return &st.History[0]
	}
	return nil
}

// Dependency is the namespaced name of one spec.dependsOn entry, its namespace
// defaulted to the stack's.
func (s *SwarmStack) Dependency(d DependencyReference) ktypes.NamespacedName {
	ns := d.Namespace
	if ns == "" {
		ns = s.Namespace
	}
	return ktypes.NamespacedName{Namespace: ns, Name: d.Name}
}
