package swarmstackset

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// world is a namespace with the fleet's SwarmClusters (canary-1, prod-1, prod-2 and
// lab-1, which no step selects) and a set "numbers" over them. No stack controller
// runs: a test plays it by setting the generated stacks' status (settle).
type world struct {
	*testenv.Env
	r   *Reconciler
	set *swarmv1.SwarmStackSet
}

func newWorld(t *testing.T, spec *swarmv1.SwarmStackSetSpec, clusterNames ...string) *world {
	t.Helper()
	w := &world{Env: testenv.NewEnv(t, nil)}
	w.r = &Reconciler{Client: w.Client, APIReader: w.Client, Recorder: w.Recorder, Now: w.Clock.Now}
	if len(clusterNames) == 0 {
		clusterNames = []string{"canary-1", "prod-1", "prod-2", "lab-1"}
	}
	for _, c := range clusters(clusterNames...) {
		w.addCluster(c)
	}
	w.set = &swarmv1.SwarmStackSet{ObjectMeta: metav1.ObjectMeta{Name: "numbers", Namespace: testenv.Namespace}, Spec: *spec.DeepCopy()}
	w.set.Spec.Template.Spec.Compose.Files = []swarmv1.ComposeFile{{Name: "docker-compose.yml", Inline: ptr("services: {api: {image: numbers-api:" + spec.Template.Spec.Version + "}}")}}
	w.Create(w.set)
	return w
}

func ptr[T any](v T) *T { return &v }

func (w *world) addCluster(c Cluster) {
	cl := testenv.ReadyCluster(testenv.Namespace, c.Name)
	cl.Labels = c.Labels
	w.Create(cl)
}

// pass runs one reconcile of the set and re-reads it.
func (w *world) pass() ctrl.Result {
	w.T.Helper()
	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w.set)})
	if err != nil {
		w.T.Fatal(err)
	}
	w.Get(w.set)
	return res
}

// stack reads the generated stack of a cluster; nil when there is none.
func (w *world) stack(cluster string) *swarmv1.SwarmStack {
	w.T.Helper()
	s := &swarmv1.SwarmStack{}
	err := w.Client.Get(context.Background(), ktypes.NamespacedName{Namespace: testenv.Namespace, Name: "numbers-" + cluster}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		w.T.Fatal(err)
	}
	return s
}

// settle plays the stack controller: the cluster's stack has seen its spec and its
// release completed (reason "") or failed with reason.
func (w *world) settle(cluster, reason string) {
	w.T.Helper()
	s := w.stack(cluster)
	if s == nil {
		w.T.Fatalf("no stack for %s", cluster)
	}
	s.Status.ObservedGeneration = s.Generation
	s.Status.Conditions = nil
	if reason == "" {
		meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: swarmv1.ConditionReady, Status: metav1.ConditionTrue, Reason: swarmv1.ReasonSucceeded, Message: "Revision completed",
			LastTransitionTime: metav1.NewTime(w.Clock.Now())})
	} else {
		meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: swarmv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: "api: update rolled back due to failure"})
		meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: swarmv1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason})
		s.Status.History = []swarmv1.HistoryEntry{{Revision: "sha256:r", Outcome: reason}}
	}
	if err := w.Client.Status().Update(context.Background(), s); err != nil {
		w.T.Fatal(err)
	}
}

// version is the template version a cluster's stack was written with; "" without stack.
func (w *world) version(cluster string) string {
	if s := w.stack(cluster); s != nil {
		return s.Spec.Version
	}
	return ""
}

func (w *world) wantVersions(want map[string]string) {
	w.T.Helper()
	for cluster, v := range want {
		if got := w.version(cluster); got != v {
			w.T.Errorf("stack of %s runs %q, want %q", cluster, got, v)
		}
	}
}

func (w *world) wantPhases(want string) {
	w.T.Helper()
	if got := phases(w.set.Status); got != want {
		w.T.Fatalf("phases %q, want %q (Ready: %+v)", got, want, meta.FindStatusCondition(w.set.Status.Conditions, swarmv1.ConditionReady))
	}
}

// release changes the template's version, a new release.
func (w *world) release(version string) {
	w.Mutate(w.set, func() {
		w.set.Spec.Template.Spec.Version = version
		w.set.Spec.Template.Spec.Compose.Files[0].Inline = ptr("services: {api: {image: numbers-api:" + version + "}}")
	})
}

func (w *world) approve(value string) {
	w.Mutate(w.set, func() { metav1.SetMetaDataAnnotation(&w.set.ObjectMeta, swarmv1.AnnotationApprove, value) })
}

// releaseEverywhere walks a release through canary, soak, approval and prod.
func (w *world) releaseEverywhere(version string) {
	w.T.Helper()
	w.pass()
	w.settle("canary-1", "")
	w.pass()
	w.Clock.Advance(10 * time.Minute)
	w.pass()
	w.approve("prod@" + version)
	for range 2 {
		w.pass()
		for _, c := range []string{"prod-1", "prod-2"} {
			if s := w.stack(c); s != nil && s.Spec.Version == version {
				w.settle(c, "")
			}
		}
	}
	w.pass()
	w.wantPhases("canary=Completed prod=Completed")
}

func TestGoodReleaseWalksStepsWithSoakAndApproval(t *testing.T) {
	w := newWorld(t, progressive("v4"))
	w.pass()
	w.wantPhases("canary=Progressing prod=Pending")
	s := w.stack("canary-1")
	if s == nil || s.Spec.ClusterRef.Name != "canary-1" || !metav1.IsControlledBy(s, w.set) || s.Labels[swarmv1.LabelSet] != "numbers" ||
		s.Annotations[swarmv1.AnnotationSetRevision] != w.set.Status.Revision {
		t.Fatalf("generated stack %+v", s)
	}
	w.wantVersions(map[string]string{"prod-1": "", "prod-2": ""})

	w.settle("canary-1", "")
	w.pass()
	w.wantPhases("canary=Soaking prod=Pending")
	w.wantVersions(map[string]string{"prod-1": "", "prod-2": ""})

	w.Clock.Advance(10 * time.Minute)
	w.pass()
	w.wantPhases("canary=Completed prod=AwaitingApproval")
	w.wantVersions(map[string]string{"prod-1": "", "prod-2": ""})

	w.approve("prod")
	w.pass()
	w.wantPhases("canary=Completed prod=Progressing")
	// maxConcurrent 50% of two clusters: one at a time.
	w.wantVersions(map[string]string{"prod-1": "v4", "prod-2": ""})
	w.pass()
	w.wantVersions(map[string]string{"prod-2": ""})

	w.settle("prod-1", "")
	w.pass()
	w.wantVersions(map[string]string{"prod-2": "v4"})
	w.settle("prod-2", "")
	w.pass()
	w.wantPhases("canary=Completed prod=Completed")
	if !meta.IsStatusConditionTrue(w.set.Status.Conditions, swarmv1.ConditionReady) || w.set.Status.LastCompletedRevision != w.set.Status.Revision ||
		w.set.Status.ClustersSummary != "3/4" || w.set.Status.History[0].Outcome != swarmv1.OutcomeCompleted {
		t.Fatalf("status %+v", w.set.Status)
	}
	if !testenv.HasEvent(w.Events(), swarmv1.EventReleaseCompleted) {
		t.Fatal("no ReleaseCompleted event")
	}
}

func TestBadCanaryHaltsAndOtherClustersNeverReceiveIt(t *testing.T) {
	w := newWorld(t, progressive("v4"))
	w.releaseEverywhere("v4")
	w.release("v5")
	w.pass()
	w.wantVersions(map[string]string{"canary-1": "v5", "prod-1": "v4", "prod-2": "v4"})
	w.settle("canary-1", swarmv1.ReasonRolledBack)
	w.pass()
	w.wantPhases("canary=Halted prod=Halted")
	// Approving prod, and time passing, change nothing: the release stays halted.
	w.approve("prod@v5")
	w.Clock.Advance(time.Hour)
	w.pass()
	w.wantVersions(map[string]string{"canary-1": "v5", "prod-1": "v4", "prod-2": "v4"})
	ready := meta.FindStatusCondition(w.set.Status.Conditions, swarmv1.ConditionReady)
	if !w.set.Status.Halted || ready.Reason != swarmv1.ReasonReleaseHalted || !meta.IsStatusConditionTrue(w.set.Status.Conditions, swarmv1.ConditionStalled) {
		t.Fatalf("status %+v", w.set.Status)
	}
	if !testenv.HasEvent(w.Events(), swarmv1.EventReleaseHalted) {
		t.Fatal("no ReleaseHalted event")
	}
}

func TestBadFirstReleaseNeverCreatesTheOtherStacks(t *testing.T) {
	w := newWorld(t, progressive("v5"))
	w.pass()
	w.settle("canary-1", swarmv1.ReasonDeadlineExceeded)
	w.pass()
	w.approve("prod")
	w.pass()
	if w.stack("prod-1") != nil || w.stack("prod-2") != nil {
		t.Fatal("a prod stack was created for a halted release")
	}
	w.wantPhases("canary=Halted prod=Halted")
}

func TestRollbackAllReturnsTheCanary(t *testing.T) {
	spec := progressive("v4")
	spec.Strategy.OnFailure = swarmv1.OnFailureRollbackAll
	w := newWorld(t, spec)
	w.releaseEverywhere("v4")
	w.release("v5")
	w.pass()
	w.settle("canary-1", swarmv1.ReasonRolledBack)
	w.pass()
	w.wantVersions(map[string]string{"canary-1": "v4", "prod-1": "v4", "prod-2": "v4"})
	if rev := w.stack("canary-1").Annotations[swarmv1.AnnotationSetRevision]; rev != w.set.Status.LastCompletedRevision || rev == w.set.Status.Revision {
		t.Fatalf("canary's revision %s, want the last completed %s", rev, w.set.Status.LastCompletedRevision)
	}
	w.settle("canary-1", "")
	w.pass()
	c := w.set.Status.Clusters[0]
	if c.Name != "canary-1" || c.Outcome != swarmv1.OutcomeCompleted || c.Revision != w.set.Status.LastCompletedRevision || !w.set.Status.Halted {
		t.Fatalf("canary %+v, halted %v", c, w.set.Status.Halted)
	}
	if w.set.Status.History[0].Outcome != releaseRolledBack {
		t.Fatalf("history %+v", w.set.Status.History)
	}
	// A new template is a new release: the set goes on.
	w.release("v6")
	w.pass()
	w.wantVersions(map[string]string{"canary-1": "v6"})
	w.wantPhases("canary=Progressing prod=Pending")
}

func TestClusterMatchedByNoStepIsReported(t *testing.T) {
	w := newWorld(t, progressive("v4"))
	w.pass()
	if len(w.set.Status.Unmatched) != 1 || w.set.Status.Unmatched[0] != "lab-1" {
		t.Fatalf("unmatched %v", w.set.Status.Unmatched)
	}
	if !meta.IsStatusConditionTrue(w.set.Status.Conditions, swarmv1.ConditionUnmatched) {
		t.Fatalf("conditions %+v", w.set.Status.Conditions)
	}
	if !testenv.HasEvent(w.Events(), swarmv1.EventClusterUnmatched) {
		t.Fatal("no ClusterUnmatched event")
	}
	if w.stack("lab-1") != nil {
		t.Fatal("an unmatched cluster got a stack")
	}
}

func TestClusterJoiningGetsTheReleaseInForce(t *testing.T) {
	w := newWorld(t, progressive("v4"))
	w.releaseEverywhere("v4")
	w.release("v5")
	w.pass()
	w.addCluster(Cluster{Name: "prod-3", Labels: map[string]string{"app": "numbers", "env": "prod"}})
	w.pass()
	w.wantVersions(map[string]string{"canary-1": "v5", "prod-3": "v4"})
	// It takes part in its step like the others when the step comes.
	w.settle("prod-3", "")
	w.settle("canary-1", "")
	w.Clock.Advance(10 * time.Minute)
	w.approve("prod@v5")
	w.pass()
	if got := w.set.Status.Steps[1]; got.Clusters != 3 || got.Phase != swarmv1.StepProgressing {
		t.Fatalf("prod step %+v", got)
	}
}

func TestClusterLeavingPerDeletionPolicy(t *testing.T) {
	for _, policy := range []string{"Delete", "Orphan"} {
		t.Run(policy, func(t *testing.T) {
			spec := progressive("v4")
			spec.DeletionPolicy = policy
			w := newWorld(t, spec)
			w.releaseEverywhere("v4")
			cl := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.Namespace, Name: "prod-2"}}
			w.Mutate(cl, func() { cl.Labels["app"] = "other" })
			w.pass()
			s := w.stack("prod-2")
			switch {
			case policy == "Delete" && s != nil:
				t.Fatal("the stack of a cluster that left is still there")
			case policy == "Orphan" && (s == nil || len(s.OwnerReferences) != 0 || s.Labels[swarmv1.LabelSet] != ""):
				t.Fatalf("orphaned stack %+v", s)
			}
			if w.stack("prod-1") == nil || w.set.Status.ClustersSummary != "2/3" {
				t.Fatalf("the others: %q", w.set.Status.ClustersSummary)
			}
		})
	}
}

func TestDeletingTheSetPerDeletionPolicy(t *testing.T) {
	for _, policy := range []string{"Delete", "Orphan"} {
		t.Run(policy, func(t *testing.T) {
			spec := progressive("v4")
			spec.DeletionPolicy = policy
			w := newWorld(t, spec)
			w.pass()
			w.Delete(w.set)
			if _, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w.set)}); err != nil {
				t.Fatal(err)
			}
			s := w.stack("canary-1")
			if (policy == "Delete") != (s == nil) || s != nil && len(s.OwnerReferences) != 0 {
				t.Fatalf("%s: stack %+v", policy, s)
			}
			if err := w.Client.Get(context.Background(), client.ObjectKeyFromObject(w.set), w.set); !apierrors.IsNotFound(err) {
				t.Fatalf("the set is still there: %v", err)
			}
		})
	}
}

func TestMaxConcurrentLimitsClustersRollingAtOnce(t *testing.T) {
	spec := progressive("v4")
	spec.Strategy.Steps = spec.Strategy.Steps[1:] // prod only: 50% of 2
	spec.Strategy.Steps[0].Approval = ""
	w := newWorld(t, spec, "prod-1", "prod-2")
	w.pass()
	w.pass()
	w.wantVersions(map[string]string{"prod-1": "v4", "prod-2": ""})
	w.settle("prod-1", "")
	w.pass()
	w.wantVersions(map[string]string{"prod-2": "v4"})
}

func TestProgressDeadlineHaltsAClusterThatNeverGetsReady(t *testing.T) {
	w := newWorld(t, progressive("v4"))
	res := w.pass()
	if res.RequeueAfter != 30*time.Minute {
		t.Fatalf("requeue after %s, want the progress deadline", res.RequeueAfter)
	}
	w.Clock.Advance(30 * time.Minute)
	w.pass()
	w.wantPhases("canary=Halted prod=Halted")
	if c := w.set.Status.Clusters[0]; c.Outcome != swarmv1.OutcomeDeadlineExceeded {
		t.Fatalf("canary %+v", c)
	}
}

func TestStackOfTheSameNameNotOwnedIsLeftAlone(t *testing.T) {
	w := newWorld(t, progressive("v4"))
	foreign := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Name: "numbers-canary-1"}, Spec: swarmv1.SwarmStackSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "canary-1"}, SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{Version: "mine"}}}
	w.Create(foreign)
	_, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w.set)})
	if err == nil {
		t.Fatal("no error for a stack the set does not own")
	}
	if v := w.version("canary-1"); v != "mine" {
		t.Fatalf("the foreign stack was overwritten: %q", v)
	}
}
