package controllers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// DefaultConcurrent is how many SwarmStacks and SwarmClusters are reconciled at once.
// Maintenances are reconciled one at a time: two passes choosing nodes side by side
// could both take the last node the quorum allows.
const DefaultConcurrent = 4

// ManagerOptions sets what the manager caches. Secrets and ConfigMaps are not cached
// whole: a cluster holds thousands that are none of the operator's business (Helm keeps
// releases in Secrets), so they are watched as metadata only and read from the API
// server when a reconcile needs one. With a shard selector (--watch-label-selector, as
// Flux shards), only the operator's objects that match are seen, and leader election is
// per shard.
func ManagerOptions(o *ctrl.Options, watchLabelSelector string) error {
	o.Client.Cache = &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}
	if watchLabelSelector == "" {
		return nil
	}
	sel, err := labels.Parse(watchLabelSelector)
	if err != nil {
		return fmt.Errorf("--watch-label-selector %q: %w", watchLabelSelector, err)
	}
	o.Cache.ByObject = map[client.Object]cache.ByObject{
		&swarmv1.SwarmStack{}:           {Label: sel},
		&swarmv1.SwarmCluster{}:         {Label: sel},
		&swarmv1.SwarmNodeMaintenance{}: {Label: sel},
	}
	if o.LeaderElectionID != "" {
		o.LeaderElectionID += "-" + shardSuffix(sel)
	}
	return nil
}

// shardSuffix makes a Lease name part of a selector: "sharding.fluxcd.io/key=shard1"
// gives "shard1", anything else a short hash of the selector.
func shardSuffix(sel labels.Selector) string {
	if reqs, ok := sel.Requirements(); ok && len(reqs) == 1 && reqs[0].Values().Len() == 1 {
		if v := reqs[0].Values().List()[0]; v != "" && len(v) <= 20 {
			return v
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(sel.String()))
	return fmt.Sprintf("%08x", h.Sum32())
}

// clusterUsable passes the SwarmCluster changes that matter to its stacks: readiness and
// the endpoint in use. A cluster's status is patched on every probe (node counts, last
// seen managers); waking every stack of it each time would cost O(stacks) for nothing.
var clusterUsable = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	a, okA := e.ObjectOld.(*swarmv1.SwarmCluster)
	b, okB := e.ObjectNew.(*swarmv1.SwarmCluster)
	if !okA || !okB {
		return true
	}
	return a.Generation != b.Generation || isReady(a.Status.Conditions) != isReady(b.Status.Conditions) ||
		a.Status.Endpoint != b.Status.Endpoint || !maps.Equal(a.Annotations, b.Annotations)
}}

// emptyShardWarning says at start, once the cache is filled, when the shard selector
// selects none of the operator's objects: most likely a typo in the flag or the labels.
func emptyShardWarning(mgr ctrl.Manager, selector string) ctrlmanager.Runnable {
	return ctrlmanager.RunnableFunc(func(ctx context.Context) error {
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return nil
		}
		var stacks swarmv1.SwarmStackList
		var clusters swarmv1.SwarmClusterList
		var maint swarmv1.SwarmNodeMaintenanceList
		c := mgr.GetClient()
		if err := errors.Join(c.List(ctx, &stacks), c.List(ctx, &clusters), c.List(ctx, &maint)); err != nil {
			mgr.GetLogger().Info("Could not check what the shard selector selects", "selector", selector, "error", err.Error())
			return nil //nolint:nilerr // a check for the log only: the operator runs on
		}
		if len(stacks.Items)+len(clusters.Items)+len(maint.Items) == 0 {
			mgr.GetLogger().Info("The shard selector selects no SwarmStack, SwarmCluster or SwarmNodeMaintenance: check --watch-label-selector and the objects' labels",
				"selector", selector)
		}
		return nil
	})
}

func clusterStackKey(s *swarmv1.SwarmStack) string {
	return clusterStackIndexKey(s.Spec.ClusterRef.Name, stackNameOf(s))
}

// clusterStackIndexKey is the indexClusterStack value of a stack name on a cluster.
func clusterStackIndexKey(cluster, stack string) string { return cluster + "/" + stack }
