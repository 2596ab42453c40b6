package swarmcluster

// The SwarmCluster reconciler on an in-memory Swarm and a fake API server: health,
// quorum, manager-count warnings, every error mapping, deletion. No envtest, no Docker.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit"
	"github.com/swarmops/swarm-operator/internal/testkit/testenv"
)

const clusterNS = "clusters"

// recordingSwarms opens sw (or fails with err) and records what it was told to forget.
type recordingSwarms struct {
	mu     sync.Mutex
	sw     swarm.Swarm
	err    error
	forgot []ktypes.NamespacedName
}

func (s *recordingSwarms) Open(context.Context, client.Reader, *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	if s.err != nil {
		return nil, s.err
	}
	return s.sw, nil
}

func (s *recordingSwarms) Forget(key ktypes.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgot = append(s.forgot, key)
}

type clusterWorld struct {
	t       *testing.T
	c       client.Client
	rec     *record.FakeRecorder
	sw      *memswarm.Swarm
	swarms  reconcile.Swarms
	cluster *swarmv1.SwarmCluster
}

// newClusterWorld is a fresh SwarmCluster (no status yet) over an in-memory swarm of
// that many managers ("manager1" the leader) and workers.
func newClusterWorld(t *testing.T, managers, workers int, mutate ...func(*swarmv1.SwarmCluster)) *clusterWorld {
	t.Helper()
	sw := memswarm.New()
	for i := 1; i <= managers; i++ {
		sw.AddNode(fmt.Sprintf("manager%d", i), swarmtypes.NodeRoleManager)
	}
	for i := 1; i <= workers; i++ {
		sw.AddNode(fmt.Sprintf("worker%d", i), swarmtypes.NodeRoleWorker)
	}
	cluster := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: clusterNS, Name: "prod", Generation: 1},
		Spec:       swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://manager1:2376"}},
	}
	for _, m := range mutate {
		m(cluster)
	}
	return &clusterWorld{
		t: t, c: testenv.IndexedClient(t, cluster), rec: record.NewFakeRecorder(100), sw: sw,
		swarms: &recordingSwarms{sw: sw}, cluster: cluster,
	}
}

func (w *clusterWorld) reconciler() *Reconciler {
	return &Reconciler{Client: w.c, Swarms: w.swarms, Recorder: w.rec}
}

func (w *clusterWorld) pass() (ctrl.Result, error) {
	return w.reconciler().Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w.cluster)})
}

func (w *clusterWorld) mustPass() ctrl.Result {
	w.t.Helper()
	res, err := w.pass()
	if err != nil {
		w.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (w *clusterWorld) get() *swarmv1.SwarmCluster {
	w.t.Helper()
	var c swarmv1.SwarmCluster
	if err := w.c.Get(context.Background(), client.ObjectKeyFromObject(w.cluster), &c); err != nil {
		w.t.Fatal(err)
	}
	return &c
}

func (w *clusterWorld) cond(typ string) *metav1.Condition {
	return meta.FindStatusCondition(w.get().Status.Conditions, typ)
}

func (w *clusterWorld) events() []string { return testenv.DrainEvents(w.rec) }

// wantReady fails unless Ready has that status and reason.
func (w *clusterWorld) wantReady(status metav1.ConditionStatus, reason string) *metav1.Condition {
	w.t.Helper()
	c := w.cond(swarmv1.ConditionReady)
	if c == nil || c.Status != status || c.Reason != reason {
		w.t.Fatalf("Ready = %+v, want %s/%s", c, status, reason)
	}
	return c
}

func TestClusterReadyReportsNodeAndManagerCountsAndQuorum(t *testing.T) {
	w := newClusterWorld(t, 3, 3, func(c *swarmv1.SwarmCluster) {
		c.Spec.Interval = &metav1.Duration{Duration: 10 * time.Second}
	})
	w.sw.ID = "0123456789abcdefghij"
	w.sw.SetAvailability("worker2", swarmtypes.NodeAvailabilityDrain)
	w.sw.SetAvailability("worker3", swarmtypes.NodeAvailabilityPause)
	w.sw.SetNodeState("worker3", swarmtypes.NodeStateDown)

	res := w.mustPass()
	if res.RequeueAfter < 10*time.Second || res.RequeueAfter > 11*time.Second {
		t.Errorf("RequeueAfter = %v, want the 10s interval plus at most 10%% jitter", res.RequeueAfter)
	}
	c := w.get()
	st := c.Status
	if st.ObservedGeneration != 1 || st.SwarmID != "0123456789abcdefghij" || st.APIVersion != "1.51" || st.Endpoint != "mem://manager1" {
		t.Errorf("status = gen %d, id %q, api %q, endpoint %q", st.ObservedGeneration, st.SwarmID, st.APIVersion, st.Endpoint)
	}
	wantM := swarmv1.ManagerStatus{Total: 3, Reachable: 3, Leader: "manager1", Quorum: 2, FaultTolerance: 1}
	if st.Managers == nil || *st.Managers != wantM {
		t.Errorf("managers = %+v, want %+v", st.Managers, wantM)
	}
	wantN := swarmv1.NodeCounts{Total: 6, Ready: 5, Active: 4, Pause: 1, Drain: 1}
	if st.Nodes == nil || *st.Nodes != wantN {
		t.Errorf("nodes = %+v, want %+v", st.Nodes, wantN)
	}
	ready := w.wantReady(metav1.ConditionTrue, swarmv1.ReasonConnected)
	for _, part := range []string{"Swarm 0123456789ab via mem://manager1", "3/3 managers reachable (quorum 2)", "5/6 nodes ready"} {
		if !strings.Contains(ready.Message, part) {
			t.Errorf("Ready message %q lacks %q", ready.Message, part)
		}
	}
	if strings.Contains(ready.Message, "0123456789abc") {
		t.Errorf("Ready message %q has the long swarm ID, want it shortened to 12 characters", ready.Message)
	}
	if warn := w.cond(swarmv1.ConditionManagerWarning); warn == nil || warn.Status != metav1.ConditionFalse || warn.Reason != "OddManagerCount" ||
		warn.Message != "3 managers tolerate 1 failures" {
		t.Errorf("ManagerCountWarning = %+v", warn)
	}
	if meta.FindStatusCondition(st.Conditions, swarmv1.ConditionStalled) != nil {
		t.Errorf("Stalled set on a ready cluster")
	}
	if ev := w.events(); len(ev) != 1 || !testenv.HasEvent(ev, swarmv1.ReasonConnected) {
		t.Errorf("events = %q, want one Connected", ev)
	}
	if got := clusterGauge(t, metrics.ClusterReachable, clusterNS, "prod"); got != 1 {
		t.Errorf("cluster reachable metric = %v, want 1", got)
	}
	if got := clusterGauge(t, metrics.ManagersQuorum, clusterNS, "prod"); got != 2 {
		t.Errorf("quorum metric = %v, want 2", got)
	}

	// A second pass with nothing changed writes nothing and says nothing.
	rv := c.ResourceVersion
	w.mustPass()
	if got := w.get().ResourceVersion; got != rv {
		t.Errorf("resourceVersion moved %s -> %s on an unchanged status", rv, got)
	}
	if ev := w.events(); len(ev) != 0 {
		t.Errorf("events on an unchanged pass: %q", ev)
	}
}

func TestClusterReportsQuorumLostWhenTooFewManagersAnswer(t *testing.T) {
	w := newClusterWorld(t, 3, 1)
	// The leader still answers but knows nothing of the other two managers.
	w.sw.SetReachability("manager2", swarmtypes.ReachabilityUnknown)
	w.sw.SetReachability("manager3", swarmtypes.ReachabilityUnknown)

	res := w.mustPass()
	if res.RequeueAfter < defaultClusterInterval {
		t.Errorf("RequeueAfter = %v, want the default interval", res.RequeueAfter)
	}
	ready := w.wantReady(metav1.ConditionFalse, swarmv1.ReasonQuorumLost)
	if !strings.HasPrefix(ready.Message, "Quorum is lost: ") || !strings.Contains(ready.Message, "1/3 managers reachable (quorum 2)") {
		t.Errorf("Ready message = %q", ready.Message)
	}
	if w.cond(swarmv1.ConditionStalled) != nil {
		t.Errorf("a lost quorum is Stalled; it may come back by itself")
	}
	if m := w.get().Status.Managers; m == nil || m.Reachable != 1 || m.Quorum != 2 || m.Leader != "manager1" {
		t.Errorf("managers = %+v", m)
	}
	if ev := w.events(); testenv.HasEvent(ev, swarmv1.ReasonConnected) {
		t.Errorf("Connected event without quorum: %q", ev)
	}
	if got := clusterGauge(t, metrics.ClusterReachable, clusterNS, "prod"); got != 0 {
		t.Errorf("cluster reachable metric = %v, want 0", got)
	}
}

func TestClusterHealthErrorsMapToReasons(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{swarm.ErrQuorumLost, swarmv1.ReasonQuorumLost},
		{swarm.ErrTLS, swarmv1.ReasonTLSError},
		{swarm.ErrNotInSwarm, swarmv1.ReasonNotInSwarm},
		{swarm.ErrNotAManager, swarmv1.ReasonNotAManager},
		{swarm.ErrUnreachable, swarmv1.ReasonUnreachable},
		{errors.New("something else"), swarmv1.ReasonUnreachable},
	} {
		t.Run(tc.reason+"/"+tc.err.Error(), func(t *testing.T) {
			w := newClusterWorld(t, 3, 0)
			w.mustPass()
			w.wantReady(metav1.ConditionTrue, swarmv1.ReasonConnected)
			w.events()

			w.sw.Fail(memswarm.OpHealth, 1, fmt.Errorf("tcp://manager1:2376: %w", tc.err))
			res := w.mustPass()
			if res.RequeueAfter != 5*time.Second {
				t.Errorf("RequeueAfter = %v, want a 5s retry", res.RequeueAfter)
			}
			ready := w.wantReady(metav1.ConditionFalse, tc.reason)
			if !strings.Contains(ready.Message, tc.err.Error()) {
				t.Errorf("Ready message %q lacks the error", ready.Message)
			}
			if w.cond(swarmv1.ConditionStalled) != nil {
				t.Errorf("Stalled on a health error; it may pass by itself")
			}
			ev := w.events()
			if len(ev) != 1 || !strings.HasPrefix(ev[0], corev1.EventTypeWarning+" "+tc.reason+" ") {
				t.Errorf("events = %q, want one Warning %s", ev, tc.reason)
			}
			// The last-seen totals stay, but no manager is claimed reachable.
			want := swarmv1.ManagerStatus{Total: 3, Reachable: 0, Quorum: 2, FaultTolerance: 1}
			if m := w.get().Status.Managers; m == nil || *m != want {
				t.Errorf("managers = %+v, want %+v", m, want)
			}

			// A second failure says nothing new; recovery says Connected again.
			w.sw.Fail(memswarm.OpHealth, 1, fmt.Errorf("again: %w", tc.err))
			w.mustPass()
			if ev := w.events(); len(ev) != 0 {
				t.Errorf("events on a repeated failure: %q", ev)
			}
			w.mustPass()
			w.wantReady(metav1.ConditionTrue, swarmv1.ReasonConnected)
			if ev := w.events(); !testenv.HasEvent(ev, swarmv1.ReasonConnected) {
				t.Errorf("events on recovery = %q, want Connected", ev)
			}
		})
	}
}

func TestClusterLosingMostManagersReportsQuorumLostAndKeepsLastSeenTotals(t *testing.T) {
	w := newClusterWorld(t, 3, 2)
	w.mustPass()
	w.events()
	w.sw.SetReachability("manager2", swarmtypes.ReachabilityUnreachable)
	w.sw.SetReachability("manager3", swarmtypes.ReachabilityUnreachable)
	w.mustPass()
	w.wantReady(metav1.ConditionFalse, swarmv1.ReasonQuorumLost)
	st := w.get().Status
	if st.Managers == nil || st.Managers.Total != 3 || st.Managers.Reachable != 0 || st.Managers.Leader != "" {
		t.Errorf("managers = %+v, want the last-seen total without reachable managers or leader", st.Managers)
	}
	if st.Nodes == nil || st.Nodes.Total != 5 || st.Endpoint != "mem://manager1" || st.SwarmID != "memswarm" {
		t.Errorf("status lost what was last seen: nodes %+v, endpoint %q, id %q", st.Nodes, st.Endpoint, st.SwarmID)
	}

	w.sw.SetReachability("manager1", swarmtypes.ReachabilityUnreachable)
	w.mustPass()
	w.wantReady(metav1.ConditionFalse, swarmv1.ReasonUnreachable)
}

func TestClusterNeverSeenReachableRaisesNoWarningAndClaimsNoManagers(t *testing.T) {
	w := newClusterWorld(t, 1, 0)
	w.sw.FailAlways(memswarm.OpHealth, fmt.Errorf("dial: %w", swarm.ErrUnreachable))
	w.mustPass()
	w.wantReady(metav1.ConditionFalse, swarmv1.ReasonUnreachable)
	if ev := w.events(); len(ev) != 0 {
		t.Errorf("events before the cluster was ever ready: %q", ev)
	}
	if m := w.get().Status.Managers; m != nil {
		t.Errorf("managers = %+v, want none before the first contact", m)
	}
}

func TestClusterEndpointChangeIsRecordedAsAnEvent(t *testing.T) {
	w := newClusterWorld(t, 3, 0)
	w.mustPass()
	w.events()
	// manager1 goes away; the others keep quorum and calls fail over to manager2.
	w.sw.SetReachability("manager1", swarmtypes.ReachabilityUnreachable)
	w.sw.SetLeader("manager2")
	w.mustPass()
	st := w.get().Status
	if st.Endpoint != "mem://manager2" {
		t.Fatalf("endpoint = %q, want mem://manager2", st.Endpoint)
	}
	w.wantReady(metav1.ConditionTrue, swarmv1.ReasonConnected)
	if st.Managers.Reachable != 2 || st.Managers.Leader != "manager2" {
		t.Errorf("managers = %+v", st.Managers)
	}
	ev := w.events()
	want := corev1.EventTypeNormal + " EndpointChanged Now using mem://manager2 (was mem://manager1)"
	if len(ev) != 1 || ev[0] != want {
		t.Errorf("events = %q, want [%q]", ev, want)
	}
}

func TestClusterWarnsAboutEvenOrTooManyManagers(t *testing.T) {
	for _, tc := range []struct {
		managers int
		status   metav1.ConditionStatus
		reason   string
		message  string
	}{
		{1, metav1.ConditionFalse, "OddManagerCount", "1 managers tolerate 0 failures"},
		{2, metav1.ConditionTrue, "EvenManagerCount", "2 managers tolerate no more failures than 1: use an odd number"},
		{4, metav1.ConditionTrue, "EvenManagerCount", "4 managers tolerate no more failures than 3: use an odd number"},
		{5, metav1.ConditionFalse, "OddManagerCount", "5 managers tolerate 2 failures"},
		{7, metav1.ConditionFalse, "OddManagerCount", "7 managers tolerate 3 failures"},
		{9, metav1.ConditionTrue, "TooManyManagers", "9 managers: more than 7 slows every Raft write without real gain"},
	} {
		t.Run(fmt.Sprint(tc.managers), func(t *testing.T) {
			w := newClusterWorld(t, tc.managers, 1)
			w.mustPass()
			w.wantReady(metav1.ConditionTrue, swarmv1.ReasonConnected)
			c := w.cond(swarmv1.ConditionManagerWarning)
			if c == nil || c.Status != tc.status || c.Reason != tc.reason || c.Message != tc.message || c.ObservedGeneration != 1 {
				t.Errorf("ManagerCountWarning = %+v, want %s/%s %q", c, tc.status, tc.reason, tc.message)
			}
			if m := w.get().Status.Managers; m.Quorum != int32(tc.managers/2+1) {
				t.Errorf("quorum = %d for %d managers", m.Quorum, tc.managers)
			}
		})
	}
}

func TestClusterOpenErrorsStallWithTheirReason(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("%w: TLS Secret %q does not exist", reconcile.ErrSecretNotFound, "tls"), swarmv1.ReasonSecretNotFound},
		{fmt.Errorf("%w: bad PEM", swarm.ErrTLS), swarmv1.ReasonTLSError},
		{fmt.Errorf("%w: the endpoint list is empty", swarm.ErrInvalid), swarmv1.ReasonInvalidSpec},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			w := newClusterWorld(t, 1, 0)
			w.swarms = &recordingSwarms{err: tc.err}
			res, err := w.pass()
			if err != nil {
				t.Fatalf("reconcile: %v (a user error is status, not a retry loop)", err)
			}
			if res.RequeueAfter < defaultClusterInterval {
				t.Errorf("RequeueAfter = %v, want the resync interval, not a tight loop", res.RequeueAfter)
			}
			w.wantReady(metav1.ConditionFalse, tc.reason)
			if s := w.cond(swarmv1.ConditionStalled); s == nil || s.Status != metav1.ConditionTrue || s.Reason != tc.reason {
				t.Errorf("Stalled = %+v, want True/%s", s, tc.reason)
			}
			if g := w.get().Status.ObservedGeneration; g != 1 {
				t.Errorf("observedGeneration = %d", g)
			}
		})
	}
}

func TestClusterUnexpectedOpenErrorIsReturnedForARetry(t *testing.T) {
	w := newClusterWorld(t, 1, 0)
	boom := errors.New("apiserver hiccup")
	w.swarms = &recordingSwarms{err: boom}
	if _, err := w.pass(); !errors.Is(err, boom) {
		t.Fatalf("reconcile error = %v, want %v", err, boom)
	}
	if c := w.cond(swarmv1.ConditionReady); c != nil {
		t.Errorf("Ready = %+v, want nothing claimed on a transient error", c)
	}
}

// TestClusterMissingTLSSecretStallsUntilItIsComplete goes through the production Open
// (reconcile.ConnectCluster): a missing Secret, then missing keys, then unusable keys.
func TestClusterMissingTLSSecretStallsUntilItIsComplete(t *testing.T) {
	hub := swarm.NewHub(logr.Discard())
	t.Cleanup(hub.Close)
	w := newClusterWorld(t, 1, 0, func(c *swarmv1.SwarmCluster) {
		c.Spec.TLSSecretRef = &swarmv1.LocalObjectReference{Name: "prod-tls"}
	})
	w.swarms = reconcile.HubSwarms{Hub: hub}

	w.mustPass()
	ready := w.wantReady(metav1.ConditionFalse, swarmv1.ReasonSecretNotFound)
	if !strings.Contains(ready.Message, `TLS Secret "prod-tls" does not exist`) {
		t.Errorf("Ready message = %q", ready.Message)
	}
	if s := w.cond(swarmv1.ConditionStalled); s == nil || s.Reason != swarmv1.ReasonSecretNotFound {
		t.Errorf("Stalled = %+v", s)
	}

	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: clusterNS, Name: "prod-tls"},
		Data:       map[string][]byte{"ca.crt": []byte("ca"), "tls.crt": []byte("cert")},
	}
	if err := w.c.Create(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	w.mustPass()
	ready = w.wantReady(metav1.ConditionFalse, swarmv1.ReasonSecretNotFound)
	if !strings.Contains(ready.Message, `has no key "tls.key"`) {
		t.Errorf("Ready message = %q, want the missing key named", ready.Message)
	}

	sec.Data["tls.key"] = []byte("key")
	if err := w.c.Update(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	w.mustPass()
	w.wantReady(metav1.ConditionFalse, swarmv1.ReasonTLSError)
	if s := w.cond(swarmv1.ConditionStalled); s == nil || s.Reason != swarmv1.ReasonTLSError {
		t.Errorf("Stalled = %+v, want TLSError", s)
	}
	// Forget on a cluster the hub never connected is harmless.
	reconcile.HubSwarms{Hub: hub}.Forget(client.ObjectKeyFromObject(w.cluster))
}

func TestClusterWithoutEndpointsIsAnInvalidSpec(t *testing.T) {
	hub := swarm.NewHub(logr.Discard())
	t.Cleanup(hub.Close)
	w := newClusterWorld(t, 1, 0, func(c *swarmv1.SwarmCluster) { c.Spec.Endpoints = nil })
	w.swarms = reconcile.HubSwarms{Hub: hub}
	w.mustPass()
	w.wantReady(metav1.ConditionFalse, swarmv1.ReasonInvalidSpec)
	if s := w.cond(swarmv1.ConditionStalled); s == nil || s.Reason != swarmv1.ReasonInvalidSpec {
		t.Errorf("Stalled = %+v", s)
	}
}

func TestClusterDeletionForgetsTheConnectionAndItsMetrics(t *testing.T) {
	w := newClusterWorld(t, 3, 0)
	w.mustPass()
	if err := w.c.Delete(context.Background(), w.get()); err != nil {
		t.Fatal(err)
	}
	res, err := w.pass()
	if err != nil || res != (ctrl.Result{}) {
		t.Fatalf("reconcile of a deleted cluster = %+v, %v", res, err)
	}
	rs := w.swarms.(*recordingSwarms)
	want := ktypes.NamespacedName{Namespace: clusterNS, Name: "prod"}
	if len(rs.forgot) != 1 || rs.forgot[0] != want {
		t.Errorf("forgot %v, want [%v]", rs.forgot, want)
	}
	for name, vec := range map[string]interface {
		DeleteLabelValues(...string) bool
	}{"reachable": metrics.ClusterReachable, "managers": metrics.ManagersReachable, "quorum": metrics.ManagersQuorum} {
		if vec.DeleteLabelValues(clusterNS, "prod") {
			t.Errorf("%s metric of a deleted cluster was still there", name)
		}
	}
}

func TestClusterReadAndStatusWriteErrorsAreReturned(t *testing.T) {
	boom := errors.New("etcd is sad")
	cluster := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: clusterNS, Name: "prod", Generation: 1},
		Spec:       swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m:2376"}},
	}
	sw := memswarm.New()
	sw.AddNode("manager1", swarmtypes.NodeRoleManager)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cluster)}

	failGet := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(cluster.DeepCopy()).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return boom
		}}).Build()
	rs := &recordingSwarms{sw: sw}
	r := &Reconciler{Client: failGet, Swarms: rs, Recorder: record.NewFakeRecorder(10)}
	if _, err := r.Reconcile(context.Background(), req); !errors.Is(err, boom) {
		t.Errorf("Get failure: reconcile error = %v", err)
	}
	if len(rs.forgot) != 0 {
		t.Errorf("a failed read forgot the connection: %v", rs.forgot)
	}

	failPatch := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(cluster.DeepCopy()).
		WithStatusSubresource(&swarmv1.SwarmCluster{}).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
			return boom
		}}).Build()
	r = &Reconciler{Client: failPatch, Swarms: rs, Recorder: record.NewFakeRecorder(10)}
	if _, err := r.Reconcile(context.Background(), req); !errors.Is(err, boom) {
		t.Errorf("status patch failure: reconcile error = %v", err)
	}
}

func TestClustersForSecretFindsTheClustersNamingIt(t *testing.T) {
	mk := func(ns, name, secret string) *swarmv1.SwarmCluster {
		c := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		c.Spec.Endpoints = []string{"tcp://m:2376"}
		if secret != "" {
			c.Spec.TLSSecretRef = &swarmv1.LocalObjectReference{Name: secret}
		}
		return c
	}
	objs := []client.Object{mk("a", "one", "tls"), mk("a", "two", "tls"), mk("a", "other", "other-tls"), mk("a", "plain", ""), mk("b", "elsewhere", "tls")}
	// The same index SetupWithManager registers.
	c := fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(objs...).
		WithIndex(&swarmv1.SwarmCluster{}, reconcile.IndexTLSSecret, func(o client.Object) []string {
			if ref := o.(*swarmv1.SwarmCluster).Spec.TLSSecretRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}).Build()
	r := &Reconciler{Client: c}
	reqs := r.clustersForSecret(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "tls"}})
	got := map[string]bool{}
	for _, q := range reqs {
		got[q.String()] = true
	}
	if len(reqs) != 2 || !got["a/one"] || !got["a/two"] {
		t.Errorf("requests = %v, want a/one and a/two", reqs)
	}

	// Without the index the list fails: no requests rather than a panic.
	r = &Reconciler{Client: fake.NewClientBuilder().WithScheme(testkit.Scheme(t)).WithObjects(mk("a", "one", "tls")).Build()}
	if reqs := r.clustersForSecret(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "tls"}}); reqs != nil {
		t.Errorf("requests on a failed list = %v", reqs)
	}
}

func TestSendNonBlockingDropsEventsWhenTheQueueIsFull(t *testing.T) {
	ch := make(chan event.GenericEvent, 1)
	first := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Name: "first"}}
	done := make(chan struct{})
	go func() {
		reconcile.SendNonBlocking(ch, first)
		reconcile.SendNonBlocking(ch, &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Name: "second"}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SendNonBlocking blocked on a full queue")
	}
	if got := (<-ch).Object.GetName(); got != "first" || len(ch) != 0 {
		t.Errorf("queue held %q and %d more, want only the first", got, len(ch))
	}
}

func TestSummariseCountsQuorumAndFaultTolerance(t *testing.T) {
	m, n := summarise(nil)
	if m.Total != 0 || m.Quorum != 1 || n.Total != 0 {
		t.Errorf("empty: managers %+v nodes %+v", m, n)
	}
	if managersFromLastSeen(nil) != nil {
		t.Errorf("managersFromLastSeen(nil) invented a status")
	}
	if reconcile.ShortID("short") != "short" {
		t.Errorf("reconcile.ShortID changed a short ID")
	}
}

// clusterGauge reads one labelled gauge of a metric vector.
func clusterGauge(t *testing.T, vec *prometheus.GaugeVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(vec.WithLabelValues(labels...))
}

func TestClusterWarnsWhenAReadyClusterLosesQuorumByItsNodeList(t *testing.T) {
	w := newClusterWorld(t, 3, 0)
	w.mustPass()
	w.events()
	w.sw.SetReachability("manager2", swarmtypes.ReachabilityUnknown)
	w.sw.SetReachability("manager3", swarmtypes.ReachabilityUnknown)
	w.mustPass()
	w.wantReady(metav1.ConditionFalse, swarmv1.ReasonQuorumLost)
	if ev := w.events(); !testenv.HasEvent(ev, swarmv1.ReasonQuorumLost) {
		t.Errorf("events = %q, want a Warning QuorumLost as when Health itself fails", ev)
	}
}

func TestClusterCountsNodesOfUnknownStateApartFromNotReady(t *testing.T) {
	w := newClusterWorld(t, 3, 2)
	// Right after a leader election the new leader has heard from nobody yet.
	w.sw.SetNodeState("worker1", swarmtypes.NodeStateUnknown)
	w.sw.SetNodeState("worker2", swarmtypes.NodeStateUnknown)
	w.mustPass()
	st := w.get().Status
	if st.Nodes.Unknown != 2 || st.Nodes.Ready != 3 || st.Nodes.Total != 5 {
		t.Fatalf("node counts %+v", st.Nodes)
	}
	if c := w.cond(swarmv1.ConditionReady); !strings.Contains(c.Message, "3/5 nodes ready, 2 unknown") {
		t.Fatalf("message %q does not say which nodes are unknown", c.Message)
	}
}

// An endpoint the operator's policy refuses: Ready=False EndpointNotAllowed, Stalled,
// the message names the endpoint and the flag; the Swarm is never opened.
func TestClusterEndpointNotAllowedSaysWhichRule(t *testing.T) {
	w := newClusterWorld(t, 1, 0, func(c *swarmv1.SwarmCluster) { c.Spec.Endpoints = []string{"unix:///var/run/docker.sock"} })
	inner := &recordingSwarms{err: errors.New("opened a refused cluster")}
	w.swarms = reconcile.GuardedSwarms{Swarms: inner}
	w.mustPass()
	c := w.wantReady(metav1.ConditionFalse, swarmv1.ReasonEndpointNotAllowed)
	if !strings.Contains(c.Message, `endpoint "unix:///var/run/docker.sock" is refused`) || !strings.Contains(c.Message, "--allow-unix-swarm-endpoints") {
		t.Fatalf("message %q", c.Message)
	}
	if s := w.cond(swarmv1.ConditionStalled); s == nil || s.Status != metav1.ConditionTrue {
		t.Fatalf("Stalled = %+v", s)
	}
	// Allowed by the flag, the same cluster connects.
	w.swarms = reconcile.GuardedSwarms{Swarms: &recordingSwarms{sw: w.sw}, Policy: reconcile.EndpointPolicy{AllowUnix: true}}
	w.mustPass()
	w.wantReady(metav1.ConditionTrue, swarmv1.ReasonConnected)
}
