// Package v1alpha1 holds the API of swarm-operator: SwarmCluster (how to reach a Swarm),
// SwarmStack (a compose stack on that Swarm) and SwarmNodeMaintenance (drain windows).
//
// +kubebuilder:object:generate=true
// +groupName=swarm.swarmops.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "swarm.swarmops.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&SwarmCluster{}, &SwarmClusterList{},
		&SwarmStack{}, &SwarmStackList{},
		&SwarmNodeMaintenance{}, &SwarmNodeMaintenanceList{},
		&SwarmStackSet{}, &SwarmStackSetList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
