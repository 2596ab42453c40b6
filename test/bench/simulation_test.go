package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers"
	"github.com/swarmops/swarm-operator/internal/memswarm"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/internal/swarm"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// BenchmarkSimulation (issue 18) runs the operator past what this machine's sandbox
// swarms allow: BENCH_SIM_SWARMS (50) in-memory swarms of 3 managers and 2 workers
// attached to the operator's hub (service cache and events, as production has), each answering every call after BENCH_SIM_LATENCY
// (10ms), as a remote manager would, and stacks of BENCH_SIM_SERVICES (5) services at
// replicas 0 spread evenly over them. It grows the set step by step to each size of
// BENCH_SIM_STACKS (1000,2000,5000,10000): creates the added stacks from
// BENCH_SIM_CLIENTS (4) clients and waits until every stack is Ready (deploy), then
// restarts the operator and measures the resync and the operator's memory, as
// BenchmarkScale does. It needs envtest only (no sandbox, no root), started for this
// benchmark alone and stopped after it. At the end it draws the resync and the heap
// against stacks, beside the curve recorded before issue 25, into BENCH_SIM_PLOT
// (docs/img/simulation.svg, which docs/benchmarks.md shows).
func BenchmarkSimulation(b *testing.B) {
	sim := startSimulation(b)
	load := loadAvg()
	steps := simSteps(b)
	per := max(envInt("BENCH_SIM_SERVICES", 5), 1)
	clients := max(envInt("BENCH_SIM_CLIENTS", 4), 1)
	logBoth(b, "%d in-memory swarms (3 managers, 2 workers), %s per call, --concurrent %d, stacks of %d services at replicas 0; steps %v",
		len(sim.clusters), sim.latency, sim.concurrent, per, steps)
	detailf("%s: | stacks | added | creates took | deploy | stacks/s | reconciles/stack | API POST, PUT, PATCH /stack | reconciles/s before the restart | resync | reconciles/s | ms/reconcile | swarm calls/stack | API GET, PATCH /stack | renders/stack (skipped) | operator heap MiB | RSS MiB stopped → running | CPU s deploy; resync: bench process / kube-apiserver / etcd | load |", b.Name())

	var curve []scalePoint
	b.ResetTimer()
	for _, target := range steps {
		stepLoad := loadAvg()
		added := target - sim.stacks
		d := sim.grow(b, target, per, clients)
		r, calls, before := sim.restart(b)
		heap := float64(int64(r.heapOn)-int64(r.heapOff)) / mib
		b.ReportMetric(d.took.Seconds(), fmt.Sprintf("deploy-s@%d", target))
		b.ReportMetric(r.took.Seconds(), fmt.Sprintf("resync-s@%d", target))
		b.ReportMetric(heap, fmt.Sprintf("operator-heap-MiB@%d", target))
		b.ReportMetric(float64(r.rssOn)/mib, fmt.Sprintf("process-rss-MiB@%d", target))
		perAdded := func(method string) float64 { return d.api[method] / float64(added) }
		detailf("%s: | %d | %d | %s | %s | %.1f | %.1f | %.1f, %.1f, %.1f | %.1f | %s | %.0f | %.1f | %.2f | %.2f, %.2f | %.2f (%.2f) | %.1f | %.0f → %.0f | %s; %s | %.1f → %.1f |", b.Name(),
			target, added, d.created.Round(100*time.Millisecond), d.took.Round(100*time.Millisecond), float64(added)/d.took.Seconds(), d.reconciles/float64(added),
			perAdded("POST"), perAdded("PUT"), perAdded("PATCH"), before,
			r.took.Round(100*time.Millisecond), r.reconciles/r.took.Seconds(), float64(r.perReconcile)/float64(time.Millisecond),
			float64(calls)/float64(target), r.api["GET"]/float64(target), r.api["PATCH"]/float64(target),
			r.renders/float64(target), r.skipped/float64(target),
			heap, float64(r.rssOff)/mib, float64(r.rssOn)/mib, d.cpu, r.cpu, stepLoad, loadAvg())
		curve = append(curve, scalePoint{stacks: target, resyncS: r.took.Seconds(), heapMiB: heap})
		b.Logf("%d stacks: deploy of %d in %s, resync %s, operator heap %.1f MiB, RSS %.0f MiB",
			target, added, d.took.Round(100*time.Millisecond), r.took.Round(100*time.Millisecond), heap, float64(r.rssOn)/mib)
	}
	b.StopTimer()
	reportLoad(b, load)
	plot := envOr("BENCH_SIM_PLOT", "../../docs/img/simulation.svg")
	caption := fmt.Sprintf("commit %s, %s, %d swarms, load %.1f → %.1f", gitCommit(), time.Now().UTC().Format("2 Jan 2006 15:04 MST"), len(sim.clusters), load, loadAvg())
	if err := writeScalePlot(plot, caption, simulationBefore, curve); err != nil {
		b.Errorf("plot %s: %v", plot, err)
	} else {
		logBoth(b, "plot of resync and heap against stacks: %s", plot)
	}
}

// gitCommit names the checkout's commit for the plot's caption.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// simulation is BenchmarkSimulation's world: its own control plane, the in-memory
// swarms, a SwarmCluster per swarm in namespace simNamespace, and the operator.
type simulation struct {
	bed        *testbed.Bed
	swarms     *simSwarms
	clusters   []string // SwarmCluster names, stack i on clusters[i % len]
	latency    time.Duration
	concurrent int
	stacks     int   // created so far
	children   []int // pids of the control plane's processes (etcd, kube-apiserver)
	op         *testbed.Operator
	opMu       sync.Mutex
}

const simNamespace = "sim"

// runningSim is the simulation in progress, for teardown on a signal.
var (
	simMu      sync.Mutex
	runningSim *simulation
)

// simSwarms opens the in-memory swarm of each simulated SwarmCluster as production
// opens a real one: attached to the operator's hub, which lists its services once,
// keeps them current from its events and hands the controllers those events; Open
// returns the cached view. Each operator start has a new hub (restart() measures a
// restart, whose caches start empty).
type simSwarms struct {
	swarms map[ktypes.NamespacedName]*memswarm.Swarm
	opens  atomic.Int64 // Open calls since resetCalls: one per stack pass

	mu    sync.Mutex
	hub   *swarm.Hub
	views map[ktypes.NamespacedName]*swarm.Cached
}

func newSimSwarms() *simSwarms {
	return &simSwarms{swarms: map[ktypes.NamespacedName]*memswarm.Swarm{}}
}

// use makes hub the one the swarms are attached to, from their next Open on (nil: none,
// the operator is stopped).
func (s *simSwarms) use(hub *swarm.Hub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hub, s.views = hub, map[ktypes.NamespacedName]*swarm.Cached{}
}

func (s *simSwarms) Open(_ context.Context, _ client.Reader, c *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	s.opens.Add(1)
	key := client.ObjectKeyFromObject(c)
	sw, ok := s.swarms[key]
	if !ok {
		return nil, fmt.Errorf("%w: no simulated swarm for %s/%s", swarm.ErrInvalid, c.Namespace, c.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hub == nil {
		return nil, fmt.Errorf("%w: the operator is stopped", swarm.ErrUnreachable)
	}
	v, ok := s.views[key]
	if !ok {
		v = s.hub.Attach(key, sw)
		s.views[key] = v
	}
	return v, nil
}

func (s *simSwarms) Forget(key ktypes.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.views, key)
	if s.hub != nil {
		s.hub.Forget(key)
	}
}

// calls is how many port calls the swarms answered since their last resetCalls, the
// hub's lists and reads by ID included.
func (s *simSwarms) calls() int {
	n := 0
	for _, sw := range s.swarms {
		n += len(sw.Calls())
	}
	return n
}

// callsByOp is calls() by port call, for the details file.
func (s *simSwarms) callsByOp() map[memswarm.Op]int {
	by := map[memswarm.Op]int{}
	for _, sw := range s.swarms {
		for _, c := range sw.Calls() {
			by[c.Op]++
		}
	}
	return by
}

func (s *simSwarms) resetCalls() {
	s.opens.Store(0)
	for _, sw := range s.swarms {
		sw.ResetCalls()
	}
}

func simSteps(b *testing.B) []int {
	b.Helper()
	var steps []int
	last := 0
	for _, f := range strings.Split(envOr("BENCH_SIM_STACKS", "1000,2000,5000,10000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= last {
			b.Fatalf("BENCH_SIM_STACKS: want growing sizes such as 1000,2000,5000,10000, got %q", os.Getenv("BENCH_SIM_STACKS"))
		}
		steps = append(steps, n)
		last = n
	}
	return steps
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startSimulation starts envtest, the swarms, their SwarmClusters and the operator, and
// waits until every cluster is Ready. Everything stops when the benchmark ends. Without
// KUBEBUILDER_ASSETS the benchmark is skipped, or fails under CI=true.
func startSimulation(b *testing.B) *simulation {
	b.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		msg := "KUBEBUILDER_ASSETS is not set (run `make bench`, or hack/envtest-assets.sh)"
		if sandbox.InCI() {
			b.Fatalf("%s (CI=true: a missing prerequisite is an error)", msg)
		}
		b.Skip(msg)
	}
	latency, err := time.ParseDuration(envOr("BENCH_SIM_LATENCY", "10ms"))
	if err != nil {
		b.Fatalf("BENCH_SIM_LATENCY: %v", err)
	}
	// The sandbox benchmarks' operator, if any, would share the controller metrics the
	// resync is read from.
	stopOperator()
	b.Cleanup(func() {
		if bed != nil {
			if err := startOperator(); err != nil {
				b.Error(err)
			}
		}
	})
	before := childProcesses()
	bd, err := testbed.StartControlPlane()
	if err != nil {
		b.Fatal(err)
	}
	sim := &simulation{bed: bd, swarms: newSimSwarms(), latency: latency, concurrent: envInt("BENCH_CONCURRENT", 0)}
	if sim.concurrent == 0 {
		sim.concurrent = controllers.DefaultConcurrent
	}
	for _, pid := range childProcesses() {
		if !slices.Contains(before, pid) {
			sim.children = append(sim.children, pid)
		}
	}
	simMu.Lock()
	runningSim = sim
	simMu.Unlock()
	b.Cleanup(stopSimulation)

	ctx := context.Background()
	if err := bd.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: simNamespace}}); err != nil {
		b.Fatal(err)
	}
	for k := range max(envInt("BENCH_SIM_SWARMS", 50), 1) {
		name := fmt.Sprintf("swarm%02d", k)
		sw := memswarm.New()
		sw.ID = "sim-" + name
		sw.Latency = latency
		for _, m := range []string{"m1", "m2", "m3"} {
			sw.AddNode(name+"-"+m, swarmtypes.NodeRoleManager)
		}
		for _, w := range []string{"w1", "w2"} {
			sw.AddNode(name+"-"+w, swarmtypes.NodeRoleWorker)
		}
		sim.swarms.swarms[ktypes.NamespacedName{Namespace: simNamespace, Name: name}] = sw
		sim.clusters = append(sim.clusters, name)
		// The endpoint is never dialled (simSwarms answers); it only has to be valid.
		c := &swarmv1.SwarmCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: simNamespace, Name: name},
			Spec:       swarmv1.SwarmClusterSpec{Endpoints: []string{"unix:///simulated/" + name + ".sock"}},
		}
		if err := bd.Client.Create(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	if err := sim.startOperator(); err != nil {
		b.Fatal(err)
	}
	waitUntil(b, 2*time.Minute, "simulated clusters Ready", func() (string, error) {
		var list swarmv1.SwarmClusterList
		if err := bd.Client.List(ctx, &list, client.InNamespace(simNamespace)); err != nil {
			return "", err
		}
		for _, c := range list.Items {
			if !meta.IsStatusConditionTrue(c.Status.Conditions, swarmv1.ConditionReady) {
				return c.Name + " not Ready", nil
			}
		}
		return "", nil
	})
	return sim
}

func (s *simulation) startOperator() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	// A new hub per start, as a new process has: its caches list each swarm once.
	hub := swarm.NewHub(ctrl.Log.WithName("swarm"))
	s.swarms.use(hub)
	op, err := s.bed.StartOperatorWith(controllers.Options{Swarms: s.swarms, Hub: hub, Concurrent: s.concurrent,
		// The simulated clusters' endpoints are unix:// names.
		SwarmEndpoints: reconcile.EndpointPolicy{AllowUnix: true}}, testbed.OperatorOptions{})
	if err != nil {
		return fmt.Errorf("starting the operator: %w", err)
	}
	s.op = op
	return nil
}

func (s *simulation) stopOperator() {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.op != nil {
		s.op.Stop()
		s.op = nil
	}
	// The stopped operator's caches go with it: the heap measured stopped must not
	// hold them.
	s.swarms.use(nil)
}

// stopSimulation stops the running simulation's operator and control plane, if any.
func stopSimulation() {
	simMu.Lock()
	defer simMu.Unlock()
	if runningSim == nil {
		return
	}
	runningSim.stopOperator()
	if err := runningSim.bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: stopping the simulation's control plane:", err)
	}
	runningSim = nil
}

// grow creates stacks up to target from `clients` concurrent clients and waits until
// every stack is Ready with its rollout recorded as completed.
func (s *simulation) grow(b *testing.B, target, per, clients int) deployFigures {
	b.Helper()
	ctx := context.Background()
	from := s.stacks
	added := target - from
	completed0, rec0, api0, cpu0 := completedRollouts(), stackReconciles(), apiRequests(), cpuSeconds(s.children)
	t0 := time.Now()
	var d deployFigures
	createScaleStacks(b, s.bed.Client, simNamespace, s.clusters, from, target, per, "", clients)
	d.created = time.Since(t0)
	s.stacks = target
	// The operator's rollout counter says when to look: listing 10,000 stacks every
	// second would load the API server more than the operator does. Gathering the
	// metrics costs up to a second with a series per service, so the counter is read
	// with 24 times the gather's duration in between: at most 4 % of a core.
	var lastReport time.Time
	waitUntil(b, 40*time.Minute, fmt.Sprintf("%d rollouts completed", added), func() (string, error) {
		g0 := time.Now()
		done := completedRollouts() - completed0
		if done >= float64(added) {
			return "", nil
		}
		if time.Since(lastReport) > time.Minute {
			lastReport = time.Now()
			detailf("%s: %s: %.0f/%d rollouts completed", b.Name(), time.Since(t0).Round(time.Second), done, added)
		}
		time.Sleep(max(time.Second, 24*time.Since(g0)))
		return fmt.Sprintf("%.0f/%d rollouts completed", done, added), nil
	})
	waitUntil(b, 10*time.Minute, fmt.Sprintf("%d stacks Ready", target), func() (string, error) {
		done, err := s.rolledOut(ctx)
		if err != nil || done == target {
			return "", err
		}
		time.Sleep(time.Second)
		return fmt.Sprintf("%d/%d Ready with the rollout completed", done, target), nil
	})
	d.took = time.Since(t0)
	d.reconciles = stackReconciles() - rec0
	d.cpu = cpuSeconds(s.children).minus(cpu0)
	d.api = apiRequests()
	for method, n := range api0 {
		d.api[method] -= n
	}
	return d
}

// deployFigures are what growing the set of stacks cost.
type deployFigures struct {
	created    time.Duration // the creates
	took       time.Duration // from the first create until every stack was Ready
	reconciles float64
	api        map[string]float64 // requests to the API server (the benchmark's too)
	cpu        cpuTimes
}

// completedRollouts is how many rollouts in simNamespace the operator recorded as
// completed since the last metrics.Reset.
func completedRollouts() float64 {
	return sum("swarm_operator_rollouts_finished_total", map[string]string{"namespace": simNamespace, "outcome": swarmv1.OutcomeCompleted})
}

// rolledOut counts the stacks that are Ready with their first rollout completed,
// reading them a page at a time.
func (s *simulation) rolledOut(ctx context.Context) (int, error) {
	done, check := 0, rolledOut("v1", 1)
	opts := &client.ListOptions{Namespace: simNamespace, Limit: 500}
	for {
		var page swarmv1.SwarmStackList
		if err := s.bed.Client.List(ctx, &page, opts); err != nil {
			return 0, err
		}
		for i := range page.Items {
			ok, err := check(&page.Items[i])
			if err != nil {
				return 0, fmt.Errorf("%s: %w", page.Items[i].Name, err)
			}
			if ok {
				done++
			}
		}
		if page.Continue == "" {
			return done, nil
		}
		opts.Continue = page.Continue
	}
}

// restart lets the operator settle, restarts it and measures the resync. It also
// returns the swarm calls of the resync and the reconciles per second before it.
func (s *simulation) restart(b *testing.B) (r resyncFigures, calls int, before float64) {
	b.Helper()
	before = settleOperator(b, 3*time.Second, time.Minute)
	// The swarms' call logs hold the whole deploy: the benchmark's memory, not the
	// operator's. What they log from here on is the resync's.
	s.swarms.resetCalls()
	// One profile per step: <file>.<stacks>.
	profile := ""
	if p := os.Getenv("BENCH_RESYNC_PROFILE"); p != "" {
		profile = fmt.Sprintf("%s.%d", p, s.stacks)
	}
	r = measureResync(b, resyncRun{
		stop: s.stopOperator, start: s.startOperator, c: s.bed.Client, profile: profile, processes: s.children,
		// Every stack's pass opens its cluster's swarm (the SwarmClusters' passes too,
		// a few): a settled pass asks the swarm nothing, its services come from the
		// cache.
		nearlyDone: func() bool { return s.swarms.opens.Load() >= int64(s.stacks) },
	})
	detailf("%s: resync of %d stacks: swarm calls by kind %v, %d opens", b.Name(), s.stacks, s.swarms.callsByOp(), s.swarms.opens.Load())
	return r, s.swarms.calls(), before
}

// settleOperator waits up to `timeout` until the SwarmStack controller made no reconcile and was
// idle over `quiet`, and returns the reconcile rate it saw meanwhile. With thousands of
// stacks their periodic reconciles (spec.interval, 10 minutes) never leave it quiet;
// the restart then goes ahead, every rollout being complete (checked before). It looks
// once per period only: with a series per service, gathering the metrics takes up to
// a second at 10,000 stacks.
func settleOperator(b *testing.B, quiet, timeout time.Duration) (reconcilesPerSecond float64) {
	b.Helper()
	t0, end := time.Now(), time.Now().Add(budget(timeout))
	first := stackReconciles()
	last := first
	for {
		time.Sleep(quiet)
		n := stackReconciles()
		rate := (n - first) / time.Since(t0).Seconds()
		if n == last && stackQueueIdle() {
			return rate
		}
		if time.Now().After(end) {
			detailf("%s: the stack controller kept reconciling (%.1f/s over %s); restarting it anyway", b.Name(), rate, timeout)
			return rate
		}
		last = n
	}
}
