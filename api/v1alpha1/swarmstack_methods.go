package v1alpha1

// RolloutInFlight is the newest history entry while its rollout has not ended, nil
// otherwise. The maintenance controller reads it to wait for rollouts; the stack
// controller follows it.
func (st *SwarmStackStatus) RolloutInFlight() *HistoryEntry {
	if len(st.History) > 0 && st.History[0].Outcome == OutcomeProgressing {
		return &st.History[0]
	}
	return nil
}
