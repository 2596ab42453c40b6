package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTemplateStackSpecCopiesFieldsAndSetsCluster(t *testing.T) {
	inline := "services: {}"
	tmpl := SwarmStackTemplateSpec{
		Version: "v5", RollbackPolicy: RollbackPolicyStack, Suspend: true,
		Compose:  ComposeSource{Files: []ComposeFile{{Name: "c.yml", Inline: &inline}}, Variables: map[string]string{"TAG": "v5"}},
		Interval: &metav1.Duration{Duration: 42},
	}
	spec := tmpl.StackSpec("eu")
	tmpl.Compose.Variables["TAG"] = "v6" // a copy: the set's template is not the stack's spec
	if spec.ClusterRef.Name != "eu" || spec.Version != "v5" || spec.RollbackPolicy != RollbackPolicyStack || !spec.Suspend ||
		*spec.Compose.Files[0].Inline != inline || spec.Compose.Variables["TAG"] != "v5" || spec.Interval.Duration != 42 {
		t.Fatalf("spec %+v", spec)
	}
}
