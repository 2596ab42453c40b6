package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

func TestManagerCachesNoSecretOrConfigMapWhole(t *testing.T) {
	var o ctrl.Options
	if err := ManagerOptions(&o, ""); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, obj := range o.Client.Cache.DisableFor {
		switch obj.(type) {
		case *corev1.Secret:
			kinds["Secret"] = true
		case *corev1.ConfigMap:
			kinds["ConfigMap"] = true
		}
	}
	if !kinds["Secret"] || !kinds["ConfigMap"] {
		t.Fatalf("the client caches %v whole", o.Client.Cache.DisableFor)
	}
	if o.Cache.ByObject != nil {
		t.Fatal("no shard selector, yet the cache selects by label")
	}
}

func TestShardSelectorNarrowsTheCacheAndTheLease(t *testing.T) {
	o := ctrl.Options{LeaderElectionID: "swarm-operator.swarm.swarmops.io"}
	if err := ManagerOptions(&o, "sharding.fluxcd.io/key=shard1"); err != nil {
		t.Fatal(err)
	}
	if len(o.Cache.ByObject) != 3 {
		t.Fatalf("by object %v", o.Cache.ByObject)
	}
	if o.LeaderElectionID != "swarm-operator.swarm.swarmops.io-shard1" {
		t.Fatalf("lease %s: each shard needs its own leader", o.LeaderElectionID)
	}
	if err := ManagerOptions(&ctrl.Options{}, "key in (a"); err == nil {
		t.Fatal("a malformed selector was accepted")
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
