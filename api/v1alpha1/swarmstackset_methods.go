package v1alpha1

import (
	"encoding/json"
	"fmt"
)

// StackSpec is the SwarmStack spec the template gives on cluster. The two spec types have
// the same fields but clusterRef (TestTemplateSpecHasEveryStackField), so the copy goes
// through their JSON: a field added to both is copied without a change here.
func (t *SwarmStackTemplateSpec) StackSpec(cluster string) (SwarmStackSpec, error) {
	var spec SwarmStackSpec
	b, err := json.Marshal(t)
	if err != nil {
		return spec, fmt.Errorf("spec.template.spec: %w", err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return spec, fmt.Errorf("spec.template.spec: %w", err)
	}
	spec.ClusterRef = LocalObjectReference{Name: cluster}
	return spec, nil
}

// StackName is the name of the SwarmStack a set generates for a cluster.
func (s *SwarmStackSet) StackName(cluster string) string {
	return s.Name + "-" + cluster
}
