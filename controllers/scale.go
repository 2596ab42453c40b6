package controllers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"

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
//
// The controllers' queues are priority queues (controller-runtime's default, set here so
// that no change of default drops it): the initial list and the periodic resync are
// enqueued low, so a change a user makes is reconciled ahead of a resync's backlog.
func ManagerOptions(o *ctrl.Options, watchLabelSelector string) error {
	o.Client.Cache = &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}
	o.Controller.UsePriorityQueue = ptr.To(true)
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

// fluxShardKey is the label Flux's sharding uses; its shards keep a readable Lease.
const fluxShardKey = "sharding.fluxcd.io/key"

// shardSuffix makes a Lease name part of a selector, one per selector: every shard must
// elect its own leader, or all but one of those sharing a Lease never work. Flux's
// "sharding.fluxcd.io/key=shard1" gives "shard1" (the name documented and in use since
// sharding came); any other selector a hash of its canonical form, so that key=a, key!=a
// and team=a differ, while one selector written two ways ("a=1,b=2", "b=2,a=1") agrees.
func shardSuffix(sel labels.Selector) string {
	reqs, _ := sel.Requirements()
	if len(reqs) == 1 && reqs[0].Key() == fluxShardKey && equalsOne(reqs[0]) {
		// A value that is no valid name part (Shard_1) is hashed like any other selector.
		if v := reqs[0].Values().List()[0]; len(v) <= 20 && len(validation.IsDNS1123Label(v)) == 0 {
			return v
		}
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(canonicalSelector(reqs)))
	return fmt.Sprintf("%016x", h.Sum64())
}

// equalsOne: the requirement selects one value of its key (=, ==, or in with one value).
func equalsOne(r labels.Requirement) bool {
	switch r.Operator() {
	case selection.Equals, selection.DoubleEquals, selection.In:
		return r.Values().Len() == 1
	}
	return false
}

// canonicalSelector writes requirements in one form whatever their order and spelling:
// ==, and in or notin with one value, read as = and !=; values and requirements sorted.
func canonicalSelector(reqs labels.Requirements) string {
	parts := make([]string, 0, len(reqs))
	for _, r := range reqs {
		op, values := string(r.Operator()), r.Values().List()
		switch {
		case equalsOne(r):
			op = string(selection.Equals)
		case r.Operator() == selection.NotIn && len(values) == 1:
			op = string(selection.NotEquals)
		}
		parts = append(parts, r.Key()+" "+op+" "+strings.Join(values, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

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
