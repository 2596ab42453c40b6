package swarmstackset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers/swarmstack"
	"github.com/swarmops/swarm-operator/internal/compose"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

// The set reconciler and the real stack reconciler side by side on the unit harness,
// each SwarmCluster with its own in-memory Swarm: the set judges clusters by what the
// stack controller really reports, faults and gates included.

// stackCallTimeout bounds a stack pass, as Conn's per-call timeout bounds a Swarm call
// in production: a hung Swarm ends the pass instead of the test.
const stackCallTimeout = time.Second

type memFleet struct {
	*world
	stacks *swarmstack.Reconciler
	// stackEvents is the stack reconciler's own recorder, drained every round so that
	// many passes never fill it.
	stackEvents *record.FakeRecorder
	swarms      map[string]*memswarm.Swarm
}

// progressiveProdAtOnce is progressive with every prod cluster rolling at once, so that
// one prod cluster's fate can meet the other's rollout.
func progressiveProdAtOnce(version string) *swarmv1.SwarmStackSetSpec {
	spec := progressive(version)
	all := intstr.FromString("100%")
	spec.Strategy.Steps[1].MaxConcurrent = &all
	return spec
}

// newFleet is the world of set_unit_test.go (canary-1, prod-1, prod-2, lab-1) with a
// stack reconciler and an in-memory Swarm per cluster, each finishing rollouts at once.
func newFleet(t *testing.T, spec *swarmv1.SwarmStackSetSpec) *memFleet {
	t.Helper()
	spec = spec.DeepCopy()
	spec.Template.Spec.StackName = "numbers" // the same stack on every Swarm
	w := newWorld(t, spec)
	// The stack controller stamps its conditions with the wall clock (the soak counts
	// from them), so the harness clock starts at wall time and only moves forward.
	w.Clock.Set(time.Now().Truncate(time.Second))
	f := &memFleet{world: w, stackEvents: record.NewFakeRecorder(1000), swarms: map[string]*memswarm.Swarm{}}
	opened := testenv.ClusterSwarms{}
	for _, name := range []string{"canary-1", "prod-1", "prod-2", "lab-1"} {
		sw := memswarm.New()
		sw.Now = w.Clock.Now
		sw.AutoConverge = true
		sw.AddNode("manager1", swarmtypes.NodeRoleManager)
		sw.AddNode("worker1", swarmtypes.NodeRoleWorker)
		f.swarms[name], opened[name] = sw, sw
	}
	f.stacks = &swarmstack.Reconciler{Client: w.Client, APIReader: w.Client, Swarms: opened, Renderer: compose.NewCache(16),
		NamingKey: []byte("unit-test-key"), Recorder: f.stackEvents, Now: w.Clock.Now}
	return f
}

// round is one pass of the set, then one of every generated stack, then the clock moves
// past the stack controller's start grace. Errors of stack passes are what a retry
// with backoff would follow: the next round is that retry.
func (f *memFleet) round() {
	f.T.Helper()
	f.pass()
	var list swarmv1.SwarmStackList
	if err := f.Client.List(context.Background(), &list, client.InNamespace(testenv.Namespace)); err != nil {
		f.T.Fatal(err)
	}
	for _, s := range list.Items {
		ctx, cancel := context.WithTimeout(context.Background(), stackCallTimeout)
		_, _ = f.stacks.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
		cancel()
	}
	testenv.DrainEvents(f.stackEvents)
	f.Clock.Advance(3 * time.Second)
}

// settle runs rounds until one changes nothing: no object in the API server, no write
// to a Swarm.
func (f *memFleet) settle() {
	f.T.Helper()
	last := ""
	for range 40 {
		f.round()
		now := f.fingerprint()
		if now == last {
			return
		}
		last = now
	}
	f.T.Fatalf("the fleet did not settle in 40 rounds: %s", last)
}

func (f *memFleet) fingerprint() string {
	f.T.Helper()
	var list swarmv1.SwarmStackList
	if err := f.Client.List(context.Background(), &list, client.InNamespace(testenv.Namespace)); err != nil {
		f.T.Fatal(err)
	}
	parts := []string{"set=" + f.set.ResourceVersion}
	for _, s := range list.Items {
		parts = append(parts, s.Name+"="+s.ResourceVersion)
	}
	for _, name := range []string{"canary-1", "prod-1", "prod-2"} {
		parts = append(parts, fmt.Sprintf("%s:%d", name, len(f.swarms[name].Writes())))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// image is what service numbers_api of a cluster's Swarm runs; "" without it.
func (f *memFleet) image(cluster string) string {
	svc, ok := f.swarms[cluster].Service("numbers_api")
	if !ok {
		return ""
	}
	return svc.Spec.TaskTemplate.ContainerSpec.Image
}

func (f *memFleet) wantImages(want map[string]string) {
	f.T.Helper()
	for cluster, image := range want {
		if got := f.image(cluster); got != image {
			f.T.Errorf("Swarm of %s runs %q, want %q", cluster, got, image)
		}
	}
}

// wantNoWrite: the cluster's Swarm received no write since its calls were last reset.
func (f *memFleet) wantNoWrite(cluster, when string) {
	f.T.Helper()
	if w := f.swarms[cluster].Writes(); len(w) > 0 {
		f.T.Fatalf("%s: the Swarm of %s received writes: %+v", when, cluster, w)
	}
}

func (f *memFleet) resetCalls() {
	for _, sw := range f.swarms {
		sw.ResetCalls()
	}
}

func (f *memFleet) cluster(name string) swarmv1.StackSetClusterStatus {
	f.T.Helper()
	for _, c := range f.set.Status.Clusters {
		if c.Name == name {
			return c
		}
	}
	f.T.Fatalf("no status for cluster %s: %+v", name, f.set.Status.Clusters)
	return swarmv1.StackSetClusterStatus{}
}

func (f *memFleet) readyReason() string {
	if c := meta.FindStatusCondition(f.set.Status.Conditions, swarmv1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// releaseV4 walks v4, the first release, through every step with every Swarm healthy.
func (f *memFleet) releaseV4() {
	f.T.Helper()
	f.settle()
	f.Clock.Advance(10 * time.Minute)
	f.approve("prod@v4")
	f.settle()
	f.wantPhases("canary=Completed prod=Completed")
	f.wantImages(map[string]string{"canary-1": "numbers-api:v4", "prod-1": "numbers-api:v4", "prod-2": "numbers-api:v4"})
}

// toProd walks v5 through the canary, its soak and prod's approval.
func (f *memFleet) toProd() {
	f.T.Helper()
	f.release("v5")
	f.settle()
	f.Clock.Advance(10 * time.Minute)
	f.approve("prod@v5")
}

func TestFleetGoodReleaseWalksCanarySoakApprovalProdOnMemSwarms(t *testing.T) {
	f := newFleet(t, progressive("v4"))
	f.swarms["prod-1"].AutoConverge = false // prod-1's rollout ends when the test says
	f.settle()
	f.wantPhases("canary=Soaking prod=Pending")
	f.wantImages(map[string]string{"canary-1": "numbers-api:v4"})
	f.wantNoWrite("prod-1", "canary Ready")
	f.wantNoWrite("prod-2", "canary Ready")

	f.Clock.Advance(10 * time.Minute)
	f.settle()
	f.wantPhases("canary=Completed prod=AwaitingApproval")
	f.wantNoWrite("prod-1", "canary soaked, prod not approved")
	f.wantNoWrite("prod-2", "canary soaked, prod not approved")

	f.approve("prod@v4")
	f.settle()
	// maxConcurrent 50% of two: prod-2 waits for prod-1's rollout.
	f.wantPhases("canary=Completed prod=Progressing")
	if c := f.cluster("prod-1"); c.Outcome != swarmv1.OutcomeProgressing {
		t.Fatalf("prod-1 %+v", c)
	}
	f.wantImages(map[string]string{"prod-1": "numbers-api:v4"})
	f.wantNoWrite("prod-2", "prod-1 rolling")

	f.swarms["prod-1"].ConvergeAll()
	f.settle()
	f.wantPhases("canary=Completed prod=Completed")
	f.wantImages(map[string]string{"canary-1": "numbers-api:v4", "prod-1": "numbers-api:v4", "prod-2": "numbers-api:v4"})
	if f.readyReason() != swarmv1.ReasonReleaseCompleted || f.set.Status.ClustersSummary != "3/4" {
		t.Fatalf("status %+v", f.set.Status)
	}
	if len(f.swarms["lab-1"].Calls()) != 0 {
		t.Fatal("the Swarm of lab-1, which no step selects, was called")
	}
}

func TestFleetBadCanaryHaltsAndProdSwarmsSeeNoWrite(t *testing.T) {
	for _, onFailure := range []string{swarmv1.OnFailureHalt, swarmv1.OnFailureRollbackAll} {
		t.Run(onFailure, func(t *testing.T) {
			spec := progressive("v4")
			spec.Strategy.OnFailure = onFailure
			f := newFleet(t, spec)
			f.releaseV4()
			f.resetCalls()

			canary := f.swarms["canary-1"]
			canary.AutoConverge = false
			f.release("v5")
			f.settle()
			f.wantImages(map[string]string{"canary-1": "numbers-api:v5"})
			// Swarm's updater gives up on v5 and rolls the service back.
			canary.FailUpdate("numbers_api", "update rolled back due to failure: task exited")
			canary.ConvergeAll()
			canary.AutoConverge = true
			f.settle()

			f.wantPhases("canary=Halted prod=Halted")
			if !f.set.Status.Halted || f.readyReason() != swarmv1.ReasonReleaseHalted {
				t.Fatalf("status %+v", f.set.Status)
			}
			// Time and an approval change nothing.
			f.Clock.Advance(time.Hour)
			f.approve("prod@v5")
			f.settle()
			f.wantNoWrite("prod-1", "halted")
			f.wantNoWrite("prod-2", "halted")
			f.wantImages(map[string]string{"canary-1": "numbers-api:v4", "prod-1": "numbers-api:v4", "prod-2": "numbers-api:v4"})
			canaryStack := f.stack("canary-1")
			if onFailure == swarmv1.OnFailureRollbackAll {
				// The canary's stack runs the release in force by spec too, and is Ready on it.
				if canaryStack.Spec.Version != "v4" || !meta.IsStatusConditionTrue(canaryStack.Status.Conditions, swarmv1.ConditionReady) {
					t.Fatalf("canary stack %s, conditions %+v", canaryStack.Spec.Version, canaryStack.Status.Conditions)
				}
				if c := f.cluster("canary-1"); c.Revision != f.set.Status.LastCompletedRevision || c.Outcome != swarmv1.OutcomeCompleted {
					t.Fatalf("canary %+v", c)
				}
			} else if canaryStack.Spec.Version != "v5" {
				t.Fatalf("Halt rewrote the canary's stack: %s", canaryStack.Spec.Version)
			}
		})
	}
}

// releaseToProdWithProd1Unreachable releases v5 as far as the prod step while prod-1's
// Swarm does not answer, and returns that Swarm.
func (f *memFleet) releaseToProdWithProd1Unreachable() *memswarm.Swarm {
	f.releaseV4()
	f.resetCalls()
	prod1 := f.swarms["prod-1"]
	prod1.SetReachability("manager1", swarmtypes.ReachabilityUnreachable)
	f.toProd()
	f.settle()
	return prod1
}

// A prod Swarm that does not answer while its step runs: its stack reports it and keeps
// trying; the set holds the cluster as in progress, counting the progress deadline.
// Answering within the deadline, it gets the release and the step goes on; past it, the
// cluster failed and the set halts before the next prod Swarm is written.
func TestFleetUnreachableProdSwarmWaitsWithinTheProgressDeadline(t *testing.T) {
	f := newFleet(t, progressive("v4"))
	prod1 := f.releaseToProdWithProd1Unreachable()
	f.wantPhases("canary=Completed prod=Progressing")
	if c := f.cluster("prod-1"); c.Outcome != swarmv1.OutcomeProgressing || c.Revision != f.set.Status.Revision {
		t.Fatalf("prod-1 while its Swarm does not answer: %+v", c)
	}
	f.wantNoWrite("prod-2", "prod-1 unreachable")

	f.Clock.Advance(10 * time.Minute)
	prod1.SetReachability("manager1", swarmtypes.ReachabilityReachable)
	f.settle()
	f.wantPhases("canary=Completed prod=Completed")
	f.wantImages(map[string]string{"prod-1": "numbers-api:v5", "prod-2": "numbers-api:v5"})
}

// A halted release reaches no Swarm afterwards: the Swarm that did not answer in time
// does not get it when it answers again (its stack was written before the halt).
func TestFleetProdSwarmUnreachablePastTheProgressDeadlineHaltsTheSet(t *testing.T) {
	f := newFleet(t, progressive("v4"))
	prod1 := f.releaseToProdWithProd1Unreachable()
	f.Clock.Advance(30 * time.Minute)
	f.settle()
	f.wantPhases("canary=Completed prod=Halted")
	if c := f.cluster("prod-1"); c.Outcome != swarmv1.OutcomeDeadlineExceeded {
		t.Fatalf("prod-1 %+v", c)
	}
	f.wantNoWrite("prod-2", "halted on prod-1")

	prod1.SetReachability("manager1", swarmtypes.ReachabilityReachable)
	f.settle()
	f.wantNoWrite("prod-1", "answering again after the halt")
	f.wantImages(map[string]string{"prod-1": "numbers-api:v4", "prod-2": "numbers-api:v4"})
	if c := f.cluster("prod-1"); c.Outcome != swarmv1.OutcomeDeadlineExceeded || !f.set.Status.Halted {
		t.Fatalf("prod-1 %+v, halted %v", c, f.set.Status.Halted)
	}

	// The next release writes prod-1's stack as its template says, suspended no more.
	f.release("v6")
	f.settle()
	f.Clock.Advance(10 * time.Minute)
	f.approve("prod@v6")
	f.settle()
	f.wantPhases("canary=Completed prod=Completed")
	f.wantImages(map[string]string{"prod-1": "numbers-api:v6", "prod-2": "numbers-api:v6"})
}

// A halt stops what has not started, not a rollout under way: prod-2 fails while
// prod-1 rolls out; prod-1's stack goes on judging its rollout, and completes it.
func TestFleetHaltLetsARolloutUnderWayFinish(t *testing.T) {
	f := newFleet(t, progressiveProdAtOnce("v4"))
	f.releaseV4()
	prod1, prod2 := f.swarms["prod-1"], f.swarms["prod-2"]
	prod1.AutoConverge, prod2.AutoConverge = false, false
	f.toProd()
	f.settle()
	f.wantImages(map[string]string{"prod-1": "numbers-api:v5", "prod-2": "numbers-api:v5"})
	prod2.FailUpdate("numbers_api", "update rolled back due to failure: task exited")
	prod2.ConvergeAll()
	f.settle()
	f.wantPhases("canary=Completed prod=Halted")
	if s := f.stack("prod-1"); s.Spec.Suspend {
		t.Fatal("the halt suspended a stack whose rollout was under way")
	}
	prod1.ConvergeAll()
	f.settle()
	if c := f.cluster("prod-1"); c.Outcome != swarmv1.OutcomeCompleted || !f.set.Status.Halted {
		t.Fatalf("prod-1 %+v, halted %v", c, f.set.Status.Halted)
	}
	f.wantImages(map[string]string{"prod-1": "numbers-api:v5", "prod-2": "numbers-api:v4"})
}

// A cluster a freeze holds when the release halts on another does not get the halted
// revision when the freeze ends.
func TestFleetHaltKeepsTheReleaseFromAClusterAFreezeHeld(t *testing.T) {
	f := newFleet(t, progressiveProdAtOnce("v4"))
	f.releaseV4()
	f.resetCalls()
	start := metav1.NewTime(f.Clock.Now())
	cl := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.Namespace, Name: "prod-1"}}
	f.Mutate(cl, func() {
		cl.Spec.Freeze = []swarmv1.TimeWindow{{Start: &start, Duration: metav1.Duration{Duration: 20 * time.Minute}}}
	})
	prod2 := f.swarms["prod-2"]
	prod2.AutoConverge = false
	f.toProd()
	f.settle()
	prod2.FailUpdate("numbers_api", "update rolled back due to failure: task exited")
	prod2.ConvergeAll()
	f.settle()
	f.wantPhases("canary=Completed prod=Halted")
	if s := f.stack("prod-1"); !s.Spec.Suspend || !testenv.HasEvent(f.Events(), swarmv1.EventStackSuspended) {
		t.Fatalf("prod-1's stack suspend=%v", s.Spec.Suspend)
	}
	f.Clock.Advance(20 * time.Minute)
	f.settle()
	f.wantNoWrite("prod-1", "the freeze ended after the halt")
	f.wantImages(map[string]string{"prod-1": "numbers-api:v4", "prod-2": "numbers-api:v4"})
}

// A fault on prod-1's first service write of v5: refused, its answer lost (applied), or
// hung (not applied). The stack retries on its next pass; one rollout reaches the
// Swarm, and the set goes on to prod-2.
func TestFleetFaultyWriteOnAProdSwarmMakesOneRollout(t *testing.T) {
	for _, tc := range []struct {
		fault  string
		inject func(*memswarm.Swarm)
		// calls: the service writes of v5 that reached prod-1's Swarm, failed ones included.
		calls int
	}{
		{"refused", func(sw *memswarm.Swarm) {
			sw.Fail(memswarm.OpUpdateService, 1, errors.New("injected: manager refused the write"))
		}, 2},
		{"answer lost", func(sw *memswarm.Swarm) { sw.LoseAnswer(memswarm.OpUpdateService, 1) }, 1},
		{"hung", func(sw *memswarm.Swarm) { sw.Hang(memswarm.OpUpdateService, 1) }, 2},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			f := newFleet(t, progressive("v4"))
			f.releaseV4()
			f.resetCalls()
			tc.inject(f.swarms["prod-1"])
			generation := f.stack("prod-1").Generation
			f.toProd()
			f.settle()
			f.wantPhases("canary=Completed prod=Completed")
			f.wantImages(map[string]string{"prod-1": "numbers-api:v5", "prod-2": "numbers-api:v5"})
			var updates []memswarm.Call
			for _, c := range f.swarms["prod-1"].Writes() {
				if c.Op == memswarm.OpUpdateService {
					updates = append(updates, c)
				}
			}
			if len(updates) != tc.calls {
				t.Fatalf("service writes on prod-1: %+v, want %d", updates, tc.calls)
			}
			s := f.stack("prod-1")
			if s.Generation != generation+1 {
				t.Fatalf("the set wrote prod-1's stack %d times, want once", s.Generation-generation)
			}
			if h := s.Status.History; len(h) != 2 || h[0].Outcome != swarmv1.OutcomeCompleted || h[0].Version != "v5" {
				t.Fatalf("prod-1's history %+v, want one completed rollout of v5 after v4", h)
			}
		})
	}
}

// A freeze window or a drain on one prod Swarm holds that cluster's stack only: the set
// reports the step in progress with the stack's reason, the other prod cluster gets the
// release, and the held one follows when its gate lifts.
func TestFleetGateOnOneClusterHoldsOnlyThatCluster(t *testing.T) {
	for _, tc := range []struct {
		gate, reason string
		hold         func(f *memFleet) (lift func())
	}{
		{"freeze", swarmv1.ReasonFrozen, func(f *memFleet) func() {
			start := metav1.NewTime(f.Clock.Now())
			cl := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: testenv.Namespace, Name: "prod-1"}}
			f.Mutate(cl, func() {
				cl.Spec.Freeze = []swarmv1.TimeWindow{{Start: &start, Duration: metav1.Duration{Duration: 20 * time.Minute}}}
			})
			return func() { f.Clock.Advance(20 * time.Minute) }
		}},
		{"maintenance", swarmv1.ReasonMaintenanceInProgress, func(f *memFleet) func() {
			m := &swarmv1.SwarmNodeMaintenance{
				ObjectMeta: metav1.ObjectMeta{Namespace: testenv.Namespace, Name: "kernel"},
				Spec:       swarmv1.SwarmNodeMaintenanceSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "prod-1"}, Nodes: []string{"worker1"}},
			}
			f.Create(m)
			m.Status.Phase = swarmv1.PhaseDraining
			if err := f.Client.Status().Update(context.Background(), m); err != nil {
				f.T.Fatal(err)
			}
			return func() {
				m.Status.Phase = swarmv1.PhaseCompleted
				if err := f.Client.Status().Update(context.Background(), m); err != nil {
					f.T.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.gate, func(t *testing.T) {
			f := newFleet(t, progressiveProdAtOnce("v4"))
			f.releaseV4()
			f.resetCalls()
			f.toProd()
			lift := tc.hold(f)
			f.settle()

			f.wantPhases("canary=Completed prod=Progressing")
			if f.set.Status.Halted || f.readyReason() != swarmv1.ReasonReleaseProgressing {
				t.Fatalf("a held cluster failed the set: %+v", meta.FindStatusCondition(f.set.Status.Conditions, swarmv1.ConditionReady))
			}
			held := f.cluster("prod-1")
			if held.Outcome != swarmv1.OutcomeProgressing || held.Revision != f.set.Status.Revision {
				t.Fatalf("prod-1 %+v", held)
			}
			if r := meta.FindStatusCondition(f.stack("prod-1").Status.Conditions, swarmv1.ConditionReady); r == nil || r.Reason != tc.reason || held.Message != r.Message {
				t.Fatalf("prod-1's stack %+v, the set says %q", r, held.Message)
			}
			f.wantNoWrite("prod-1", tc.gate)
			f.wantImages(map[string]string{"prod-1": "numbers-api:v4", "prod-2": "numbers-api:v5"})
			if c := f.cluster("prod-2"); c.Outcome != swarmv1.OutcomeCompleted {
				t.Fatalf("prod-2 %+v", c)
			}

			lift()
			f.settle()
			f.wantPhases("canary=Completed prod=Completed")
			f.wantImages(map[string]string{"prod-1": "numbers-api:v5"})
		})
	}
}

// The template's dependsOn holds each generated stack until the dependency is Ready: the
// canary waits, the set reports it in progress, and goes on once the dependency is up.
func TestFleetTemplateDependsOnHoldsTheCanaryUntilTheDependencyIsReady(t *testing.T) {
	f := newFleet(t, progressive("v4"))
	f.releaseV4()
	f.resetCalls()
	f.Mutate(f.set, func() { f.set.Spec.Template.Spec.DependsOn = []swarmv1.DependencyReference{{Name: "db"}} })
	f.release("v5")
	f.settle()
	f.wantPhases("canary=Progressing prod=Pending")
	if r := meta.FindStatusCondition(f.stack("canary-1").Status.Conditions, swarmv1.ConditionReady); r == nil || r.Reason != swarmv1.ReasonDependencyNotReady {
		t.Fatalf("canary's stack %+v", r)
	}
	if c := f.cluster("canary-1"); c.Outcome != swarmv1.OutcomeProgressing || f.set.Status.Halted {
		t.Fatalf("canary %+v, halted %v", c, f.set.Status.Halted)
	}
	f.wantNoWrite("canary-1", "waiting for db")

	db := "services: {db: {image: postgres:17}}"
	f.Create(&swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: swarmv1.SwarmStackSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "lab-1"}, SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
			Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "docker-compose.yml", Inline: &db}}},
		}},
	})
	f.settle()
	f.wantPhases("canary=Soaking prod=Pending")
	f.wantImages(map[string]string{"canary-1": "numbers-api:v5"})
}
