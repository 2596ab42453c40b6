package controllers_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// One control plane, one 3-manager + 2-worker swarm and one operator serve every test of
// this package (the fleet test adds two Swarms of its own); tests run one after another
// and each works in its own namespace.
var (
	bed        *testbed.Bed
	clock      = &testClock{}
	stopOp     func()
	operatorMu sync.Mutex
	// skipReason says why the integration tests cannot run here (never under CI=true).
	skipReason string
)

// unitOnlyEnv, set by make unit, runs the unit tests of this package alone.
const unitOnlyEnv = "SWARM_OPERATOR_UNIT_ONLY"

// testClock is the maintenance windows' clock: real time plus an offset tests move.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv(unitOnlyEnv) != "" {
		// make unit: the fast tests on the in-memory Swarm, no control plane, no Docker.
		skipReason = unitOnlyEnv + " is set: integration tests are left to make test"
		return m.Run()
	}
	if msg := missingPrerequisites(); msg != "" {
		if sandbox.InCI() {
			fmt.Fprintln(os.Stderr, "FAIL: "+msg+" (CI=true: a missing prerequisite is an error)")
			return 1
		}
		// Unit tests still run; integration tests skip through newNamespace.
		skipReason = msg
		return m.Run()
	}
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	_ = sandbox.CleanupStale()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	bed, err = testbed.Start(ctx, testbed.Options{Name: "ctl", Managers: 3, Workers: 2, Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "sandbox: "+f+"\n", a...)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: test bed:", err)
		return 1
	}
	// Tear down on Ctrl-C too, so no daemon or namespace outlives the run.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		_ = bed.Stop()
		os.Exit(1)
	}()
	startOperator()
	code := m.Run()
	stopOperator()
	if err := bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: teardown:", err)
		code = 1
	}
	if left := sandbox.Leftovers(); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the sandbox left:", strings.Join(left, ", "))
		code = 1
	}
	return code
}

func missingPrerequisites() string {
	var missing []string
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		missing = append(missing, "KUBEBUILDER_ASSETS is not set (run `make test`, or hack/envtest-assets.sh)")
	}
	if err := sandbox.Available(); err != nil {
		missing = append(missing, err.Error())
	}
	return strings.Join(missing, "; ")
}

// operatorOptions are the suite operator's: the test clock, and the sandbox Swarms'
// unix sockets (faults_test) and an insecure hung endpoint (isolation_test) allowed
// explicitly, as production refuses both by default.
func operatorOptions() controllers.Options {
	// A short relist: the suite's swarms change under the operator (drift, failures).
	return controllers.Options{Now: clock.Now, SwarmEndpoints: reconcile.EndpointPolicy{AllowInsecure: true, AllowUnix: true}, ServiceRelist: 2 * time.Second}
}

func startOperator() {
	operatorMu.Lock()
	defer operatorMu.Unlock()
	stop, err := bed.StartOperator(operatorOptions())
	if err != nil {
		panic(err)
	}
	stopOp = stop
}

func stopOperator() {
	operatorMu.Lock()
	defer operatorMu.Unlock()
	if stopOp != nil {
		stopOp()
		stopOp = nil
	}
}

// restartOperator stops the controllers and starts fresh ones: nothing but the resources'
// status carries over, as after a crash.
func restartOperator() {
	stopOperator()
	startOperator()
}

// newNamespace gives a test its own namespace and a SwarmCluster named "sandbox" in it.
func newNamespace(t *testing.T, prefix string) (string, *swarmv1.SwarmCluster) {
	t.Helper()
	if bed == nil {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	ns, err := bed.Namespace(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := bed.CreateCluster(ctx, ns, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	return ns, cluster
}

// dockerClient talks to the first reachable manager of the sandbox, for checks of the
// swarm's own state.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	for _, n := range bed.Swarm.Managers() {
		cli, err := bed.Swarm.Client(n)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		info, err := cli.Info(ctx)
		cancel()
		if err == nil && info.Swarm.ControlAvailable {
			t.Cleanup(func() { _ = cli.Close() })
			return cli
		}
		_ = cli.Close()
	}
	t.Fatal("no sandbox manager answers")
	return nil
}

// eventually polls cond until it returns "" or the timeout passes; the last message says
// what was still wrong.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		if last = cond(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func get(t *testing.T, obj crclient.Object) {
	t.Helper()
	if err := bed.Client.Get(context.Background(), crclient.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
}

func condition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func describeConditions(conds []metav1.Condition) string {
	var parts []string
	for _, c := range conds {
		parts = append(parts, fmt.Sprintf("%s=%s/%s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}

func tlsSecret(ns, name string, ca, cert, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"ca.crt": ca, "tls.crt": cert, "tls.key": key},
	}
}

var swarmServiceInspectOptions = swarmtypes.ServiceInspectOptions{}

func networkListOptions(name string) network.ListOptions {
	return network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))}
}

// update re-reads obj and applies mutate until the write does not conflict: the operator
// patches status (and so the resourceVersion) concurrently.
func update[T crclient.Object](t *testing.T, obj T, mutate func(T)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := bed.Client.Get(context.Background(), crclient.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return bed.Client.Update(context.Background(), obj)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitSwarmReadyAndActive waits until every node is ready and active and every manager reachable:
// an earlier test may have restarted managers, and a global service's task count
// follows the nodes that can run it. A node left drained by an earlier test fails here,
// by name.
func waitSwarmReadyAndActive(t *testing.T) {
	t.Helper()
	eventually(t, 2*time.Minute, "every node ready and active, every manager reachable", func() string {
		nodes, err := dockerClient(t).NodeList(context.Background(), swarmtypes.NodeListOptions{})
		if err != nil {
			return err.Error()
		}
		for _, n := range nodes {
			if n.Spec.Availability != swarmtypes.NodeAvailabilityActive {
				return n.Description.Hostname + " is " + string(n.Spec.Availability)
			}
		}
		return swarmHealthProblem(nodes)
	})
}

// swarmHealthProblem says what keeps the swarm from being whole: a node not ready, a
// manager unreachable, or not exactly one leader; "" when it is whole.
func swarmHealthProblem(nodes []swarmtypes.Node) string {
	leaders := 0
	for _, n := range nodes {
		if n.Status.State != swarmtypes.NodeStateReady {
			return n.Description.Hostname + " is " + string(n.Status.State)
		}
		if ms := n.ManagerStatus; ms != nil {
			if ms.Reachability != swarmtypes.ReachabilityReachable {
				return n.Description.Hostname + " is " + string(ms.Reachability)
			}
			if ms.Leader {
				leaders++
			}
		}
	}
	if leaders != 1 {
		return fmt.Sprintf("%d leaders", leaders)
	}
	return ""
}
