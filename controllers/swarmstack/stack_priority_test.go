package swarmstack

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// TestSettledPassIsRequeuedAsAResync: a settled stack's next pass, at its interval, is
// low priority; the polls of a new stack's first rollout are follow-ups, above the
// resync and below a new stack.
func TestSettledPassIsRequeuedAsAResync(t *testing.T) {
	e := newStackEnv(t)
	e.createStack("numbers", twoServices)
	res, err := e.pass("numbers")
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter >= defaultStackInterval || res.Priority == nil || *res.Priority != priorityFollowUp {
		t.Fatalf("first rollout: requeue after %s at priority %v, want a poll at %d", res.RequeueAfter, res.Priority, priorityFollowUp)
	}
	e = newStackEnv(t)
	e.deployTwoServices()
	res, err = e.pass("numbers")
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter < defaultStackInterval || res.Priority == nil || *res.Priority != handler.LowPriority {
		t.Fatalf("settled pass: requeue after %s at priority %v, want the interval at %d", res.RequeueAfter, res.Priority, handler.LowPriority)
	}
	if handler.LowPriority >= priorityFollowUp || priorityFollowUp >= priorityNewStack || priorityNewStack >= priorityChange {
		t.Fatalf("priorities out of order: resync %d, follow-up %d, new stack %d, change %d", handler.LowPriority, priorityFollowUp, priorityNewStack, priorityChange)
	}
}

// TestReleaseOfARunningStackPollsAtThePriorityOfTheChange: the polls that judge a
// release of a stack that ran before rank with the user's change that started it, not
// with the follow-ups: a deploy of many new stacks must not hold its verdict (it waited
// minutes behind one in BenchmarkScaleOut).
func TestReleaseOfARunningStackPollsAtThePriorityOfTheChange(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	for i := range 2 {
		res, err := e.pass("numbers")
		if err != nil {
			t.Fatal(err)
		}
		if e.stack("numbers").Status.RolloutInFlight() == nil {
			t.Fatalf("pass %d: no rollout in flight, the test would not cover it", i)
		}
		if res.RequeueAfter >= defaultStackInterval || res.Priority == nil || *res.Priority != priorityChange {
			t.Fatalf("pass %d of the release: requeue after %s at priority %v, want a poll at %d", i, res.RequeueAfter, res.Priority, priorityChange)
		}
	}
}

// TestUserChangeGoesAheadOfTheResyncBacklog: with a start's initial list of stacks
// queued, a Swarm event about one of them and a new stack, the stack a user just changed
// is reconciled first, the new stack next (though created before the change), the Swarm
// event's stack next, then the backlog; a change to a stack already in the backlog
// lifts it.
func TestUserChangeGoesAheadOfTheResyncBacklog(t *testing.T) {
	q := priorityqueue.New[crreconcile.Request]("test")
	defer q.ShutDown()
	ctx := context.Background()
	forObject := &handler.EnqueueRequestForObject{}
	obj := func(name, version string) *swarmv1.SwarmStack {
		return &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: name, ResourceVersion: version}}
	}
	for i := range 50 {
		forObject.Create(ctx, event.CreateEvent{Object: obj(fmt.Sprintf("stack-%02d", i), "1"), IsInInitialList: true}, q)
	}
	swarmEventHandler.Generic(ctx, event.GenericEvent{Object: obj("stack-10", "")}, q)
	// Created before the change, reconciled after it.
	created := event.CreateEvent{Object: obj("new-stack", "1")}
	if !isNewStack.Create(created) || notNewStack.Create(created) {
		t.Fatal("a stack created while the operator runs is not taken by the new-stack watch alone")
	}
	newStackHandler.Create(ctx, created, q)
	changed := event.UpdateEvent{ObjectOld: obj("stack-40", "1"), ObjectNew: obj("stack-40", "2")}
	listed := event.CreateEvent{Object: obj("stack-00", "1"), IsInInitialList: true}
	if isNewStack.Update(changed) || isNewStack.Create(listed) || !notNewStack.Update(changed) || !notNewStack.Create(listed) {
		t.Fatal("a change or the initial list is taken by the new-stack watch")
	}
	forObject.Update(ctx, changed, q)
	if n := q.Len(); n != 51 {
		t.Fatalf("%d queued, want 51", n)
	}
	var order []string
	for range 4 {
		req, prio, _ := q.GetWithPriority()
		order = append(order, fmt.Sprintf("%s@%d", req.Name, prio))
		q.Done(req)
	}
	want := []string{"stack-40@0", fmt.Sprintf("new-stack@%d", priorityNewStack), fmt.Sprintf("stack-10@%d", priorityFollowUp), fmt.Sprintf("stack-00@%d", handler.LowPriority)}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("reconciled %v first, want %v", order, want)
	}
}
