package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// hungSwarm accepts connections on the loopback and never answers (testbed.HungEndpoint).
func hungSwarm(t *testing.T) string {
	t.Helper()
	endpoint, closeAll, err := testbed.HungEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAll)
	return endpoint
}

// TestHungSwarmDoesNotDelayStacksOnAnotherSwarm: stacks on a swarm that accepts and
// never answers cost only themselves; a stack on a healthy swarm rolls out as usual.
func TestHungSwarmDoesNotDelayStacksOnAnotherSwarm(t *testing.T) {
	ctx := context.Background()
	ns, healthy := newNamespace(t, "isolation")
	hung := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hung"},
		Spec:       swarmv1.SwarmClusterSpec{Endpoints: []string{hungSwarm(t)}, Insecure: true},
	}
	if err := bed.Client.Create(ctx, hung); err != nil {
		t.Fatal(err)
	}
	svc := "services:\n  api:\n    image: numbers-api:v1\n    deploy: {update_config: {monitor: 1s}}\n"
	newStack := func(name, cluster, deletion string) *swarmv1.SwarmStack {
		s := &swarmv1.SwarmStack{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: swarmv1.SwarmStackSpec{
				ClusterRef: swarmv1.LocalObjectReference{Name: cluster},
				SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
					DeletionPolicy: deletion,
					Compose:        swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "a.yml", Inline: &svc}}},
				},
			},
		}
		if err := bed.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// More stacks on the hung swarm than the operator has workers.
	for i := range 12 {
		s := newStack(fmt.Sprintf("stuck%d", i), hung.Name, "Orphan") // nothing to remove there
		t.Cleanup(func() { deleteStack(t, s) })
	}
	good := newStack("good", healthy.Name, "Delete")
	t.Cleanup(func() { deleteStack(t, good) })
	// 12 stacks each paying a 20 s timeout on 4 workers would hold the good one a minute.
	eventually(t, 40*time.Second, "the stack on the healthy swarm completes", func() string {
		get(t, good)
		if len(good.Status.History) == 0 || good.Status.History[0].Outcome != swarmv1.OutcomeCompleted {
			return "not completed yet: " + describeConditions(good.Status.Conditions)
		}
		return ""
	})
	eventually(t, time.Minute, "the stacks on the hung swarm say why they wait", func() string {
		var stuck swarmv1.SwarmStack
		if err := bed.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stuck0"}, &stuck); err != nil {
			return err.Error()
		}
		if c := condition(stuck.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Reason != swarmv1.ReasonClusterNotReady {
			return "stuck0: " + describeConditions(stuck.Status.Conditions) + "."
		}
		return ""
	})
}
