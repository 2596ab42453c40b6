package reconcile

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/stack"
)

// StackIndexes map a SwarmStack to what it references, so that a change to a cluster,
// ConfigMap or Secret finds its users without a scan.
var StackIndexes = map[string]client.IndexerFunc{
	IndexClusterStack: func(o client.Object) []string { return []string{ClusterStackKey(o.(*swarmv1.SwarmStack))} },
	IndexClusterRef:   func(o client.Object) []string { return []string{o.(*swarmv1.SwarmStack).Spec.ClusterRef.Name} },
	IndexConfigMaps: func(o client.Object) []string {
		s := o.(*swarmv1.SwarmStack)
		var names []string
		for _, f := range s.Spec.Compose.Files {
			if f.ConfigMapRef != nil {
				names = append(names, f.ConfigMapRef.Name)
			}
		}
		for _, v := range s.Spec.Compose.VariablesFrom {
			if v.ConfigMapRef != nil {
				names = append(names, v.ConfigMapRef.Name)
			}
		}
		for _, c := range s.Spec.Configs {
			names = append(names, c.ConfigMapRef.Name)
		}
		return names
	},
	IndexSecrets: func(o client.Object) []string {
		s := o.(*swarmv1.SwarmStack)
		var names []string
		for _, v := range s.Spec.Compose.VariablesFrom {
			if v.SecretRef != nil {
				names = append(names, v.SecretRef.Name)
			}
		}
		for _, sec := range s.Spec.Secrets {
			names = append(names, sec.SecretRef.Name)
		}
		if s.Spec.RegistryAuth != nil {
			names = append(names, s.Spec.RegistryAuth.SecretRef.Name)
		}
		if d := s.Spec.Decryption; d != nil && d.SecretRef != nil {
			names = append(names, d.SecretRef.Name)
		}
		return names
	},
}

// Index names of the references to Flux sources and to other SwarmStacks.
const (
	IndexSourceRef = ".spec.sourceRef"
	IndexDependsOn = ".spec.dependsOn"
)

// StackSourceIndexes map a SwarmStack to its source ("Kind/namespace/name") and to the
// SwarmStacks it depends on ("namespace/name"), so that a new artifact or a dependency
// turning Ready finds the stacks to reconcile without a scan.
var StackSourceIndexes = map[string]client.IndexerFunc{
	IndexSourceRef: func(o client.Object) []string {
		s := o.(*swarmv1.SwarmStack)
		if s.Spec.SourceRef == nil {
			return nil
		}
		ref := stack.SourceRefOf(s)
		return []string{stack.SourceKey(s.Spec.SourceRef.Kind, ref.Namespace, ref.Name)}
	},
	IndexDependsOn: func(o client.Object) []string {
		s := o.(*swarmv1.SwarmStack)
		out := make([]string, 0, len(s.Spec.DependsOn))
		for _, d := range s.Spec.DependsOn {
			out = append(out, s.Dependency(d).String())
		}
		return out
	},
}

// MaintenanceClusterRef indexes maintenances by the SwarmCluster they name: the
// SwarmStack reconciler finds the maintenances of its cluster through it.
func MaintenanceClusterRef(o client.Object) []string {
	return []string{o.(*swarmv1.SwarmNodeMaintenance).Spec.ClusterRef.Name}
}

func ClusterStackKey(s *swarmv1.SwarmStack) string {
	return ClusterStackIndexKey(s.Spec.ClusterRef.Name, stack.NameOf(s))
}

// ClusterStackIndexKey is the IndexClusterStack value of a stack name on a cluster.
func ClusterStackIndexKey(cluster, stack string) string { return cluster + "/" + stack }

func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func IsReady(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == swarmv1.ConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}
