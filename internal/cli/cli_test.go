package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// The commands against a fake API server, with a stand-in for the operator where a
// command waits for one: what is printed, what is written, and the exit codes.

const ns = "apps"

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func cond(typ string, status metav1.ConditionStatus, reason, msg string, gen int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(t0)}
}

func newStack(name string) *swarmv1.SwarmStack {
	s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(t0.Add(-2 * time.Hour)), UID: ktypes.UID("uid-" + name)}}
	s.Spec.ClusterRef.Name = "prod"
	s.Spec.Version = "v3"
	text := "services: {api: {image: numbers-api:v3}}\n"
	s.Spec.Compose.Files = []swarmv1.ComposeFile{{Name: "docker-compose.yml", Inline: &text}}
	s.Status.ObservedGeneration = 1
	s.Status.Conditions = []metav1.Condition{cond(swarmv1.ConditionReady, metav1.ConditionTrue, swarmv1.ReasonSucceeded, "Revision 0123456789ab (v3) applied: 1 services", 1)}
	s.Status.Services = []swarmv1.ServiceStatus{{Name: "numbers_api", Mode: "replicated", Image: "numbers-api:v3", DesiredTasks: 6, RunningTasks: 6, UpdateState: "completed", UpdateMessage: "update completed"}}
	s.Status.History = []swarmv1.HistoryEntry{
		{Revision: "sha256:0123456789abcdef", Version: "v3", StartedAt: metav1.NewTime(t0.Add(-time.Hour)), FinishedAt: ptr(metav1.NewTime(t0.Add(-59 * time.Minute))), Outcome: swarmv1.OutcomeCompleted, Message: "update completed"},
		{Revision: "sha256:fedcba9876543210", Version: "v2", StartedAt: metav1.NewTime(t0.Add(-2 * time.Hour)), FinishedAt: ptr(metav1.NewTime(t0.Add(-119 * time.Minute))), Outcome: swarmv1.OutcomeRolledBack, Message: "numbers_api: update rolled back due to failure"},
	}
	return s
}

func ptr[T any](v T) *T { return &v }

type world struct {
	t *testing.T
	c client.WithWatch
	// operator plays the operator: called with each fresh read of the stack, it may
	// change its status (the stand-in writes it back).
	operator func(s *swarmv1.SwarmStack) bool
	sw       swarm.Swarm
	stop     chan struct{}
	done     chan struct{}
}

func newWorld(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) *world {
	t.Helper()
	var f interceptor.Funcs
	if funcs != nil {
		f = *funcs
	}
	f.Patch = func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		return countSpecChange(ctx, c, obj, func() error { return c.Patch(ctx, obj, patch, opts...) })
	}
	f.Update = func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		return countSpecChange(ctx, c, obj, func() error { return c.Update(ctx, obj, opts...) })
	}
	b := fake.NewClientBuilder().WithScheme(Scheme()).
		WithStatusSubresource(&swarmv1.SwarmStack{}, &swarmv1.SwarmCluster{}, &swarmv1.SwarmNodeMaintenance{}, &swarmv1.SwarmStackSet{}).
		WithObjects(objs...).WithInterceptorFuncs(f)
	return &world{t: t, c: b.Build()}
}

// countSpecChange runs a write of obj and, when it changed the spec, bumps
// metadata.generation as the API server does (the fake client never does): the
// commands that confirm a spec change wait for the operator to observe it.
func countSpecChange(ctx context.Context, c client.WithWatch, obj client.Object, write func() error) error {
	before := obj.DeepCopyObject().(client.Object)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), before); err != nil {
		return write()
	}
	if err := write(); err != nil {
		return err
	}
	if specOf(before) == specOf(obj) {
		return nil
	}
	// A patch without resourceVersion: the operator stand-in may write status meanwhile.
	bump := fmt.Sprintf(`{"metadata":{"generation":%d}}`, before.GetGeneration()+1)
	return c.Patch(ctx, obj, client.RawPatch(ktypes.MergePatchType, []byte(bump)))
}

func specOf(obj client.Object) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(u["spec"])
	if err != nil {
		panic(err)
	}
	return string(b)
}

// run executes the command line and returns its exit code and output.
func (w *world) run(args ...string) (int, string, string) {
	w.t.Helper()
	if w.operator != nil {
		w.startOperator()
		defer w.stopOperator()
	}
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Options{
		Stdout: &out, Stderr: &errOut, Client: w.c, Namespace: ns,
		OpenSwarm: func(context.Context, client.Reader, *swarmv1.SwarmCluster) (swarm.Swarm, error) {
			if w.sw == nil {
				return nil, errors.New("no swarm in this test")
			}
			return w.sw, nil
		},
		Poll: 5 * time.Millisecond, StalledSettle: 200 * time.Millisecond,
	})
	return code, out.String(), errOut.String()
}

func (w *world) startOperator() {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			var list swarmv1.SwarmStackList
			if w.c.List(context.Background(), &list) != nil {
				continue
			}
			for i := range list.Items {
				s := &list.Items[i]
				if w.operator(s) {
					_ = w.c.Status().Update(context.Background(), s)
				}
			}
		}
	}()
}

func (w *world) stopOperator() {
	close(w.stop)
	<-w.done
}

func (w *world) stack(name string) *swarmv1.SwarmStack {
	w.t.Helper()
	var s swarmv1.SwarmStack
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		w.t.Fatal(err)
	}
	return &s
}

func TestGetStacksPrintsTheCRDColumns(t *testing.T) {
	other := newStack("other")
	other.Namespace = "team-b"
	w := newWorld(t, nil, newStack("numbers"), other)
	code, out, _ := w.run("get", "stacks")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CLUSTER VERSION READY STATUS AGE" {
		t.Fatalf("table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "numbers" || f[1] != "prod" || f[2] != "v3" || f[3] != "True" {
		t.Fatalf("row %q", lines[1])
	}
	code, out, _ = w.run("get", "stacks", "-A")
	if code != 0 || !strings.HasPrefix(out, "NAMESPACE") || !strings.Contains(out, "team-b") || !strings.Contains(out, "apps") {
		t.Fatalf("-A: exit %d\n%s", code, out)
	}
}

func TestGetOneStackShowsItsServices(t *testing.T) {
	w := newWorld(t, nil, newStack("numbers"))
	code, out, _ := w.run("get", "stack", "numbers")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"SERVICE", "MODE", "IMAGE", "TASKS", "UPDATE STATE", "numbers_api", "replicated", "numbers-api:v3", "6/6", "completed", "update completed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in\n%s", want, out)
		}
	}
	code, out, _ = w.run("get", "stack", "numbers", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "kind: SwarmStack") || !strings.Contains(out, "apiVersion: swarm.swarmops.io/v1alpha1") {
		t.Fatalf("-o yaml: exit %d\n%s", code, out)
	}
	code, out, _ = w.run("get", "stacks", "-o", "json")
	if code != 0 || !strings.Contains(out, `"kind": "SwarmStackList"`) {
		t.Fatalf("-o json: exit %d\n%s", code, out)
	}
	if code, _, errOut := w.run("get", "widgets"); code != ExitError || !strings.Contains(errOut, "unknown kind") {
		t.Fatalf("unknown kind: exit %d, %s", code, errOut)
	}
	if code, _, errOut := w.run("get", "stack", "missing"); code != ExitError || !strings.Contains(errOut, "missing") {
		t.Fatalf("missing stack: exit %d, %s", code, errOut)
	}
}

func TestGetClustersAndMaintenances(t *testing.T) {
	c := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}}
	c.Status.Endpoint = "tcp://10.0.0.11:2376"
	c.Status.Managers = &swarmv1.ManagerStatus{Total: 3, Reachable: 3}
	c.Status.Conditions = []metav1.Condition{cond(swarmv1.ConditionReady, metav1.ConditionTrue, swarmv1.ReasonConnected, "Connected", 0)}
	m := &swarmv1.SwarmNodeMaintenance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kernel"}}
	m.Spec.ClusterRef.Name = "prod"
	m.Status.Phase = swarmv1.PhaseInMaintenance
	m.Status.Nodes = []swarmv1.MaintenanceNodeStatus{{Name: "node3"}, {Name: "node5"}}
	w := newWorld(t, nil, c, m)
	_, out, _ := w.run("get", "clusters")
	if !strings.Contains(out, "tcp://10.0.0.11:2376") || !strings.Contains(out, "3/3") {
		t.Fatalf("clusters:\n%s", out)
	}
	_, out, _ = w.run("get", "maintenances")
	if !strings.Contains(out, "node3,node5") || !strings.Contains(out, "InMaintenance") {
		t.Fatalf("maintenances:\n%s", out)
	}
}

func TestHistoryAndEvents(t *testing.T) {
	s := newStack("numbers")
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "SwarmStack", Namespace: ns, Name: "numbers", UID: s.UID},
		Type:           corev1.EventTypeWarning, Reason: swarmv1.ReasonRolledBack, Message: "Revision fedcba987654 (v2) was rolled back", LastTimestamp: metav1.NewTime(t0)}
	otherEv := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "SwarmStack", Namespace: ns, Name: "web"}, Type: corev1.EventTypeNormal, Reason: "X", Message: "not ours"}
	w := newWorld(t, nil, s, ev, otherEv)
	_, out, _ := w.run("history", "numbers")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "0123456789ab") || !strings.Contains(lines[1], "Completed") ||
		!strings.Contains(lines[2], "RolledBack") || !strings.Contains(lines[2], "update rolled back due to failure") {
		t.Fatalf("history:\n%s", out)
	}
	_, out, _ = w.run("events", "numbers")
	if !strings.Contains(out, "was rolled back") || strings.Contains(out, "not ours") {
		t.Fatalf("events:\n%s", out)
	}
}

// handledReconcile is the operator's answer to a reconcile request: the request noted,
// the generation observed, and then what happens to the rollout.
func handledReconcile(then func(s *swarmv1.SwarmStack)) func(s *swarmv1.SwarmStack) bool {
	return func(s *swarmv1.SwarmStack) bool {
		v := s.Annotations[swarmv1.AnnotationReconcileRequestedAt]
		if v == "" || v == s.Status.LastHandledReconcileAt {
			return false
		}
		s.Status.LastHandledReconcileAt = v
		s.Status.ObservedGeneration = s.Generation
		then(s)
		return true
	}
}

func rollingOut(s *swarmv1.SwarmStack) {
	msg := "Rolling out revision 999999999999"
	s.Status.Conditions = []metav1.Condition{
		cond(swarmv1.ConditionReady, metav1.ConditionFalse, swarmv1.ReasonProgressing, msg, s.Generation),
		cond(swarmv1.ConditionReconciling, metav1.ConditionTrue, swarmv1.ReasonProgressing, msg, s.Generation),
	}
	s.Status.Services[0].UpdateState = "updating"
	s.Status.Services[0].RunningTasks = 3
}

// finishes moves a rolling stack to its end after a few reads.
func finishes(end func(s *swarmv1.SwarmStack)) func(s *swarmv1.SwarmStack) bool {
	reads := 0
	handle := handledReconcile(rollingOut)
	return func(s *swarmv1.SwarmStack) bool {
		if handle(s) {
			return true
		}
		if s.Status.LastHandledReconcileAt == "" || s.Status.Services[0].UpdateState != "updating" {
			return false
		}
		if reads++; reads < 5 {
			return false
		}
		end(s)
		return true
	}
}

func ended(reason, msg string, ready bool, outcome string) func(s *swarmv1.SwarmStack) {
	return func(s *swarmv1.SwarmStack) {
		if ready {
			s.Status.Conditions = []metav1.Condition{cond(swarmv1.ConditionReady, metav1.ConditionTrue, reason, msg, s.Generation)}
			s.Status.Services[0].UpdateState = "completed"
			s.Status.Services[0].RunningTasks = 6
		} else {
			s.Status.Conditions = []metav1.Condition{
				cond(swarmv1.ConditionReady, metav1.ConditionFalse, reason, msg, s.Generation),
				cond(swarmv1.ConditionStalled, metav1.ConditionTrue, reason, msg, s.Generation),
			}
			s.Status.Services[0].UpdateState = "rollback_completed"
		}
		s.Status.History = append([]swarmv1.HistoryEntry{{Revision: "sha256:999999999999", Outcome: outcome, StartedAt: metav1.NewTime(t0), Message: msg}}, s.Status.History...)
	}
}

func TestReconcileWaitExitCodes(t *testing.T) {
	cases := map[string]struct {
		operator func(s *swarmv1.SwarmStack) bool
		args     []string
		mutate   func(s *swarmv1.SwarmStack)
		code     int
		want     string
	}{
		"completed exits 0": {
			operator: finishes(ended(swarmv1.ReasonSucceeded, "Revision 999999999999 applied: 1 services", true, swarmv1.OutcomeCompleted)),
			code:     ExitOK, want: "Completed: Revision 999999999999 applied",
		},
		"nothing to do exits 0 at once": {
			operator: handledReconcile(func(*swarmv1.SwarmStack) {}),
			code:     ExitOK, want: "Completed",
		},
		"rolled back exits 1": {
			operator: finishes(ended(swarmv1.ReasonRolledBack, "Revision 999999999999 was rolled back: numbers_api: update rolled back due to failure", false, swarmv1.OutcomeRolledBack)),
			code:     ExitFailed, want: "RolledBack",
		},
		"deadline exceeded exits 1": {
			operator: finishes(ended(swarmv1.ReasonDeadlineExceeded, "Revision 999999999999 exceeded its progress deadline", false, swarmv1.OutcomeDeadlineExceeded)),
			code:     ExitFailed, want: "DeadlineExceeded",
		},
		"paused exits 1": {
			operator: finishes(ended(swarmv1.ReasonRolloutPaused, "Revision 999999999999 is paused", false, swarmv1.OutcomePaused)),
			code:     ExitFailed, want: "RolloutPaused",
		},
		"compose error exits 1 although the request is never noted": {
			mutate: func(s *swarmv1.SwarmStack) {
				s.Status.Conditions = []metav1.Condition{
					cond(swarmv1.ConditionReady, metav1.ConditionFalse, swarmv1.ReasonComposeInvalid, "docker-compose.yml: services.api.image must be a string", 1),
					cond(swarmv1.ConditionStalled, metav1.ConditionTrue, swarmv1.ReasonComposeInvalid, "docker-compose.yml: services.api.image must be a string", 1),
				}
			},
			operator: func(*swarmv1.SwarmStack) bool { return false },
			code:     ExitFailed, want: "ComposeInvalid",
		},
		"no operator answer times out with 3": {
			operator: func(*swarmv1.SwarmStack) bool { return false },
			args:     []string{"--timeout", "150ms"},
			code:     ExitTimeout, want: "timed out",
		},
		"a rollout that never ends times out with 3": {
			operator: handledReconcile(rollingOut),
			args:     []string{"--timeout", "150ms"},
			code:     ExitTimeout, want: "timed out",
		},
		"a suspended stack is refused with 2": {
			mutate:   func(s *swarmv1.SwarmStack) { s.Spec.Suspend = true },
			operator: func(*swarmv1.SwarmStack) bool { return false },
			code:     ExitError, want: "suspended",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStack("numbers")
			if tc.mutate != nil {
				tc.mutate(s)
			}
			w := newWorld(t, nil, s)
			w.operator = tc.operator
			code, out, errOut := w.run(append([]string{"reconcile", "numbers", "--wait"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d (want %d), want %q in\n%s\n%s", code, tc.code, tc.want, out, errOut)
			}
			if got := w.stack("numbers").Annotations[swarmv1.AnnotationReconcileRequestedAt]; got == "" && !s.Spec.Suspend {
				t.Fatal("the request annotation was not set")
			}
		})
	}
}

func TestReconcileWaitPrintsProgress(t *testing.T) {
	w := newWorld(t, nil, newStack("numbers"))
	w.operator = finishes(ended(swarmv1.ReasonSucceeded, "Revision 999999999999 applied: 1 services", true, swarmv1.OutcomeCompleted))
	_, out, _ := w.run("reconcile", "numbers", "--wait")
	for _, want := range []string{"numbers_api  numbers-api:v3 3/6 tasks, updating", "numbers_api  numbers-api:v3 6/6 tasks, completed", "Ready=False Progressing"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in\n%s", want, out)
		}
	}
}

func TestSuspendAndResumeAreConfirmed(t *testing.T) {
	w := newWorld(t, nil, newStack("numbers"))
	// No operator runs: the spec is written, and nothing confirms it.
	code, out, errOut := w.run("suspend", "numbers", "--timeout", "100ms")
	if s := w.stack("numbers"); code != ExitTimeout || !s.Spec.Suspend || s.Generation != 2 {
		t.Fatalf("suspend with no operator: exit %d, suspend %t at generation %d\n%s%s", code, s.Spec.Suspend, s.Generation, out, errOut)
	}
	w.operator = func(s *swarmv1.SwarmStack) bool {
		if s.Status.ObservedGeneration == s.Generation {
			return false
		}
		// The operator observes the generation only after a pass of it.
		s.Status.ObservedGeneration = s.Generation
		return true
	}
	confirmed := func(verb, done string, suspend bool) {
		t.Helper()
		code, out, errOut := w.run(verb, "numbers")
		s := w.stack("numbers")
		if code != 0 || !strings.Contains(out, "numbers "+done) || s.Spec.Suspend != suspend || s.Status.ObservedGeneration != s.Generation {
			t.Fatalf("%s: exit %d, suspend %t, generation %d observed %d\n%s%s", verb, code, s.Spec.Suspend, s.Generation, s.Status.ObservedGeneration, out, errOut)
		}
	}
	confirmed("resume", "resumed", false)
	confirmed("suspend", "suspended", true)
	if code, out, _ := w.run("suspend", "numbers"); code != 0 || !strings.Contains(out, "already suspended") {
		t.Fatalf("second suspend: exit %d %s", code, out)
	}
}

func TestRollbackAndRetryAreConfirmed(t *testing.T) {
	for verb, annotation := range map[string]string{"rollback": swarmv1.AnnotationRollback, "retry": swarmv1.AnnotationRetry} {
		t.Run(verb, func(t *testing.T) {
			w := newWorld(t, nil, newStack("numbers"))
			w.operator = func(s *swarmv1.SwarmStack) bool {
				v := s.Annotations[annotation]
				if v == "" {
					return false
				}
				if annotation == swarmv1.AnnotationRollback && s.Status.LastHandledRollback != v {
					s.Status.LastHandledRollback = v
					return true
				}
				if annotation == swarmv1.AnnotationRetry && s.Status.LastHandledRetry != v {
					s.Status.LastHandledRetry = v
					return true
				}
				return false
			}
			code, out, errOut := w.run(verb, "numbers")
			if code != 0 || !strings.Contains(out, "handled by the operator") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if w.stack("numbers").Annotations[annotation] == "" {
				t.Fatal("annotation not set")
			}
			// Unconfirmed: nobody handles it.
			w.operator = func(*swarmv1.SwarmStack) bool { return false }
			if code, _, errOut := w.run(verb, "numbers", "--timeout", "100ms"); code != ExitTimeout {
				t.Fatalf("unhandled request: exit %d %s", code, errOut)
			}
		})
	}
}

// A diff world: a memswarm with the stack deployed by hand the way the operator writes it
// is more than these tests need; PlanStack itself is tested in stack. Here: exit
// codes, printing, and the permission message.

func TestDiffExitCodesAndOutput(t *testing.T) {
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "swarm-operator-system", Name: namingKeySecret}, Data: map[string][]byte{"key": []byte("0123456789abcdef0123")}}
	cluster := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}, Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1:2376"}}}
	s := newStack("numbers")
	w := newWorld(t, nil, s, cluster, key)
	sw := memswarm.New()
	sw.AddNode("m1", swarmtypes.NodeRoleManager)
	w.sw = sw
	code, out, errOut := w.run("diff", "numbers")
	if code != ExitChanges || !strings.Contains(out, "+ service numbers_api") {
		t.Fatalf("new stack: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = w.run("diff", "numbers", "-o", "json")
	if code != ExitChanges || !strings.Contains(out, `"action": "create"`) {
		t.Fatalf("-o json: exit %d\n%s", code, out)
	}
	// A bad local file: exit 2, the file named.
	bad := t.TempDir() + "/bad.yml"
	writeFile(t, bad, "services: {api: {image: [1, 2]}}\n")
	code, _, errOut = w.run("diff", "numbers", "-f", bad)
	if code != ExitError || !strings.Contains(errOut, "bad.yml") {
		t.Fatalf("bad file: exit %d %s", code, errOut)
	}
	if len(sw.Writes()) != 0 {
		t.Fatalf("diff wrote to the swarm: %v", sw.Writes())
	}
}

func TestDiffWithoutNamingKeySaysWhy(t *testing.T) {
	cluster := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}, Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1:2376"}}}
	w := newWorld(t, nil, newStack("numbers"), cluster)
	w.sw = memswarm.New()
	code, _, errOut := w.run("diff", "numbers", "--operator-namespace", "ops")
	if code != ExitError || !strings.Contains(errOut, "ops/swarm-operator-naming-key") {
		t.Fatalf("exit %d %s", code, errOut)
	}
}

func TestTreeNeedsReadAccessToTheTLSSecret(t *testing.T) {
	cluster := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"},
		Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1:2376"}, TLSSecretRef: &swarmv1.LocalObjectReference{Name: "prod-tls"}}}
	forbid := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New("RBAC: access denied"))
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	w := newWorld(t, forbid, newStack("numbers"), cluster)
	var out, errOut bytes.Buffer
	// The real connection path (no OpenSwarm): the Secret read is refused.
	code := Main(context.Background(), []string{"tree", "numbers"}, Options{Stdout: &out, Stderr: &errOut, Client: w.c, Namespace: ns})
	if code != ExitError || !strings.Contains(errOut.String(), "need get on that Secret") || !strings.Contains(errOut.String(), "apps/prod-tls") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestTreePrintsWhatTheStackOwns(t *testing.T) {
	cluster := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}, Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1:2376"}}}
	w := newWorld(t, nil, newStack("numbers"), cluster)
	sw := memswarm.New()
	sw.AddNode("m1", swarmtypes.NodeRoleManager)
	one := uint64(1)
	spec := swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "numbers_api", Labels: map[string]string{
		swarmv1.LabelStackNamespace: "numbers", swarmv1.LabelOwner: "apps.numbers"}},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v3"}},
		Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &one}}}
	if _, err := sw.CreateService(context.Background(), swarm.ServiceWrite{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	w.sw = sw
	code, out, errOut := w.run("tree", "numbers")
	if code != 0 || !strings.Contains(out, "Service/numbers_api") || !strings.Contains(out, "numbers-api:v3") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestRenderIsTheOperatorsRender(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/docker-compose.yml", "services: {api: {image: numbers-api:v1}}\n")
	w := newWorld(t, nil)
	code, out, errOut := w.run("render", "-f", dir+"/docker-compose.yml", "--stack", "numbers", "--output", "compose")
	if code != 0 || !strings.Contains(out, "numbers-api:v1") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := w.run("render"); code != 2 {
		t.Fatalf("render without files: exit %d", code)
	}
}

func TestGetOneStackShowsWhereAnOrderedReleaseStands(t *testing.T) {
	s := newStack("numbers")
	wave := func(n int32) *int32 { return &n }
	s.Status.Services = []swarmv1.ServiceStatus{
		{Name: "numbers_web", Mode: "replicated", Image: "numbers-web:v3", DesiredTasks: 2, RunningTasks: 2, Wave: wave(2), Release: swarmv1.ReleaseWaiting, WaitingFor: "numbers_api (service_healthy: update updating, 1/2 tasks running)"},
		{Name: "numbers_api", Mode: "replicated", Image: "numbers-api:v4", DesiredTasks: 2, RunningTasks: 1, UpdateState: "updating", Wave: wave(1), Release: swarmv1.ReleaseWritten},
		{Name: "numbers_migrate", Mode: "replicated-job", Image: "numbers-migrate:v4", Wave: wave(0), Release: swarmv1.ReleaseDone},
	}
	s.Status.History[0].Waves = []string{"numbers_migrate", "numbers_api"}
	w := newWorld(t, nil, s)
	code, out, _ := w.run("get", "stack", "numbers")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && (f[0] == "WAVE" || strings.HasPrefix(f[1], "numbers_")) {
			rows = append(rows, f[0]+" "+f[1])
		}
	}
	if strings.Join(rows, ", ") != "WAVE SERVICE, 0 numbers_migrate, 1 numbers_api, 2 numbers_web" ||
		!strings.Contains(out, "Waiting") || !strings.Contains(out, "waits for numbers_api (service_healthy") {
		t.Fatalf("want the services in wave order with where they stand:\n%s", out)
	}
	code, out, _ = w.run("history", "numbers")
	if code != 0 || !strings.Contains(out, "waves numbers_migrate → numbers_api;") {
		t.Fatalf("history does not show the order: exit %d\n%s", code, out)
	}
}

func TestRenderPrintsTheWavesOfAnOrderedRelease(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/docker-compose.yml", `services:
  migrate: {image: m, deploy: {mode: replicated-job}}
  api: {image: a, depends_on: {migrate: {condition: service_completed_successfully}}}
  web: {image: w, depends_on: {api: {condition: service_healthy}}}
`)
	w := newWorld(t, nil)
	code, out, errOut := w.run("render", "-f", dir+"/docker-compose.yml", "--stack", "numbers", "--update-order", "DependsOn")
	want := "wave 0: numbers_migrate\nwave 1: numbers_api\nwave 2: numbers_web\n"
	if code != 0 || !strings.Contains(errOut, want) || !strings.Contains(out, "Waves:") || strings.Contains(errOut, "depends_on") {
		t.Fatalf("exit %d, want %q on stderr and waves in the output\n%s%s", code, want, out, errOut)
	}
	writeFile(t, dir+"/docker-compose.yml", "services: {api: {image: a, depends_on: [db]}}\n")
	code, _, errOut = w.run("render", "-f", dir+"/docker-compose.yml", "--stack", "numbers", "--update-order", "DependsOn")
	if code != 1 || !strings.Contains(errOut, `service "api" depends on service "db", which is not in the stack`) {
		t.Fatalf("a dependency not in the stack: exit %d\n%s", code, errOut)
	}
}

func TestHelpListsTheCommands(t *testing.T) {
	w := newWorld(t, nil)
	code, out, _ := w.run("--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"get", "tree", "diff", "history", "events", "reconcile", "suspend", "resume", "rollback", "retry", "approve", "render", "completion"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Fatalf("--help does not list %s:\n%s", c, out)
		}
	}
	code, out, _ = w.run("completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Fatalf("completion: exit %d", code)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDiffOfAFluxSourcedStackNeedsLocalFiles(t *testing.T) {
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "swarm-operator-system", Name: namingKeySecret}, Data: map[string][]byte{"key": []byte("0123456789abcdef0123")}}
	cluster := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}, Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1:2376"}}}
	s := newStack("numbers")
	s.Spec.SourceRef = &swarmv1.SourceReference{Kind: "GitRepository", Name: "platform"}
	w := newWorld(t, nil, s, cluster, key)
	w.sw = memswarm.New()
	if code, _, errOut := w.run("diff", "numbers"); code != ExitError || !strings.Contains(errOut, "give the files with -f") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	local := t.TempDir() + "/docker-compose.yml"
	writeFile(t, local, "services: {api: {image: numbers-api:v6}}\n")
	if code, out, errOut := w.run("diff", "numbers", "-f", local); code != ExitChanges || !strings.Contains(out, "+ service numbers_api") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}

// Completion works without a cluster (scripts) and completes names from one.
func TestCompletionNeedsNoKubeconfigAndCompletesNames(t *testing.T) {
	t.Setenv("KUBECONFIG", t.TempDir()+"/none")
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"completion", "zsh"}, Options{Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("completion without a kubeconfig: exit %d %s", code, errOut.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"__complete", "get", ""}, Options{Stdout: &out, Stderr: &errOut}); code != 0 || !strings.Contains(out.String(), "stacks") {
		t.Fatalf("__complete get: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	w := newWorld(t, nil, newStack("numbers"), newStack("web"))
	code, got, _ := w.run("__complete", "history", "")
	if code != 0 || !strings.Contains(got, "numbers\n") || !strings.Contains(got, "web\n") {
		t.Fatalf("__complete history: exit %d\n%s", code, got)
	}
}

func TestReconcileWithoutWaitIsConfirmedAndNamespaceFlagWins(t *testing.T) {
	s := newStack("numbers")
	s.Namespace = "team-b"
	w := newWorld(t, nil, s)
	w.operator = handledReconcile(func(*swarmv1.SwarmStack) {})
	code, out, errOut := w.run("reconcile", "numbers", "-n", "team-b")
	if code != 0 || !strings.Contains(out, "Reconcile handled: Ready=True") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := w.run("reconcile", "numbers"); code != ExitError || !strings.Contains(errOut, "apps/numbers") {
		t.Fatalf("without -n the default namespace is used: exit %d %s", code, errOut)
	}
}

// TestDiffPrintsNoSecretSourcedValue: a running service holds in its environment a value
// of a variable the stack now takes from a Kubernetes Secret with another value (a
// rotation). diff, as text, JSON and YAML, says the variable changes and prints neither
// the value read from the running service nor the new one, in any form.
func TestDiffPrintsNoSecretSourcedValue(t *testing.T) {
	const oldValue, newValue = "old<pass&word-0001", "new<pass&word-0002"
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "swarm-operator-system", Name: namingKeySecret}, Data: map[string][]byte{"key": []byte("0123456789abcdef0123")}}
	cluster := &swarmv1.SwarmCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"}, Spec: swarmv1.SwarmClusterSpec{Endpoints: []string{"tcp://m1:2376"}}}
	vars := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Data: map[string][]byte{"DB_PASSWORD": []byte(newValue)}}
	s := newStack("numbers")
	text := "services: {api: {image: numbers-api:v3, environment: [DB_PASSWORD, LEVEL=debug]}}\n"
	s.Spec.Compose.Files[0].Inline = &text
	s.Spec.Compose.VariablesFrom = []swarmv1.VariablesSource{{SecretRef: &swarmv1.LocalObjectReference{Name: "db"}}}
	s.Spec.Adopt = true
	w := newWorld(t, nil, s, cluster, key, vars)
	sw := memswarm.New()
	sw.AddNode("m1", swarmtypes.NodeRoleManager)
	running := swarmtypes.ServiceSpec{
		Annotations: swarmtypes.Annotations{Name: "numbers_api", Labels: map[string]string{memswarm.StackLabel: "numbers"}},
		TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{
			Image: "numbers-api:v3", Env: []string{"DB_PASSWORD=" + oldValue, "LEVEL=info"},
			Labels: map[string]string{memswarm.StackLabel: "numbers"},
		}},
	}
	if _, err := sw.CreateService(context.Background(), swarm.ServiceWrite{Spec: running}); err != nil {
		t.Fatal(err)
	}
	w.sw = sw
	var printed []string
	for _, args := range [][]string{{"diff", "numbers"}, {"diff", "numbers", "-o", "json"}, {"diff", "numbers", "-o", "yaml"}} {
		code, out, errOut := w.run(args...)
		if code != ExitChanges || !strings.Contains(out, "DB_PASSWORD") || !strings.Contains(out, "LEVEL") {
			t.Fatalf("%v: exit %d, want the variables named as changing:\n%s%s", args, code, out, errOut)
		}
		printed = append(printed, out, errOut)
	}
	if !strings.Contains(printed[0], "sensitive value changed") || !strings.Contains(printed[0], `"info" -> "debug"`) {
		t.Fatalf("the text does not say the sensitive value changes, or hides a plain one:\n%s", printed[0])
	}
	all := strings.Join(printed, "\n")
	for _, v := range []string{oldValue, newValue} {
		escaped, _ := json.Marshal(v)
		for _, form := range []string{v, strconv.Quote(v), strconv.QuoteToASCII(v), string(escaped), strings.Trim(string(escaped), `"`), "pass", "word-000"} {
			if strings.Contains(all, form) {
				t.Fatalf("diff printed %q, a form of a Secret value:\n%s", form, all)
			}
		}
	}
}
