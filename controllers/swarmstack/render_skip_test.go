package swarmstack

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/metrics"
)

// inputsCompose reads every kind of input: a file from a ConfigMap and an inline one,
// spec variables, variables from a ConfigMap and from a Secret, a compose secret from a
// Secret and a compose config from a ConfigMap.
const inputsCompose = `
services:
  api:
    image: numbers-api:${TAG}
    environment: [MODE, TOKEN]
    secrets: [pw]
    configs: [settings]
secrets:
  pw: {file: ./pw}
configs:
  settings: {file: ./settings}
`

// renderCounter makes each new reconciler count its renders (each has its own cache,
// as after a restart) into one total.
func (e *stackEnv) renderCounter() func() uint64 {
	var caches []*compose.Cache
	prev := e.tune
	e.tune = func(r *Reconciler) {
		if prev != nil {
			prev(r)
		}
		caches = append(caches, r.Renderer)
	}
	return func() uint64 {
		var n uint64
		for _, c := range caches {
			n += c.Renders()
		}
		return n
	}
}

func (e *stackEnv) put(obj client.Object) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.c.Create(ctx, obj); err != nil {
		if err := e.c.Update(ctx, obj); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *stackEnv) deployAllInputs() {
	e.t.Helper()
	e.put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "compose"}, Data: map[string]string{"docker-compose.yml": inputsCompose}})
	e.put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "env"}, Data: map[string]string{"MODE": "blue"}})
	e.put(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "env-secret"}, Data: map[string][]byte{"TOKEN": []byte("token-one")}})
	e.put(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "pw"}, Data: map[string][]byte{"pw": []byte("hunter22")}})
	e.put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "settings"}, Data: map[string]string{"app.conf": "k=v\n"}})
	override := "services:\n  api:\n    deploy: {replicas: 2}\n"
	e.sw.AutoConverge = true
	e.createStack("numbers", "", func(s *swarmv1.SwarmStack) {
		s.Spec.Compose.Files = []swarmv1.ComposeFile{
			{Name: "docker-compose.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "compose", Key: "docker-compose.yml"}},
			{Name: "override.yml", Inline: &override},
		}
		s.Spec.Compose.Variables = map[string]string{"TAG": "v1"}
		s.Spec.Compose.VariablesFrom = []swarmv1.VariablesSource{
			{ConfigMapRef: &swarmv1.LocalObjectReference{Name: "env"}},
			{SecretRef: &swarmv1.LocalObjectReference{Name: "env-secret"}},
		}
		s.Spec.Secrets = []swarmv1.StackSecret{{Name: "pw", SecretRef: swarmv1.KeySelector{Name: "pw", Key: "pw"}}}
		s.Spec.Configs = []swarmv1.StackConfig{{Name: "settings", ConfigMapRef: swarmv1.KeySelector{Name: "settings", Key: "app.conf"}}}
	})
	e.passes("numbers", 3)
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		e.t.Fatalf("the stack did not deploy: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

// TestUnchangedInputsAreNotRenderedAgain: once a revision is in force, passes of new
// reconcilers (a restart empties the render cache) whose inputs are unchanged do not
// render, and say what a rendering pass says.
func TestUnchangedInputsAreNotRenderedAgain(t *testing.T) {
	e := newStackEnv(t)
	e.deployAllInputs()
	renders := e.renderCounter()
	settled := e.stack("numbers").Status
	if !strings.HasPrefix(settled.InputsDigest, "sha256:") {
		t.Fatalf("no inputs digest in status: %q", settled.InputsDigest)
	}
	e.apiWrites.Reset()
	skipped := testutil.ToFloat64(metrics.StackRenders.WithLabelValues("skipped"))
	e.passes("numbers", 3)
	if n := renders(); n != 0 {
		t.Fatalf("%d renders of unchanged inputs", n)
	}
	if n := testutil.ToFloat64(metrics.StackRenders.WithLabelValues("skipped")) - skipped; n != 3 {
		t.Fatalf("the metric counted %v skipped renders in 3 passes", n)
	}
	if w := e.apiWrites.Writes(); len(w) > 0 {
		t.Fatalf("passes that skipped the render wrote %v", w)
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue || r.Message != "Revision "+settled.LastAppliedRevision[7:19]+" applied: 1 services" {
		t.Fatalf("after skipped renders: Ready=%s %s: %s", r.Status, r.Reason, r.Message)
	}
}

// TestEveryInputChangeRenders: a change to any input, a referenced Secret's value
// included, is rendered and rolled out on the next pass.
func TestEveryInputChangeRenders(t *testing.T) {
	changes := map[string]func(e *stackEnv){
		"compose file in a ConfigMap": func(e *stackEnv) {
			e.put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "compose"},
				Data: map[string]string{"docker-compose.yml": strings.Replace(inputsCompose, "[MODE, TOKEN]", "[MODE, TOKEN, EXTRA=1]", 1)}})
		},
		"inline file": func(e *stackEnv) {
			e.edit("numbers", func(s *swarmv1.SwarmStack) {
				v := "services:\n  api:\n    deploy: {replicas: 3}\n"
				s.Spec.Compose.Files[1].Inline = &v
			})
		},
		"spec variable": func(e *stackEnv) {
			e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Spec.Compose.Variables["TAG"] = "v2" })
		},
		"variable from a ConfigMap": func(e *stackEnv) {
			e.put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "env"}, Data: map[string]string{"MODE": "green"}})
		},
		"variable from a Secret": func(e *stackEnv) {
			e.put(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "env-secret"}, Data: map[string][]byte{"TOKEN": []byte("token-two")}})
		},
		"compose secret's Secret": func(e *stackEnv) {
			e.put(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "pw"}, Data: map[string][]byte{"pw": []byte("hunter23")}})
		},
		"compose config's ConfigMap": func(e *stackEnv) {
			e.put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "settings"}, Data: map[string]string{"app.conf": "k=w\n"}})
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			e := newStackEnv(t)
			e.deployAllInputs()
			before := e.stack("numbers").Status.LastAppliedRevision
			renders := e.renderCounter()
			change(e)
			e.passes("numbers", 1)
			if n := renders(); n != 1 {
				t.Fatalf("the change was rendered %d times by one pass, want once", n)
			}
			e.passes("numbers", 2)
			s := e.stack("numbers")
			if s.Status.LastAppliedRevision == before || s.Status.History[0].Outcome != swarmv1.OutcomeCompleted {
				t.Fatalf("the change was not rolled out: revision %s (was %s), history %+v", s.Status.LastAppliedRevision, before, s.Status.History[0])
			}
		})
	}
}

// TestServiceRemovedByHandIsRenderedAndRecreated: the digest covers the services on
// the Swarm, so one missing renders again and comes back, as before the skip existed.
func TestServiceRemovedByHandIsRenderedAndRecreated(t *testing.T) {
	e := newStackEnv(t)
	e.deployAllInputs()
	renders := e.renderCounter()
	api := mustService(t, e.sw, "numbers_api")
	if err := e.sw.RemoveService(context.Background(), api.ID); err != nil {
		t.Fatal(err)
	}
	e.passes("numbers", 2)
	if renders() == 0 {
		t.Fatal("a missing service did not make the pass render")
	}
	if _, ok := e.sw.Service("numbers_api"); !ok {
		t.Fatal("the service removed by hand was not recreated")
	}
}

// TestRetryOfTheRevisionInForceRendersAndRewritesEveryService: a retry request writes
// every service again, which needs their full specs: the pass renders although the
// inputs did not change, and writes the specs it rendered.
func TestRetryOfTheRevisionInForceRendersAndRewritesEveryService(t *testing.T) {
	e := newStackEnv(t)
	e.deployAllInputs()
	renders := e.renderCounter()
	before := mustService(t, e.sw, "numbers_api")
	e.edit("numbers", func(s *swarmv1.SwarmStack) { s.Annotations = map[string]string{swarmv1.AnnotationRetry: "1"} })
	e.passes("numbers", 1)
	if renders() != 1 {
		t.Fatalf("a retry request rendered %d times, want once", renders())
	}
	after := mustService(t, e.sw, "numbers_api")
	if after.Version.Index == before.Version.Index {
		t.Fatal("the retry did not write the service again")
	}
	if got := after.Spec.TaskTemplate.ContainerSpec.Image; got != "numbers-api:v1" || len(after.Spec.TaskTemplate.ContainerSpec.Secrets) != 1 {
		t.Fatalf("the retry wrote another spec: image %q, secrets %+v", got, after.Spec.TaskTemplate.ContainerSpec.Secrets)
	}
}
