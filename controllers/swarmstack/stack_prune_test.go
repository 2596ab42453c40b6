package swarmstack

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
)

// The numbers stack (twoServices) drops its network in v2; the previous specs still use
// it (a rollback needs it) until v3 is in force.
const (
	noNetwork   = "services:\n  api:\n    image: numbers-api:v2\n  web:\n    image: numbers-web:v2\n"
	noNetworkV3 = "services:\n  api:\n    image: numbers-api:v3\n  web:\n    image: numbers-web:v3\n"
)

func (e *stackEnv) deployInline(name, text string) {
	e.t.Helper()
	e.edit(name, func(s *swarmv1.SwarmStack) { s.Spec.Compose.Files[0].Inline = &text })
	e.passes(name, 4)
}

// TestSteadyStatePassReadsOnlyTheStackServices: a pass with nothing to do, the one every
// stack makes at each resync, costs one Docker read. Pruning what the stack no longer
// uses is for the pass that sees a rollout complete (or a revision in force without
// one), not for every pass: it took three more reads per stack and resync.
func TestSteadyStatePassReadsOnlyTheStackServices(t *testing.T) {
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices)
	e.passes("numbers", 3)
	e.sw.ResetCalls()
	if _, err := e.pass("numbers"); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, c := range e.sw.Calls() {
		ops = append(ops, string(c.Op))
	}
	if !slices.Equal(ops, []string{string(memswarm.OpStackServices)}) {
		t.Fatalf("a steady-state pass made %v, want one StackServices read", ops)
	}
}

// TestUnusedNetworkIsPrunedOnceNoSpecUsesIt: the prune still happens, when the rollout
// that leaves a network unused (in the current and the previous specs) completes.
func TestUnusedNetworkIsPrunedOnceNoSpecUsesIt(t *testing.T) {
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices)
	e.passes("numbers", 3)
	e.deployInline("numbers", noNetwork)
	if !slices.Contains(e.sw.Networks(), "numbers_back") {
		t.Fatalf("the network the previous specs use was pruned: %v", e.sw.Networks())
	}
	e.deployInline("numbers", noNetworkV3)
	if slices.Contains(e.sw.Networks(), "numbers_back") {
		t.Fatalf("the network no spec uses was kept: %v", e.sw.Networks())
	}
}

// TestFailedPruneIsRetriedOnALaterPass: a prune that fails when the rollout completes
// is tried again on the next passes until it succeeds.
func TestFailedPruneIsRetriedOnALaterPass(t *testing.T) {
	e := newStackEnv(t)
	e.sw.AutoConverge = true
	e.createStack("numbers", twoServices)
	e.passes("numbers", 3)
	e.deployInline("numbers", noNetwork)
	e.sw.FailAlways(memswarm.OpRemoveNetwork, errors.New("network is busy"))
	e.deployInline("numbers", noNetworkV3)
	if !slices.Contains(e.sw.Networks(), "numbers_back") {
		t.Fatalf("the fault did not hold the network: %v", e.sw.Networks())
	}
	c := meta.FindStatusCondition(e.stack("numbers").Status.Conditions, swarmv1.ConditionPruned)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != swarmv1.ReasonPruneFailed || !strings.Contains(c.Message, "network is busy") {
		t.Fatalf("the failed prune is not in status: %+v", c)
	}
	if r := e.ready("numbers"); r.Status != metav1.ConditionTrue {
		t.Fatalf("a failed prune made the stack not Ready: %+v", r)
	}
	e.sw.Heal()
	e.passes("numbers", 1) // a new reconciler: what to retry is known from status alone
	if got := e.sw.Networks(); slices.Contains(got, "numbers_back") {
		t.Fatalf("the failed prune was not retried: %s", strings.Join(got, ","))
	}
	if c := meta.FindStatusCondition(e.stack("numbers").Status.Conditions, swarmv1.ConditionPruned); c != nil {
		t.Fatalf("the Pruned condition stayed after the prune succeeded: %+v", c)
	}
}
