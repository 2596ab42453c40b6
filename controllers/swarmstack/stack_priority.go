package swarmstack

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Queue priorities. A change a user made (a new generation, an annotation, a referenced
// Secret or ConfigMap, a new source artifact) is enqueued by controller-runtime's
// handlers at the default priority, 0; what the operator enqueues itself goes below it,
// so that a user's change does not wait behind a resync or a deploy. The priority queue
// only ever raises an item's priority: a change to a stack already queued low lifts it.
const (
	// priorityFollowUp: the polls that follow a rollout in flight, retries, and Swarm's
	// service events (mostly the progress of the operator's own writes).
	priorityFollowUp = handler.LowPriority / 2
	// priorityResync: the periodic resync of a settled stack; the initial list after a
	// start is enqueued at this priority by controller-runtime.
	priorityResync = handler.LowPriority
)

// passPriority is the priority of the pass that a result asks for: a resync when
// nothing is due before the stack's interval, a follow-up otherwise.
func passPriority(result ctrl.Result, interval time.Duration) *int {
	if result.RequeueAfter >= interval {
		return ptr.To(priorityResync)
	}
	return ptr.To(priorityFollowUp)
}

// swarmEventHandler enqueues the stacks a Swarm service event concerns as follow-ups.
var swarmEventHandler = handler.Funcs{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
		req := crreconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)}
		if pq, ok := q.(priorityqueue.PriorityQueue[crreconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(priorityFollowUp)}, req)
			return
		}
		q.Add(req)
	},
}
