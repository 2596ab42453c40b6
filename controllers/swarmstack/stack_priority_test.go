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
// low priority; a rollout's poll is a follow-up, above the resync and below a user's
// change.
func TestSettledPassIsRequeuedAsAResync(t *testing.T) {
	e := newStackEnv(t)
	e.deployTwoServices()
	res, err := e.pass("numbers")
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter < defaultStackInterval || res.Priority == nil || *res.Priority != handler.LowPriority {
		t.Fatalf("settled pass: requeue after %s at priority %v, want the interval at %d", res.RequeueAfter, res.Priority, handler.LowPriority)
	}
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v2"))
	res, err = e.pass("numbers")
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter >= defaultStackInterval || res.Priority == nil || *res.Priority != priorityFollowUp {
		t.Fatalf("rollout pass: requeue after %s at priority %v, want a poll at %d", res.RequeueAfter, res.Priority, priorityFollowUp)
	}
	if handler.LowPriority >= priorityFollowUp || priorityFollowUp >= 0 {
		t.Fatalf("priorities out of order: resync %d, follow-up %d, user 0", handler.LowPriority, priorityFollowUp)
	}
}

// TestUserChangeGoesAheadOfTheResyncBacklog: with a start's initial list of stacks
// queued and a Swarm event about one of them, the stack a user just changed is
// reconciled first, the Swarm event's stack next, then the backlog; a change to a stack
// already in the backlog lifts it.
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
	forObject.Update(ctx, event.UpdateEvent{ObjectOld: obj("stack-40", "1"), ObjectNew: obj("stack-40", "2")}, q)
	forObject.Create(ctx, event.CreateEvent{Object: obj("new-stack", "1")}, q)
	if n := q.Len(); n != 51 {
		t.Fatalf("%d queued, want 51", n)
	}
	var order []string
	for range 4 {
		req, prio, _ := q.GetWithPriority()
		order = append(order, fmt.Sprintf("%s@%d", req.Name, prio))
		q.Done(req)
	}
	want := []string{"stack-40@0", "new-stack@0", fmt.Sprintf("stack-10@%d", priorityFollowUp), fmt.Sprintf("stack-00@%d", handler.LowPriority)}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("reconciled %v first, want %v", order, want)
	}
}
