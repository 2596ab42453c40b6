package swarmstack

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/stack"
)

// dependencyRecheck is how soon a stack waiting for its dependencies looks again; the
// watch on SwarmStacks usually brings it back as soon as one turns Ready or applies a
// new source revision.
const dependencyRecheck = 30 * time.Second

// maxDependencyWalk bounds the search for a cycle through dependsOn.
const maxDependencyWalk = 256

// holdForDependencies is a revision gate: a new revision waits until every SwarmStack of
// spec.dependsOn is Ready for its current generation and, when it reads the same Flux
// source, has applied the source revision this stack is about to apply, as Flux
// Kustomizations wait: a commit reaches a dependent only after its dependencies. A
// cycle, or a reference the operator refuses, needs the user: it is Stalled, not waited on.
func holdForDependencies(ctx context.Context, sc *stackScope) (reason, msg string, recheck time.Duration, err error) {
	s := sc.s
	if len(s.Spec.DependsOn) == 0 {
		return "", "", 0, nil
	}
	if problem := dependencyProblem(ctx, sc.r.Client, sc.r.Sources.NoCrossNamespaceRefs, s); problem != "" {
		sc.failed(swarmv1.ReasonDependencyNotReady, problem, true)
		// Terminal: only an edit of a stack on the cycle helps, and that edit (through
		// the dependsOn watch) or this stack's own brings the next pass.
		return "", "", 0, crreconcile.TerminalError(fmt.Errorf("%s", problem))
	}
	revision := ""
	if sc.in != nil {
		revision = sc.in.SourceRevision
	}
	var waiting []string
	for _, d := range s.Spec.DependsOn {
		key := s.Dependency(d)
		if why := dependencyNotReady(ctx, sc.r.Client, key, s, revision); why != "" {
			waiting = append(waiting, why)
		}
	}
	if len(waiting) == 0 {
		return "", "", 0, nil
	}
	return swarmv1.ReasonDependencyNotReady, "Waiting for dependencies: " + strings.Join(waiting, "; "), dependencyRecheck, nil
}

// dependencyNotReady says why one dependency does not let the dependent's new revision
// through: it is not Ready for its current generation, or it reads the same source as
// the dependent and has not applied sourceRevision, the artifact revision the dependent
// is about to apply ("" when the dependent reads no source).
func dependencyNotReady(ctx context.Context, c client.Reader, key ktypes.NamespacedName, dependent *swarmv1.SwarmStack, sourceRevision string) string {
	var dep swarmv1.SwarmStack
	if err := c.Get(ctx, key, &dep); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("SwarmStack %s does not exist", key)
		}
		return fmt.Sprintf("SwarmStack %s cannot be read: %v", key, err)
	}
	var notReady string
	ready := apimeta.FindStatusCondition(dep.Status.Conditions, swarmv1.ConditionReady)
	switch {
	case ready == nil || ready.ObservedGeneration != dep.Generation:
		notReady = fmt.Sprintf("has not reconciled generation %d yet", dep.Generation)
	case ready.Status != metav1.ConditionTrue:
		notReady = fmt.Sprintf("is not ready (%s)", ready.Reason)
	}
	// Readiness alone lets a commit through early: a new artifact bumps no generation,
	// so the dependency is still Ready for the commit before.
	if sourceRevision != "" && readSameSource(dependent, &dep) && dep.Status.LastAppliedSourceRevision != sourceRevision {
		applied := dep.Status.LastAppliedSourceRevision
		if applied == "" {
			applied = "none"
		}
		msg := fmt.Sprintf("SwarmStack %s has not applied source revision %s yet (applied: %s)", key, sourceRevision, applied)
		if notReady != "" {
			msg += " and " + notReady
		}
		return msg
	}
	if notReady != "" {
		return fmt.Sprintf("SwarmStack %s %s", key, notReady)
	}
	return ""
}

// readSameSource is true when both stacks name the same Flux source object in spec.sourceRef.
func readSameSource(a, b *swarmv1.SwarmStack) bool {
	if a.Spec.SourceRef == nil || b.Spec.SourceRef == nil || a.Spec.SourceRef.Kind != b.Spec.SourceRef.Kind {
		return false
	}
	return stack.SourceRefOf(a) == stack.SourceRefOf(b)
}

// dependencyProblem finds what no waiting can fix: a dependsOn in another namespace the
// operator refuses, the stack itself, or a cycle back to it through other stacks.
func dependencyProblem(ctx context.Context, c client.Reader, noCrossNamespace bool, s *swarmv1.SwarmStack) string {
	self := ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	for i, d := range s.Spec.DependsOn {
		key := s.Dependency(d)
		if noCrossNamespace && key.Namespace != s.Namespace {
			return fmt.Sprintf("spec.dependsOn[%d]: SwarmStack %s is in another namespace and references to other namespaces are refused (--no-cross-namespace-refs)", i, key)
		}
		if key == self {
			return fmt.Sprintf("spec.dependsOn[%d]: the stack depends on itself", i)
		}
	}
	if cycle := dependencyCycle(ctx, c, s); cycle != nil {
		names := make([]string, len(cycle))
		for i, k := range cycle {
			names[i] = k.String()
		}
		return "Dependency cycle: " + strings.Join(names, " -> ")
	}
	return ""
}

// dependencyCycle returns a path of dependsOn edges from s back to s, or nil. It walks
// the stacks as the cache has them (their spec, not their readiness); missing stacks end
// a path.
func dependencyCycle(ctx context.Context, c client.Reader, s *swarmv1.SwarmStack) []ktypes.NamespacedName {
	self := ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	visited := map[ktypes.NamespacedName]bool{self: true}
	var walk func(st *swarmv1.SwarmStack, path []ktypes.NamespacedName) []ktypes.NamespacedName
	walk = func(st *swarmv1.SwarmStack, path []ktypes.NamespacedName) []ktypes.NamespacedName {
		for _, d := range st.Spec.DependsOn {
			key := st.Dependency(d)
			if key == self {
				return append(path, key)
			}
			if visited[key] || len(visited) > maxDependencyWalk {
				continue
			}
			visited[key] = true
			var dep swarmv1.SwarmStack
			if err := c.Get(ctx, key, &dep); err != nil {
				continue
			}
			if found := walk(&dep, append(path, key)); found != nil {
				return found
			}
		}
		return nil
	}
	return walk(s, []ktypes.NamespacedName{self})
}
