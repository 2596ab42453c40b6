package swarmstack

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// stackReads counts the reads of SwarmStacks from the API server (the APIReader).
type stackReads struct {
	client.Reader
	n *int
}

func (r stackReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*swarmv1.SwarmStack); ok {
		*r.n++
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// staleCache serves one SwarmStack as the informer's copy that has not caught up yet.
type staleCache struct {
	client.Client
	stale *swarmv1.SwarmStack
}

func (c staleCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if s, ok := obj.(*swarmv1.SwarmStack); ok && key == client.ObjectKeyFromObject(c.stale) {
		c.stale.DeepCopyInto(s)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// tuneAlso adds a change to every new reconciler, after those already set.
func (e *stackEnv) tuneAlso(change func(*Reconciler)) {
	prev := e.tune
	e.tune = func(r *Reconciler) {
		if prev != nil {
			prev(r)
		}
		change(r)
	}
}

// TestSettledStackPassReadsNoStackFromTheAPIServer: a settled stack's pass (a resync, a
// restart) runs on the informer's copy; it reads nothing from the API server, writes
// nothing, and asks for the next resync.
func TestSettledStackPassReadsNoStackFromTheAPIServer(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	reads := 0
	e.tuneAlso(func(r *Reconciler) { r.APIReader = stackReads{Reader: r.APIReader, n: &reads} })
	e.apiWrites.Reset()
	for range 3 {
		e.clk.Advance(11 * time.Minute)
		res, err := e.pass("numbers")
		if err != nil {
			t.Fatal(err)
		}
		if res.RequeueAfter < defaultStackInterval/2 || res.Priority == nil || *res.Priority != priorityResync {
			t.Fatalf("settled pass: requeue after %s at priority %v, want a resync", res.RequeueAfter, res.Priority)
		}
	}
	if reads != 0 {
		t.Fatalf("3 settled passes read the stack from the API server %d times, want 0", reads)
	}
	if w := e.apiWrites.Writes(); len(w) > 0 {
		t.Fatalf("settled passes wrote %v", w)
	}
}

// TestCachedCopyBehindAReleaseIsNotTrusted: the informer's copy still shows the settled
// v1 while the pass before wrote v2 to the Swarm and recorded its rollout. A pass on that
// copy would write v1 back and call it Ready; it is dropped before any write, and the
// pass on the API server's copy follows the v2 rollout.
func TestCachedCopyBehindAReleaseIsNotTrusted(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	stale := e.stack("numbers")
	if !looksSettled(stale) {
		t.Fatal("the settled stack does not look settled: the test would not cover the cached pass")
	}
	e.sw.AutoConverge = false
	e.release(strings.ReplaceAll(twoServices, ":v1", ":v3"))
	if _, err := e.pass("numbers"); err != nil {
		t.Fatal(err)
	}
	if e.stack("numbers").Status.RolloutInFlight() == nil {
		t.Fatal("no rollout of v3 in flight")
	}
	e.tuneAlso(func(r *Reconciler) { r.Client = staleCache{Client: r.Client, stale: stale} })
	e.sw.ResetCalls()
	res, err := e.pass("numbers")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range e.sw.Calls() {
		if c.Op == memswarm.OpUpdateService || c.Op == memswarm.OpCreateService {
			t.Fatalf("the pass on the stale copy wrote to the Swarm: %v", e.sw.Calls())
		}
	}
	for _, name := range []string{"numbers_api", "numbers_web"} {
		if img := mustService(t, e.sw, name).Spec.TaskTemplate.ContainerSpec.Image; !strings.HasSuffix(img, ":v3") {
			t.Fatalf("%s runs %s, want v3", name, img)
		}
	}
	s := e.stack("numbers")
	if s.Status.RolloutInFlight() == nil || res.RequeueAfter >= defaultStackInterval {
		t.Fatalf("the v3 rollout is not followed: history %+v, next pass in %s", s.Status.History, res.RequeueAfter)
	}
	if r := e.ready("numbers"); r.Status == metav1.ConditionTrue {
		t.Fatalf("Ready=True while v3 rolls out: %s", r.Message)
	}
}

// TestHandEditedServiceOfASettledStackIsPutBackOnce: a settled stack whose service was
// changed by hand on the Swarm: the pass on the cached copy wants a write, so it is
// dropped, and the pass on the API server's copy writes the service back, once.
func TestHandEditedServiceOfASettledStackIsPutBackOnce(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	svc := mustService(t, e.sw, "numbers_api")
	spec := svc.Spec
	spec.TaskTemplate.ContainerSpec.Image = "numbers-api:by-hand"
	if _, err := e.sw.UpdateService(context.Background(), swarm.ServiceWrite{ID: svc.ID, Version: svc.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e.sw.ResetCalls()
	if _, err := e.pass("numbers"); err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, c := range e.sw.Calls() {
		if c.Op == memswarm.OpUpdateService {
			writes++
		}
	}
	if img := mustService(t, e.sw, "numbers_api").Spec.TaskTemplate.ContainerSpec.Image; writes != 1 || img == "numbers-api:by-hand" {
		t.Fatalf("%d service writes, numbers_api runs %s: want it put back in one write", writes, img)
	}
}

// TestLooksSettledWantsNothingPending: any sign of work on the cached copy sends the
// pass to the API server.
func TestLooksSettledWantsNothingPending(t *testing.T) {
	e := newStackEnv(t)
	e.settleOnSubSecondClock(t)
	settled := e.stack("numbers")
	if !looksSettled(settled) {
		t.Fatalf("a settled stack does not look settled: %+v", settled.Status)
	}
	now := metav1.Now()
	for what, change := range map[string]func(*swarmv1.SwarmStack){
		"deleted":             func(s *swarmv1.SwarmStack) { s.DeletionTimestamp = &now },
		"no finalizer":        func(s *swarmv1.SwarmStack) { s.Finalizers = nil },
		"new generation":      func(s *swarmv1.SwarmStack) { s.Generation++ },
		"rollout in flight":   func(s *swarmv1.SwarmStack) { s.Status.History[0].Outcome = swarmv1.OutcomeProgressing },
		"no inputs digest":    func(s *swarmv1.SwarmStack) { s.Status.InputsDigest = "" },
		"revision attempted":  func(s *swarmv1.SwarmStack) { s.Status.LastAttemptedRevision = "other" },
		"not ready":           func(s *swarmv1.SwarmStack) { s.Status.Conditions = nil },
		"reconcile requested": func(s *swarmv1.SwarmStack) { setAnnotation(s, swarmv1.AnnotationReconcileRequestedAt, "now") },
		"rollback requested":  func(s *swarmv1.SwarmStack) { setAnnotation(s, swarmv1.AnnotationRollback, "1") },
		"retry requested":     func(s *swarmv1.SwarmStack) { setAnnotation(s, swarmv1.AnnotationRetry, "1") },
	} {
		s := settled.DeepCopy()
		change(s)
		if looksSettled(s) {
			t.Errorf("%s: looks settled", what)
		}
	}
}

func setAnnotation(s *swarmv1.SwarmStack, key, value string) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[key] = value
}
