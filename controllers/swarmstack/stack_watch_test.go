package swarmstack

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// The stack reconciler does not undo a rebalance: a force update is no drift, and the
// spec it wants is unchanged, so nothing is written back.
func TestStackDoesNotUndoARebalance(t *testing.T) {
	e := appliedStack(t)
	svc, _ := e.sw.Service("numbers_api")
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := e.sw.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	before := e.writes()
	e.passes("numbers", 3)
	e.sw.ConvergeAll()
	e.passes("numbers", 3)
	if e.writes() != before {
		t.Fatalf("the stack wrote after a force update: %v", e.sw.Writes()[before:])
	}
	if got, _ := e.sw.Service("numbers_api"); got.Spec.TaskTemplate.ForceUpdate != 1 {
		t.Fatalf("ForceUpdate %d after the stack's passes", got.Spec.TaskTemplate.ForceUpdate)
	}
	if testenv.HasEvent(e.events(), swarmv1.EventDriftCorrected) {
		t.Fatal("a force update was taken for drift")
	}
}

func TestStacksWakeOnlyWhenTheirClusterBecomesUsableOrNot(t *testing.T) {
	ready := func(status metav1.ConditionStatus, endpoint string, nodes int32) *swarmv1.SwarmCluster {
		c := &swarmv1.SwarmCluster{}
		c.Status.Conditions = []metav1.Condition{{Type: swarmv1.ConditionReady, Status: status}}
		c.Status.Endpoint = endpoint
		c.Status.Nodes = &swarmv1.NodeCounts{Total: nodes}
		return c
	}
	cases := map[string]struct {
		old, new *swarmv1.SwarmCluster
		want     bool
	}{
		"a probe that changes only counts": {ready("True", "a", 5), ready("True", "a", 6), false},
		"readiness lost":                   {ready("True", "a", 5), ready("False", "a", 5), true},
		"another endpoint":                 {ready("True", "a", 5), ready("True", "b", 5), true},
	}
	for name, tc := range cases {
		if got := clusterUsable.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: wakes stacks %t, want %t", name, got, tc.want)
		}
	}
}
