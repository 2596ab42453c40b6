package swarmnodemaintenance

import (
	"context"
	"slices"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// addStackService creates a replicated service of a stack (no stack: "") with running
// tasks on the hosts, as many replicas as hosts.
func (w *maintenanceWorld) addStackService(stack, name string, constraints []string, hosts ...string) {
	w.t.Helper()
	replicas := uint64(len(hosts))
	spec := swarmtypes.ServiceSpec{
		Annotations:  swarmtypes.Annotations{Name: name, Labels: map[string]string{}},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: name + ":1"}, Placement: &swarmtypes.Placement{Constraints: constraints}},
		Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &replicas}},
	}
	if stack != "" {
		spec.Labels[swarmv1.LabelStackNamespace] = stack
	}
	if _, err := w.ms.CreateService(context.Background(), swarm.ServiceWrite{Spec: spec}); err != nil {
		w.t.Fatal(err)
	}
	for _, h := range hosts {
		w.ms.AddTask(name, h, swarmtypes.TaskStateRunning)
	}
}

func (w *maintenanceWorld) forceUpdates(name string) uint64 {
	svc, ok := w.ms.Service(name)
	if !ok {
		w.t.Fatalf("no service %s", name)
	}
	return svc.Spec.TaskTemplate.ForceUpdate
}

func TestRebalanceAfterTheWindowForceUpdatesUnevenServicesOneStackAtATime(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	start := w.env.Clock.Now()
	m := w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Rebalance: true, Window: oneOffWindow(start, 10*time.Minute)})
	// The window drained w1; Swarm placed its tasks on the other nodes, as these are now.
	w.runFor(time.Minute)
	if w.availability("w1") != avDrain {
		t.Fatal("w1 not drained")
	}
	w.addStackService("shop", "shop_api", nil, "m1", "m1", "w2", "w2")
	w.addStackService("shop", "shop_web", nil, "m1", "w2") // even on m1 and w2, but w1 runs none: 1-0 is even
	w.addStackService("blog", "blog_api", []string{"node.role==worker"}, "w2", "w2", "w2")
	w.addStackService("", "pinned", []string{"node.hostname==m1"}, "m1", "m1", "m1")
	w.runUntil(start.Add(10*time.Minute+time.Second), nil)
	if w.availability("w1") != avActive {
		t.Fatal("w1 not restored")
	}
	got := w.get(m)
	rb := got.Status.Rebalance
	if rb == nil || rb.Stack != "blog" || !slices.Equal(rb.Services, []string{"blog_api"}) {
		t.Fatalf("want blog rebalanced first (stacks in name order), got %+v", rb)
	}
	if w.forceUpdates("blog_api") != 1 || w.forceUpdates("shop_api") != 0 {
		t.Fatalf("force updates: blog_api %d, shop_api %d: only one stack at a time", w.forceUpdates("blog_api"), w.forceUpdates("shop_api"))
	}
	// blog's update runs: shop waits for it.
	w.runFor(10 * time.Second)
	if w.forceUpdates("shop_api") != 0 {
		t.Fatal("shop rebalanced while blog's update runs")
	}
	w.ms.Converge("blog_api")
	w.runFor(5 * time.Second)
	w.ms.Converge("shop_api")
	w.runFor(5 * time.Second)
	got = w.get(m)
	rb = got.Status.Rebalance
	if rb.FinishedAt == nil || !slices.Equal(rb.Services, []string{"blog_api", "shop_api"}) {
		t.Fatalf("want blog_api and shop_api rebalanced and done, got %+v", rb)
	}
	if w.forceUpdates("shop_web") != 0 || w.forceUpdates("pinned") != 0 || w.forceUpdates("shop_api") != 1 || w.forceUpdates("blog_api") != 1 {
		t.Fatalf("force updates: shop_web %d (even), pinned %d (pinned), shop_api %d, blog_api %d",
			w.forceUpdates("shop_web"), w.forceUpdates("pinned"), w.forceUpdates("shop_api"), w.forceUpdates("blog_api"))
	}
	if !testenv.HasEvent(w.env.Events(), swarmv1.EventRebalanced) {
		t.Fatal("no Rebalanced event")
	}
	// Done once: later passes write nothing more.
	w.runFor(5 * time.Minute)
	if w.forceUpdates("shop_api") != 1 || w.forceUpdates("blog_api") != 1 {
		t.Fatal("rebalanced twice after one window")
	}
	if readyReason(w.get(m)) != "True/"+swarmv1.ReasonNodesRestored {
		t.Fatalf("Ready %s after the rebalance", readyReason(w.get(m)))
	}
}

func TestNoRebalanceWithoutTheFlag(t *testing.T) {
	w := newMaintenanceWorld(t, "m1", "w1", "w2")
	start := w.env.Clock.Now()
	w.create("kernel", swarmv1.SwarmNodeMaintenanceSpec{Nodes: []string{"w1"}, Window: oneOffWindow(start, 10*time.Minute)})
	w.runFor(time.Minute)
	w.addStackService("shop", "shop_api", nil, "m1", "m1", "w2", "w2")
	w.runUntil(start.Add(12*time.Minute), nil)
	if w.forceUpdates("shop_api") != 0 {
		t.Fatal("rebalanced without spec.rebalance")
	}
}
