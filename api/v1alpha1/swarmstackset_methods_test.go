package v1alpha1

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTemplateSpecHasEveryStackField keeps the template of a SwarmStackSet in step with
// SwarmStackSpec: a field added to one and not the other fails here, by name.
func TestTemplateSpecHasEveryStackField(t *testing.T) {
	fields := func(typ reflect.Type) map[string]reflect.StructField {
		out := map[string]reflect.StructField{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			out[f.Name] = f
		}
		return out
	}
	stack, tmpl := fields(reflect.TypeFor[SwarmStackSpec]()), fields(reflect.TypeFor[SwarmStackTemplateSpec]())
	for name, f := range stack {
		if name == "ClusterRef" {
			if _, ok := tmpl[name]; ok {
				t.Error("the template must not have clusterRef: the set sets it per cluster")
			}
			continue
		}
		g, ok := tmpl[name]
		switch {
		case !ok:
			t.Errorf("SwarmStackTemplateSpec lacks SwarmStackSpec.%s", name)
		case g.Type != f.Type || g.Tag != f.Tag:
			t.Errorf("SwarmStackTemplateSpec.%s is %s %q, SwarmStackSpec.%s is %s %q", name, g.Type, g.Tag, name, f.Type, f.Tag)
		}
	}
	for name := range tmpl {
		if _, ok := stack[name]; !ok {
			t.Errorf("SwarmStackTemplateSpec.%s is not a SwarmStackSpec field", name)
		}
	}
}

func TestTemplateStackSpecCopiesFieldsAndSetsCluster(t *testing.T) {
	inline := "services: {}"
	tmpl := SwarmStackTemplateSpec{
		Version: "v5", RollbackPolicy: RollbackPolicyStack, Suspend: true,
		Compose:  ComposeSource{Files: []ComposeFile{{Name: "c.yml", Inline: &inline}}, Variables: map[string]string{"TAG": "v5"}},
		Interval: &metav1.Duration{Duration: 42},
	}
	spec, err := tmpl.StackSpec("eu")
	if err != nil {
		t.Fatal(err)
	}
	if spec.ClusterRef.Name != "eu" || spec.Version != "v5" || spec.RollbackPolicy != RollbackPolicyStack || !spec.Suspend ||
		*spec.Compose.Files[0].Inline != inline || spec.Compose.Variables["TAG"] != "v5" || spec.Interval.Duration != 42 {
		t.Fatalf("spec %+v", spec)
	}
}
