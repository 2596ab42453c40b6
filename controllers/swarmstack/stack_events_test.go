package swarmstack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	ktypes "k8s.io/apimachinery/pkg/types"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// Which SwarmStacks a Swarm service event wakes (the Hub subscriber of SetupWithManager).

func stackNamed(stackName string) func(*swarmv1.SwarmStack) {
	return func(s *swarmv1.SwarmStack) { s.Spec.StackName = stackName }
}

func TestServiceEventWakesTheStacksWhoseNameIsAPrefixBeforeAnUnderscore(t *testing.T) {
	e := newStackEnv(t)
	e.createStack("front-end", twoServices, stackNamed("front_end"))
	e.createStack("front", twoServices)                          // "front_" is a prefix too: stack deploy cannot tell
	e.createStack("fron", twoServices)                           // a prefix, but not before an "_"
	e.createStack("front-e", twoServices, stackNamed("front_e")) // "front_e" is followed by "n", not "_"
	e.createStack("elsewhere", twoServices, stackNamed("front_end"), func(s *swarmv1.SwarmStack) { s.Spec.ClusterRef.Name = "staging" })
	r := e.reconciler()
	prod := ktypes.NamespacedName{Namespace: stackNS, Name: "prod"}

	got := r.stacksOfService(context.Background(), prod, "front_end_web")
	want := []ktypes.NamespacedName{{Namespace: stackNS, Name: "front"}, {Namespace: stackNS, Name: "front-end"}}
	slices.SortFunc(got, func(a, b ktypes.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(got, want) {
		t.Fatalf("front_end_web woke %v, want %v", got, want)
	}
	if got := r.stacksOfService(context.Background(), prod, "fron"); len(got) != 0 {
		t.Fatalf("a service name without an _ woke %v", got)
	}
	// The cluster's namespace: a cluster of the same name elsewhere has other stacks.
	if got := r.stacksOfService(context.Background(), ktypes.NamespacedName{Namespace: "other", Name: "prod"}, "front_end_web"); len(got) != 0 {
		t.Fatalf("a cluster in another namespace woke %v", got)
	}
}

// The routing reads the candidates only: as many stacks as the name's prefixes match,
// however many other stacks the cluster has.
func TestServiceEventRoutingReadsTheSameStacksWhateverTheClusterHolds(t *testing.T) {
	touched := func(others int) int {
		e := newStackEnv(t)
		e.createStack("numbers", twoServices)
		for i := range others {
			e.createStack(fmt.Sprintf("other-%d", i), twoServices)
		}
		lists := &testenv.StackLists{Client: e.c}
		r := e.reconciler()
		r.Client = lists
		got := r.stacksOfService(context.Background(), ktypes.NamespacedName{Namespace: stackNS, Name: "prod"}, "numbers_api")
		if len(got) != 1 || got[0].Name != "numbers" {
			t.Fatalf("numbers_api woke %v", got)
		}
		return lists.Read
	}
	if few, many := touched(0), touched(100); few != many {
		t.Fatalf("one event read %d stacks with 1 on the cluster and %d with 101", few, many)
	}
}
