package controllers

// The dependsOn gate on the in-memory Swarm: a new revision waits for its dependencies
// to be Ready at their current generation, a cycle is Stalled, and the watch finds the
// dependents of a stack.

import (
	"context"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

const dbCompose = "services: {db: {image: db:v1}}\n"

func dependsOn(names ...string) func(*swarmv1.SwarmStack) {
	return func(s *swarmv1.SwarmStack) {
		for _, n := range names {
			ns := ""
			if i := strings.IndexByte(n, '/'); i >= 0 {
				ns, n = n[:i], n[i+1:]
			}
			s.Spec.DependsOn = append(s.Spec.DependsOn, swarmv1.DependencyReference{Namespace: ns, Name: n})
		}
	}
}

func TestDependsOnWaitsUntilTheDependencyIsReady(t *testing.T) {
	e := newSourceEnv(t)
	e.createStack("numbers", twoServices, dependsOn("databases"))
	e.passes("numbers", 2)
	r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "SwarmStack apps/databases does not exist") {
		t.Fatalf("message %q", r.Message)
	}
	if len(e.sw.Services()) != 0 {
		t.Fatalf("services written while the dependency is missing: %v", e.sw.Services())
	}

	e.createStack("databases", dbCompose)
	e.passes("databases", 2) // written, not converged: Ready=False
	e.passes("numbers", 2)
	r = e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "SwarmStack apps/databases is not ready (Progressing)") {
		t.Fatalf("message %q", r.Message)
	}
	if got := e.sw.Services(); len(got) != 1 {
		t.Fatalf("only the dependency may be on the swarm: %v", got)
	}

	e.sw.ConvergeAll()
	e.passes("databases", 3)
	e.mustReady("databases", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	e.passes("numbers", 2)
	if e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("numbers not written once its dependency is Ready: %+v", e.ready("numbers"))
	}

	// A dependency edited but not reconciled yet holds the next revision of numbers, not
	// the one running (no drift correction is held either).
	e.edit("databases", func(s *swarmv1.SwarmStack) { s.Spec.Version = "v2" })
	e.sw.ConvergeAll()
	e.passes("numbers", 2)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	e.edit("numbers", func(s *swarmv1.SwarmStack) {
		s.Spec.Compose.Files[0].Inline = ptrTo(strings.ReplaceAll(twoServices, "numbers-api:v1", "numbers-api:v2"))
	})
	e.passes("numbers", 2)
	r = e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "has not reconciled generation 2 yet") || e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("message %q, image %s", r.Message, e.image("numbers_api"))
	}
}

func TestDependsOnCycleIsStalledNotWaitedOn(t *testing.T) {
	for name, tc := range map[string]struct {
		stacks map[string][]string // name -> dependsOn
		check  string
		want   string
	}{
		"two stacks":   {map[string][]string{"a": {"b"}, "b": {"a"}}, "a", "Dependency cycle: apps/a -> apps/b -> apps/a"},
		"three stacks": {map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, "b", "Dependency cycle: apps/b -> apps/c -> apps/a -> apps/b"},
		"itself":       {map[string][]string{"a": {"a"}}, "a", "spec.dependsOn[0]: the stack depends on itself"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newSourceEnv(t)
			for n, deps := range tc.stacks {
				e.createStack(n, strings.ReplaceAll(dbCompose, "db", "svc"+n), dependsOn(deps...))
			}
			_, err := e.pass(tc.check)
			if err == nil {
				t.Fatal("a cycle must end the pass with a terminal error")
			}
			s := e.stack(tc.check)
			r := e.mustReady(tc.check, metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
			if r.Message != tc.want || !apimeta.IsStatusConditionTrue(s.Status.Conditions, swarmv1.ConditionStalled) {
				t.Fatalf("message %q (want %q), conditions %+v", r.Message, tc.want, s.Status.Conditions)
			}
			if len(e.sw.Services()) != 0 {
				t.Fatalf("wrote to the swarm: %v", e.sw.Services())
			}
		})
	}
}

func TestDependsOnOtherNamespace(t *testing.T) {
	e := newSourceEnv(t)
	e.noCross = true
	e.createStack("numbers", twoServices, dependsOn("platform/databases"))
	_, _ = e.pass("numbers")
	r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "spec.dependsOn[0]: SwarmStack platform/databases is in another namespace") {
		t.Fatalf("message %q", r.Message)
	}
	e.noCross = false
	e.passes("numbers", 1)
	r = e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "SwarmStack platform/databases does not exist") {
		t.Fatalf("allowed: message %q", r.Message)
	}
}

func TestDependentsOfAStack(t *testing.T) {
	e := newSourceEnv(t)
	e.createStack("databases", dbCompose)
	e.createStack("numbers", twoServices, dependsOn("databases"))
	e.createStack("shop", twoServices, dependsOn("numbers", "databases"))
	e.createStack("alone", twoServices)
	got := e.reconciler().dependentsOf(context.Background(), e.stack("databases"))
	names := []string{}
	for _, r := range got {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "numbers,shop" && strings.Join(names, ",") != "shop,numbers" {
		t.Fatalf("dependents of databases: %v", names)
	}
	old, cur := e.stack("databases"), e.stack("databases")
	cur.Status.Conditions = []metav1.Condition{{Type: swarmv1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1}}
	if !dependencyChanged.Update(eventUpdate(old, cur)) {
		t.Fatal("turning Ready must wake the dependents")
	}
	if dependencyChanged.Update(eventUpdate(cur, cur.DeepCopy())) {
		t.Fatal("a status write that changes no readiness must not")
	}
}

func ptrTo[T any](v T) *T { return &v }

func eventUpdate(old, cur *swarmv1.SwarmStack) event.UpdateEvent {
	return event.UpdateEvent{ObjectOld: old, ObjectNew: cur}
}
