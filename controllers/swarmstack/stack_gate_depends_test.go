package swarmstack

// The dependsOn gate on the in-memory Swarm: a new revision waits for its dependencies
// to be Ready at their current generation (and, on a shared Flux source, to have applied
// the source revision), a cycle is Stalled, and the watch finds the dependents of a stack.

import (
	"context"
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
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

// sharedSourceFiles is one commit of GitRepository "platform" that both numbers and
// databases read: the api at apiImage, the database at dbImage.
func sharedSourceFiles(apiImage, dbImage string) map[string]string {
	files := sourceFiles(apiImage)
	files["stacks/databases/docker-compose.yml"] = "services: {db: {image: " + dbImage + "}}\n"
	return files
}

// readsPlatform makes a stack read one compose file of GitRepository "platform".
func readsPlatform(p string) func(*swarmv1.SwarmStack) {
	return func(s *swarmv1.SwarmStack) {
		s.Spec.SourceRef = &swarmv1.SourceReference{Kind: sourcev1.GitRepositoryKind, Name: "platform"}
		s.Spec.Compose.Files = []swarmv1.ComposeFile{pathFile("core", p)}
	}
}

func TestDependsOnSameSourceWaitsForTheDependencyToApplyTheNewRevision(t *testing.T) {
	e := newSourceEnv(t)
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sharedSourceFiles("numbers-api:v1", "db:v1"), nil), metav1.ConditionTrue)
	e.createStack("databases", "", readsPlatform("stacks/databases/docker-compose.yml"))
	e.sourceStack("numbers", dependsOn("databases"))
	e.passes("databases", 2)
	e.sw.ConvergeAll()
	e.passes("databases", 3)
	e.mustReady("databases", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	e.passes("numbers", 2)
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.mustReady("numbers", metav1.ConditionTrue, swarmv1.ReasonSucceeded)

	// A commit changes both. The dependency is still Ready at its generation (a commit
	// bumps no generation), but it has not applied the commit: numbers must wait.
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:2222", sharedSourceFiles("numbers-api:v2", "db:v2"), nil), metav1.ConditionTrue)
	e.passes("numbers", 2)
	r := e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "SwarmStack apps/databases") || !strings.Contains(r.Message, "main@sha1:2222") {
		t.Fatalf("the hold must name the dependency and the revision it waits for: %q", r.Message)
	}
	if e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("the commit reached the dependent before its dependency: api %s, db %s", e.image("numbers_api"), e.image("databases_db"))
	}

	// The dependency writes the commit but has not completed it: still waiting.
	e.passes("databases", 2)
	e.passes("numbers", 1)
	e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if e.image("databases_db") != "db:v2" || e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("db %s, api %s", e.image("databases_db"), e.image("numbers_api"))
	}

	// Its rollout completes: turning Ready at the commit wakes numbers, which goes on.
	before := e.stack("databases")
	e.sw.ConvergeAll()
	e.passes("databases", 3)
	e.mustReady("databases", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	after := e.stack("databases")
	if after.Status.LastAppliedSourceRevision != "main@sha1:2222" {
		t.Fatalf("databases applied %q", after.Status.LastAppliedSourceRevision)
	}
	if !dependencyChanged.Update(eventUpdate(before, after)) {
		t.Fatal("a dependency turning Ready at the new source revision must wake its dependents")
	}
	e.passes("numbers", 2)
	if e.image("numbers_api") != "numbers-api:v2" {
		t.Fatalf("numbers not written once its dependency applied the commit: %+v", e.ready("numbers"))
	}

	// A commit that changes only numbers: databases has nothing to write, yet numbers
	// waits until databases has seen the commit (it moves its source revision on
	// without a write), then goes on.
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:3333", sharedSourceFiles("numbers-api:v3", "db:v2"), nil), metav1.ConditionTrue)
	e.passes("numbers", 1)
	r = e.mustReady("numbers", metav1.ConditionFalse, swarmv1.ReasonDependencyNotReady)
	if !strings.Contains(r.Message, "main@sha1:3333") {
		t.Fatalf("message %q", r.Message)
	}
	before = e.stack("databases")
	e.passes("databases", 1)
	after = e.stack("databases")
	if got := after.Status.LastAppliedSourceRevision; got != "main@sha1:3333" {
		t.Fatalf("databases applied %q", got)
	}
	if !dependencyChanged.Update(eventUpdate(before, after)) {
		t.Fatal("a dependency that stays Ready and applies a new source revision must wake its dependents")
	}
	e.passes("numbers", 2)
	if e.image("numbers_api") != "numbers-api:v3" {
		t.Fatalf("numbers not written: %+v", e.ready("numbers"))
	}
}

func TestDependsOnAnotherSourceWaitsOnlyForReadiness(t *testing.T) {
	e := newSourceEnv(t)
	e.gitRepo(stackNS, "platform", e.srv.Publish(t, "platform", "main@sha1:1111", sharedSourceFiles("numbers-api:v1", "db:v1"), nil), metav1.ConditionTrue)
	e.createStack("databases", dbCompose) // inline: no source revision to wait for
	e.sourceStack("numbers", dependsOn("databases"))
	e.passes("databases", 2)
	e.sw.ConvergeAll()
	e.passes("databases", 3)
	e.mustReady("databases", metav1.ConditionTrue, swarmv1.ReasonSucceeded)
	e.passes("numbers", 2)
	if e.image("numbers_api") != "numbers-api:v1" {
		t.Fatalf("numbers held by a dependency on another source: %+v", e.ready("numbers"))
	}
}
