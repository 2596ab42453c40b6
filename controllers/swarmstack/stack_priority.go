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
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// Queue priorities. A change a user made to a stack (a new generation, an annotation, a
// referenced Secret or ConfigMap, a new source artifact) is enqueued by
// controller-runtime's handlers at the default priority, 0, and so are the polls of the
// release it started, until that release is judged: a user waits on both. A new stack
// comes next, then what the operator enqueues for itself, so that neither a deploy of
// thousands of stacks nor a resync holds a change to a stack that runs. Within a
// priority the queue is first in, first out, and it only ever raises an item's priority:
// a change to a stack already queued low lifts it.
const (
	// priorityChange: a user's change to a stack, and the polls of its release.
	priorityChange = 0
	// priorityNewStack: a stack created while the operator runs. Below a change: a
	// deploy of many stacks at once must not queue ahead of a release of a running one.
	priorityNewStack = handler.LowPriority / 4
	// priorityFollowUp: the polls that follow a stack's first rollout, retries, and
	// Swarm's service events (mostly the progress of the operator's own writes).
	priorityFollowUp = handler.LowPriority / 2
	// priorityResync: the periodic resync of a settled stack; the initial list after a
	// start is enqueued at this priority by controller-runtime.
	priorityResync = handler.LowPriority
)

// passPriority is the priority of the pass that a result asks for: a resync when
// nothing is due before the stack's interval; a poll of the release of a stack that ran
// before at the priority of the change that started it; any other follow-up below.
func passPriority(result ctrl.Result, interval time.Duration, st *swarmv1.SwarmStackStatus) *int {
	switch {
	case result.RequeueAfter >= interval:
		return ptr.To(priorityResync)
	case st.RolloutInFlight() != nil && len(st.History) > 1:
		return ptr.To(priorityChange)
	default:
		return ptr.To(priorityFollowUp)
	}
}

// isNewStack passes the creation of a stack while the operator runs, and nothing else;
// the For watch passes everything but that (the initial list after a start included).
var isNewStack = predicate.Funcs{
	CreateFunc:  func(e event.CreateEvent) bool { return !e.IsInInitialList },
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

var notNewStack = predicate.Not(isNewStack)

// newStackHandler enqueues a new stack below the changes to running ones.
var newStackHandler = handler.Funcs{
	CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
		enqueueAt(q, client.ObjectKeyFromObject(e.Object), priorityNewStack)
	},
}

func enqueueAt(q workqueue.TypedRateLimitingInterface[crreconcile.Request], key client.ObjectKey, priority int) {
	req := crreconcile.Request{NamespacedName: key}
	if pq, ok := q.(priorityqueue.PriorityQueue[crreconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(priority)}, req)
		return
	}
	q.Add(req)
}

// swarmEventHandler enqueues the stacks a Swarm service event concerns as follow-ups.
var swarmEventHandler = handler.Funcs{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
		enqueueAt(q, client.ObjectKeyFromObject(e.Object), priorityFollowUp)
	},
}
