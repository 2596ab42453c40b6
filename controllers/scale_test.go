package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
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

// TestControllersUsePriorityQueues: the option that puts resyncs behind users' changes
// is set, whatever controller-runtime's default.
func TestControllersUsePriorityQueues(t *testing.T) {
	var o ctrl.Options
	if err := ManagerOptions(&o, ""); err != nil {
		t.Fatal(err)
	}
	if o.Controller.UsePriorityQueue == nil || !*o.Controller.UsePriorityQueue {
		t.Fatalf("UsePriorityQueue = %v", o.Controller.UsePriorityQueue)
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

// TestEachShardSelectorHasItsOwnLease: selectors that differ only in key, operator or
// values name different Leases (before, key=a, key!=a and team=a all led with one Lease,
// so only one of those shards ever worked); one selector written two ways names one
// Lease, a valid object name, the same at every start.
func TestEachShardSelectorHasItsOwnLease(t *testing.T) {
	const id = "swarm-operator.swarm.swarmops.io"
	lease := func(selector string) string {
		t.Helper()
		o := ctrl.Options{LeaderElectionID: id}
		if err := ManagerOptions(&o, selector); err != nil {
			t.Fatal(err)
		}
		if errs := validation.IsDNS1123Subdomain(o.LeaderElectionID); len(errs) > 0 {
			t.Errorf("selector %q: Lease name %q is not a valid object name: %v", selector, o.LeaderElectionID, errs)
		}
		return o.LeaderElectionID
	}
	byLease := map[string]string{}
	for _, sel := range []string{
		"sharding.fluxcd.io/key=a", "sharding.fluxcd.io/key!=a", "sharding.fluxcd.io/key in (a,b)",
		"key=a", "key!=a", "team=a", "key=b", "key in (a,b)", "key notin (a,b)", "key", "!key",
		"key=a,team=a", "key=a,team!=a", "sharding.fluxcd.io/key=Shard_1", "sharding.fluxcd.io/key=shard_1",
	} {
		name := lease(sel)
		if other, ok := byLease[name]; ok {
			t.Errorf("selectors %q and %q share the Lease %s", other, sel, name)
		}
		byLease[name] = sel
	}
	for a, b := range map[string]string{
		"key=a,team=b":         "team=b,key=a",
		"key==a":               "key=a",
		"key in (b,a)":         "key in (a,b)",
		"key in (a)":           "key=a",
		"key notin (a)":        "key!=a",
		" key = a , team = b ": "key=a,team=b",
	} {
		if la, lb := lease(a), lease(b); la != lb {
			t.Errorf("%q and %q select the same objects but lead with %s and %s", a, b, la, lb)
		}
	}
	if got := lease("sharding.fluxcd.io/key=shard1"); got != id+"-shard1" {
		t.Errorf("the Flux shard's Lease is %s, want %s-shard1 as documented", got, id)
	}
	if got := lease("sharding.fluxcd.io/key!=a"); got != lease("sharding.fluxcd.io/key!=a") || got == id+"-a" {
		t.Errorf("lease %s for key!=a", got)
	}
}
