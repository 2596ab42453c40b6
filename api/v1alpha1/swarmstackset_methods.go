package v1alpha1

// StackSpec is the SwarmStack spec the template gives on cluster.
func (t *SwarmStackTemplateSpec) StackSpec(cluster string) SwarmStackSpec {
	return SwarmStackSpec{ClusterRef: LocalObjectReference{Name: cluster}, SwarmStackTemplateSpec: *t.DeepCopy()}
}

// StackName is the name of the SwarmStack a set generates for a cluster.
func (s *SwarmStackSet) StackName(cluster string) string {
	return s.Name + "-" + cluster
}
