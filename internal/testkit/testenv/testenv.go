// Package testenv is the world of the controllers' fast unit tests: a fake API server
// (controller-runtime's fake client) with the controllers' indexes, a settable clock, an
// event recorder and a Swarms that hands out one in-memory swarm. No envtest, no Docker:
// a test builds an Env, creates its objects, and calls a reconciler's Reconcile itself,
// in a loop, moving the clock.
package testenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	ktypes "k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/internal/testkit"
)

// Namespace is where the harness puts its SwarmCluster.
const Namespace = "unit"

// Epoch is where every unit clock starts: a fixed instant, so windows and messages
// are the same on every run.
var Epoch = time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)

// IndexedClient is a fake API server holding objs, with the status subresource on the
// three kinds (so Update leaves status alone and Status().Patch only status, as the real
// API server does), and the controllers' indexes of stacks and maintenances.
func IndexedClient(t testing.TB, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := testkit.Scheme(t)
	return WithIndexes(testkit.ClientBuilder(t, objs...).WithScheme(scheme).WithObjectTracker(PlainTracker(scheme))).
		WithInterceptorFuncs(generations).Build()
}

// PlainTracker is an object tracker for a fake client that keeps no managed fields: the
// default one tracks them by reflection, which knows no uint64 (the task counts a
// stack's status holds once the stack controller ran); the API server handles them as
// JSON.
func PlainTracker(scheme *runtime.Scheme) clienttesting.ObjectTracker {
	return clienttesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
}

// generations keeps metadata.generation as the API server does, which the fake client
// does not: 1 at creation, one more on each write that changes the spec. A controller
// that judges another by observedGeneration (a SwarmStackSet its generated stacks) would
// otherwise take the status of the old spec for the new one's. A caller that sets a
// generation itself keeps it unless the spec changed and it is not past the stored one.
var generations = interceptor.Funcs{
	Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if obj.GetGeneration() == 0 {
			obj.SetGeneration(1)
		}
		return c.Create(ctx, obj, opts...)
	},
	Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		stored, ok := obj.DeepCopyObject().(client.Object)
		if ok && c.Get(ctx, client.ObjectKeyFromObject(obj), stored) == nil && specChanged(stored, obj) {
			obj.SetGeneration(max(obj.GetGeneration(), stored.GetGeneration()+1))
		}
		return c.Update(ctx, obj, opts...)
	},
	Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		before, ok := obj.DeepCopyObject().(client.Object)
		if !ok || c.Get(ctx, client.ObjectKeyFromObject(obj), before) != nil {
			return c.Patch(ctx, obj, patch, opts...)
		}
		if err := c.Patch(ctx, obj, patch, opts...); err != nil || !specChanged(before, obj) {
			return err
		}
		obj.SetGeneration(before.GetGeneration() + 1)
		return c.Update(ctx, obj)
	},
}

func specChanged(a, b client.Object) bool {
	ua, errA := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	ub, errB := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	return errA == nil && errB == nil && !equality.Semantic.DeepEqual(ua["spec"], ub["spec"])
}

// WithIndexes adds the field indexes that the stack and maintenance
// controllers register with the manager's cache, and read each other's through.
func WithIndexes(b *fake.ClientBuilder) *fake.ClientBuilder {
	for name, fn := range reconcile.StackIndexes {
		b = b.WithIndex(&swarmv1.SwarmStack{}, name, fn)
	}
	return b.WithIndex(&swarmv1.SwarmNodeMaintenance{}, reconcile.IndexClusterRef, reconcile.MaintenanceClusterRef)
}

// ReadyCluster is a SwarmCluster whose status says Ready at its current generation.
func ReadyCluster(namespace, name string) *swarmv1.SwarmCluster {
	c := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1}}
	c.Spec.Endpoints = []string{"mem://" + name}
	c.Status.Conditions = []metav1.Condition{{
		Type: swarmv1.ConditionReady, Status: metav1.ConditionTrue, Reason: swarmv1.ReasonConnected,
		Message: "in-memory swarm", ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(Epoch),
	}}
	return c
}

// Clock is a clock tests set and move; safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

func NewClock() *Clock { return &Clock{now: Epoch} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// StaticSwarms opens the same Swarm for every SwarmCluster, or fails with Err.
type StaticSwarms struct {
	Swarm swarm.Swarm
	Err   error
}

func (s StaticSwarms) Open(context.Context, client.Reader, *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	if s.Err != nil {
		return nil, s.Err
	}
	return s.Swarm, nil
}

func (StaticSwarms) Forget(ktypes.NamespacedName) {}

// ClusterSwarms opens each SwarmCluster's own Swarm, by the cluster's name, as a fleet
// of Swarms behind one operator; a cluster without an entry fails to open.
type ClusterSwarms map[string]swarm.Swarm

func (m ClusterSwarms) Open(_ context.Context, _ client.Reader, c *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	if sw, ok := m[c.Name]; ok {
		return sw, nil
	}
	return nil, fmt.Errorf("testenv: no Swarm for SwarmCluster %s", c.Name)
}

func (ClusterSwarms) Forget(ktypes.NamespacedName) {}

// Env is one unit test's world: a fake API server with a Ready SwarmCluster "prod"
// in namespace "unit", a clock, an event recorder and the Swarm the controllers open.
type Env struct {
	T        testing.TB
	Client   client.WithWatch
	Clock    *Clock
	Recorder *record.FakeRecorder
	Swarms   StaticSwarms
	Cluster  *swarmv1.SwarmCluster
}

// NewEnv builds the world around sw (any swarm.Swarm, usually a memswarm.Swarm);
// objs are created in the fake API server besides the cluster.
func NewEnv(t testing.TB, sw swarm.Swarm, objs ...client.Object) *Env {
	t.Helper()
	cluster := ReadyCluster(Namespace, "prod")
	cluster.UID = "uid-unit-prod"
	c := IndexedClient(t, append([]client.Object{cluster}, objs...)...)
	return &Env{T: t, Client: c, Clock: NewClock(), Recorder: record.NewFakeRecorder(1000), Swarms: StaticSwarms{Swarm: sw}, Cluster: cluster}
}

// Events drains the events recorded so far ("Type Reason Message" each).
func (e *Env) Events() []string { return DrainEvents(e.Recorder) }

// DrainEvents empties a FakeRecorder's channel without blocking.
func DrainEvents(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case ev := <-rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// HasEvent tells whether one of the events has that reason (events read "Type Reason Message").
func HasEvent(events []string, reason string) bool {
	for _, ev := range events {
		if f := strings.Fields(ev); len(f) > 1 && f[1] == reason {
			return true
		}
	}
	return false
}

// Get re-reads obj from the fake API server.
func (e *Env) Get(obj client.Object) {
	e.T.Helper()
	if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		e.T.Fatal(err)
	}
}

// Create creates obj in the fake API server, stamped as the API server would: a UID and
// the clock's time as creation time (the fake client sets neither).
func (e *Env) Create(obj client.Object) {
	e.T.Helper()
	if obj.GetNamespace() == "" {
		obj.SetNamespace(Namespace)
	}
	if obj.GetUID() == "" {
		obj.SetUID(ktypes.UID(fmt.Sprintf("uid-%s-%s", obj.GetNamespace(), obj.GetName())))
	}
	obj.SetCreationTimestamp(metav1.NewTime(e.Clock.Now()))
	if err := e.Client.Create(context.Background(), obj); err != nil {
		e.T.Fatal(err)
	}
}

// Mutate re-reads obj, applies change and writes it back (spec and metadata).
func (e *Env) Mutate(obj client.Object, change func()) {
	e.T.Helper()
	e.Get(obj)
	change()
	if err := e.Client.Update(context.Background(), obj); err != nil {
		e.T.Fatal(err)
	}
}

// Delete deletes obj; with finalizers it stays, with a deletionTimestamp, until they go.
func (e *Env) Delete(obj client.Object) {
	e.T.Helper()
	if err := e.Client.Delete(context.Background(), obj); err != nil {
		e.T.Fatal(err)
	}
}

// StackLists counts the SwarmStacks that lists through it return, and fails those lists
// with err while it is set.
type StackLists struct {
	client.Client
	Read int
	Err  error
}

func (c *StackLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	l, ok := list.(*swarmv1.SwarmStackList)
	if !ok {
		return c.Client.List(ctx, list, opts...)
	}
	if c.Err != nil {
		return c.Err
	}
	err := c.Client.List(ctx, list, opts...)
	c.Read += len(l.Items)
	return err
}

// WriteLog counts the writes made through a client that CountWrites wrapped: each
// entry is "<verb> <kind>/<name>", status writes as "<verb> <kind>/<name>/status".
type WriteLog struct {
	mu     sync.Mutex
	writes []string
}

// Writes returns the writes so far, oldest first.
func (l *WriteLog) Writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

// Reset forgets the writes so far.
func (l *WriteLog) Reset() {
	l.mu.Lock()
	l.writes = nil
	l.mu.Unlock()
}

func (l *WriteLog) add(verb string, obj client.Object, sub string) {
	name := fmt.Sprintf("%s %T/%s", verb, obj, obj.GetName())
	if sub != "" {
		name += "/" + sub
	}
	l.mu.Lock()
	l.writes = append(l.writes, name)
	l.mu.Unlock()
}

// CountWrites wraps c so that every write through it (create, update, patch, delete, and
// their status forms) is logged in the WriteLog it returns; reads pass through.
func CountWrites(c client.WithWatch) (client.WithWatch, *WriteLog) {
	l := &WriteLog{}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			l.add("create", obj, "")
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			l.add("update", obj, "")
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			l.add("patch", obj, "")
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			l.add("delete", obj, "")
			return c.Delete(ctx, obj, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			l.add("deleteallof", obj, "")
			return c.DeleteAllOf(ctx, obj, opts...)
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			l.add("create", obj, sub)
			return c.SubResource(sub).Create(ctx, obj, subObj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			l.add("update", obj, sub)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			l.add("patch", obj, sub)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}), l
}
