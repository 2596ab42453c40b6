package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/sandbox"
)

// The benchmarks run in this order (source order): the cheap steady-state count on a
// fresh swarm first, the 200-stack scale run last. Each measures one scenario once per
// call, whatever b.N is (`make bench` uses -benchtime 1x), and reports its figures with
// b.ReportMetric. Its log, printed under its line, has the raw samples; the testing
// package cuts benchmark logs to about ten lines, so they also go, with status traces,
// to the details file (detailsPath). docs/benchmarks.md explains every figure.

// BenchmarkNoopReconcile counts the Docker API requests the operator makes for a
// reconcile that has nothing to change (issue 8, item 3): the reconcile-requested-at
// annotation triggers it, the status's lastHandledReconcileAt says it ended. The stack's
// cluster refreshes its health once an hour only, so nothing else talks to Docker
// meanwhile (checked: idle-requests).
func BenchmarkNoopReconcile(b *testing.B) {
	getBed(b)
	load := loadAvg()
	n := envInt("BENCH_NOOP_RECONCILES", 20)
	ns, cluster := newCluster(b, "bench-noop", time.Hour)
	s, w, _ := createNumbersStack(b, ns, cluster, "noop", numbersShape{replicas: 0})
	b.Cleanup(func() { deleteStacks(b, ns, 2*time.Minute); deleteCluster(b, cluster) })

	// Let the first rollout's follow-up reconciles (start grace, events) pass.
	quietFor(b, 3*time.Second, time.Minute)
	idle0 := dockerRequests()
	time.Sleep(5 * time.Second)
	idle := dockerRequests().minus(idle0)

	b.ResetTimer()
	var per []requestCount
	var took samples
	for i := 1; i <= n; i++ {
		before := dockerRequests()
		value := strconv.FormatInt(time.Now().UnixNano(), 10)
		mark := w.mark()
		sent, _ := mutate(b, s, func(s *swarmv1.SwarmStack) {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[swarmv1.AnnotationReconcileRequestedAt] = value
		}) // not requestReconcile: the value is waited for
		o, err := w.waitFor(mark, 30*time.Second, func(s *swarmv1.SwarmStack) (bool, error) {
			return s.Status.LastHandledReconcileAt == value, nil
		})
		if err != nil {
			b.Fatalf("reconcile %d: %v", i, err)
		}
		took = append(took, o.at.Sub(sent))
		// The status patch is the reconcile's last step; wait a little for stragglers.
		time.Sleep(300 * time.Millisecond)
		per = append(per, dockerRequests().minus(before))
	}
	b.StopTimer()

	var total requestCount
	maxReq := 0.0
	for _, c := range per {
		total.reads += c.reads
		total.writes += c.writes
		maxReq = max(maxReq, c.total())
	}
	b.ReportMetric(total.total()/float64(n), "requests/reconcile")
	b.ReportMetric(total.writes/float64(n), "writes/reconcile")
	b.ReportMetric(maxReq, "max-requests")
	b.ReportMetric(idle.total()/5, "idle-requests/s")
	took.report(b, "annotation-to-status", "ms")
	reportLoad(b, load)
	logBoth(b, "%d no-op reconciles of a 2-service stack: %.0f reads, %.0f writes in all; per reconcile %v; annotation to status %v; idle 5 s before: %.0f requests",
		n, total.reads, total.writes, per, took, idle.total())
}

// quietFor waits until the operator made no Docker request for `quiet`.
func quietFor(b *testing.B, quiet, timeout time.Duration) {
	b.Helper()
	end := time.Now().Add(timeout)
	last, since := dockerRequests(), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(end) {
			b.Logf("the operator kept talking to Docker for %s", timeout)
			return
		}
		time.Sleep(100 * time.Millisecond)
		if now := dockerRequests(); now != last {
			last, since = now, time.Now()
		}
	}
}

// BenchmarkReaction changes a two-service stack BENCH_CHANGES times (20) and measures
// (issue 8, item 1) the time from the API write to Swarm starting the service update
// (the earliest UpdateStatus.StartedAt of the two services: write-to-start; the later
// one: write-to-last-start), and from Swarm changing a service's UpdateStatus to the
// SwarmStack's status showing it, per service: its start (start-to-status) and its
// completion (done-to-status). ready-lag is Ready (rollout recorded Completed) after the
// last CompletedAt; early-ready counts changes where Ready=True showed before that.
// One replica per service and a 1 s update monitor keep each rollout short; reaction
// does not depend on the rollout's length. The stack's first deploy is measured too
// (create-to-ready, tasks-running-to-ready): Swarm records no UpdateStatus for new
// services, so the reference there is the moment their tasks run.
func BenchmarkReaction(b *testing.B) {
	getBed(b)
	load := loadAvg()
	n := envInt("BENCH_CHANGES", 20)
	sh := numbersShape{replicas: 1, monitor: "1s"}
	ns, cluster := newCluster(b, "bench-react", 30*time.Second)
	s, w, first := createNumbersStack(b, ns, cluster, "react", sh)
	b.Cleanup(func() { deleteStacks(b, ns, 2*time.Minute); deleteCluster(b, cluster) })
	cli := swarmClient(b)
	// The first deploy creates the services: Swarm records no UpdateStatus for them,
	// so compare with the moment their tasks were running.
	running, err := tasksRunningAt(cli, stackName(s))
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	var toStart, toLastStart, startShown, doneShown, lag samples
	early := 0
	for i := 1; i <= n; i++ {
		r := operatorChange(b, cli, s, w, sh, i)
		if r.earlyReady {
			early++
		}
		toStart = append(toStart, r.swarm.firstStart.Sub(r.write))
		toLastStart = append(toLastStart, r.swarm.lastStart.Sub(r.write))
		startShown = append(startShown, r.starts...)
		doneShown = append(doneShown, r.dones...)
		lag = append(lag, r.ready.Sub(r.swarm.lastDone))
	}
	b.StopTimer()

	toStart.report(b, "write-to-start", "ms")
	toLastStart.report(b, "write-to-last-start", "ms")
	startShown.report(b, "start-to-status", "ms")
	doneShown.report(b, "done-to-status", "ms")
	lag.report(b, "ready-lag", "ms")
	b.ReportMetric(float64(early), "early-ready")
	b.ReportMetric(first.ready.Sub(first.created).Seconds(), "create-to-ready-s")
	b.ReportMetric(first.ready.Sub(running).Seconds(), "tasks-running-to-ready-s")
	reportLoad(b, load)
	logBoth(b, "first deploy: created at +0, tasks running at +%s, reported complete at +%s",
		running.Sub(first.created).Round(time.Millisecond), first.ready.Sub(first.created).Round(time.Millisecond))
	logBoth(b, "%d changes (1 replica per service, monitor 1s)\n write to first start %v\n write to last start %v\n swarm start to status (per service) %v\n swarm completion to status (per service) %v\n last completion to Ready %v\n changes where Ready=True showed before the rollout completed: %d",
		n, toStart, toLastStart, startShown, doneShown, lag, early)
}

// BenchmarkConverge makes the same change BENCH_CONVERGE_CHANGES times (10) to two
// copies of the numbers stack, alternately: one through the operator (from the API write
// to the SwarmStack reporting Ready) and one with `docker stack deploy --detach=false`
// (the command's run time), and reports the ratio of the medians (issue 8, item 2). It
// also reports the operator's lag behind Swarm: Ready against the last service's
// UpdateStatus.CompletedAt. Two replicas per service and Swarm's default update config
// (parallelism 1, monitor 5 s), as a stack with no update_config gets.
func BenchmarkConverge(b *testing.B) {
	getBed(b)
	load := loadAvg()
	docker, err := dockerCLI()
	if err != nil {
		if sandbox.InCI() {
			b.Fatal(err)
		}
		b.Skip(err)
	}
	n := envInt("BENCH_CONVERGE_CHANGES", 10)
	sh := numbersShape{replicas: 2}
	ns, cluster := newCluster(b, "bench-conv", 30*time.Second)
	s, w, _ := createNumbersStack(b, ns, cluster, "op", sh)
	cs := newCLIStack(b, docker, "cli")
	b.Cleanup(func() {
		if err := cs.remove(); err != nil {
			b.Error(err)
		}
		deleteStacks(b, ns, 2*time.Minute)
		deleteCluster(b, cluster)
	})
	cli := swarmClient(b)
	if _, _, err := cs.deploy(sh, 0); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	var op, swarmOp, lag, viaCLI, swarmCLI samples
	early := 0
	for i := 1; i <= n; i++ {
		r := operatorChange(b, cli, s, w, sh, i)
		if r.earlyReady {
			early++
		}
		op = append(op, r.ready.Sub(r.write))
		swarmOp = append(swarmOp, r.swarm.lastDone.Sub(r.write))
		lag = append(lag, r.ready.Sub(r.swarm.lastDone))

		took, start, err := cs.deploy(sh, i)
		if err != nil {
			b.Fatalf("change %d: %v", i, err)
		}
		viaCLI = append(viaCLI, took)
		if cr, err := swarmRollout(cli, cs.name, start, 2); err == nil {
			swarmCLI = append(swarmCLI, cr.lastDone.Sub(start))
		} else {
			detailf("%s: change %d, CLI stack: %v", b.Name(), i, err)
		}
	}
	b.StopTimer()

	op.report(b, "operator", "s")
	viaCLI.report(b, "cli", "s")
	b.ReportMetric(medianRatio(op, viaCLI), "ratio")
	lag.report(b, "ready-lag", "ms")
	swarmOp.report(b, "swarm", "s")
	b.ReportMetric(float64(early), "early-ready")
	reportLoad(b, load)
	logBoth(b, "%d changes each way (2 replicas per service, Swarm's default update config)\n operator: write to Ready %v\n swarm: write to last CompletedAt %v\n operator lag (Ready - last CompletedAt) %v\n CLI: docker stack deploy --detach=false %v\n swarm under the CLI: start to last CompletedAt %v\n changes where Ready=True showed before the rollout completed: %d",
		n, op, swarmOp, lag, viaCLI, swarmCLI, early)
}

// BenchmarkScale deploys BENCH_SCALE_STACKS (200) stacks of BENCH_SCALE_SERVICES (5)
// services each, replicas 0 (no containers), on the sandbox swarm, then restarts the
// operator and measures (issue 8, item 4) the full resync: from the new operator's start
// until the SwarmStack controller has finished a reconcile for every SwarmStack and its
// queue is empty (controller-runtime's reconcile_total, workqueue_depth and
// active_workers). Memory: the Go heap in use after GC (live objects) with the operator
// running after the resync, minus the same with the operator stopped; the process RSS
// is reported as an upper bound (it includes the benchmark's own client and runtime).
func BenchmarkScale(b *testing.B) {
	getBed(b)
	load := loadAvg()
	stacks, per := envInt("BENCH_SCALE_STACKS", 200), envInt("BENCH_SCALE_SERVICES", 5)
	ns, cluster := newCluster(b, "bench-scale", time.Hour)
	b.Cleanup(func() {
		took := deleteStacks(b, ns, 15*time.Minute)
		logBoth(b, "deleting the %d stacks took %s", stacks, took.Round(time.Second))
		deleteCluster(b, cluster)
	})

	b.ResetTimer()
	t0 := time.Now()
	createScaleStacks(b, bed.Client, ns, []string{cluster.Name}, 0, stacks, per, "", 1)
	created := time.Since(t0)
	stuckCount := waitScaleStacksDeployed(b, ns, stacks, 400*time.Millisecond)
	deployed := time.Since(t0)
	quietFor(b, 3*time.Second, 2*time.Minute)
	r := measureResync(b, resyncRun{})
	b.StopTimer()

	r.report(b)
	b.ReportMetric(deployed.Seconds(), "deploy-s")
	b.ReportMetric(float64(stacks*per)/deployed.Seconds(), "services-created/s")
	b.ReportMetric(float64(stuckCount), "stuck-progressing")
	reportLoad(b, load)
	logBoth(b, "%d stacks x %d services (replicas 0): created the resources in %s, all Ready after %s (%.1f stacks/s); %d of them Ready with the rollout still recorded as Progressing\n %s",
		stacks, per, created.Round(time.Millisecond), deployed.Round(time.Second), float64(stacks)/deployed.Seconds(), stuckCount, r)
}

// scaleStack is stack i of a scale run: per services of numbers-api at replicas 0 (no
// containers), one default overlay network, in one inline file.
func scaleStack(ns, cluster string, i, per int) *swarmv1.SwarmStack {
	var c strings.Builder
	c.WriteString("services:\n")
	for j := 0; j < per; j++ {
		fmt.Fprintf(&c, "  svc%d:\n    image: numbers-api:v%d\n    environment: [STACK=%d]\n    deploy: {replicas: 0}\n", j, j%5+1, i)
	}
	inline := c.String()
	return &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s%04d", i)},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: "v1",
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "stack.yml", Inline: &inline}}},
			},
		},
	}
}

// createScaleStacks creates scale stacks from..to-1 in ns through c, stack i on
// clusters[i % len], with the deletion policy given ("" is Delete), from `writers`
// concurrent clients (one client alone creates a few hundred a second).
func createScaleStacks(b *testing.B, c client.Client, ns string, clusters []string, from, to, per int, deletionPolicy string, writers int) {
	b.Helper()
	ctx := context.Background()
	if err := inParallel(writers, from, to, func(i int) error {
		s := scaleStack(ns, clusters[i%len(clusters)], i, per)
		s.Spec.DeletionPolicy = deletionPolicy
		return c.Create(ctx, s)
	}); err != nil {
		b.Fatal(err)
	}
}

// inParallel runs do(i) for every i in [from, to) on `workers` goroutines; a worker
// stops at its first error, and the first error is returned.
func inParallel(workers, from, to int, do func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += workers {
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitScaleStacksDeployed waits until the n stacks of ns say Ready=True for their first
// generation (what `kubectl wait --for=condition=Ready` waits for), listing them every
// `poll`, and returns how many of them were Ready while their rollout was still recorded
// as in progress (see settle). Those get a reconcile request, and it then waits until
// every rollout is recorded as completed, so that a resync after this finds the steady
// state.
func waitScaleStacksDeployed(b *testing.B, ns string, n int, poll time.Duration) (leftProgressing int) {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now()
	var stuck []*swarmv1.SwarmStack
	var lastReport time.Time
	// The operator's own count of completed rollouts first, read in this process: a list
	// of thousands of stacks with their status every few seconds was API server work
	// that the operator being measured competed with.
	completed := func() float64 {
		return sum("swarm_operator_rollouts_finished_total", map[string]string{"namespace": ns, "outcome": swarmv1.OutcomeCompleted})
	}
	waitUntil(b, 40*time.Minute, fmt.Sprintf("%d rollouts completed", n), func() (string, error) {
		done := int(completed())
		if done >= n {
			return "", nil
		}
		if time.Since(lastReport) > time.Minute {
			lastReport = time.Now()
			detailf("%s: %s: %d/%d rollouts completed", b.Name(), time.Since(t0).Round(time.Second), done, n)
		}
		time.Sleep(250 * time.Millisecond)
		return fmt.Sprintf("%d/%d rollouts completed", done, n), nil
	})
	waitUntil(b, 40*time.Minute, fmt.Sprintf("%d stacks Ready", n), func() (string, error) {
		var list swarmv1.SwarmStackList
		if err := bed.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return "", err
		}
		ready := 0
		stuck = stuck[:0]
		for i := range list.Items {
			st := &list.Items[i]
			c := meta.FindStatusCondition(st.Status.Conditions, swarmv1.ConditionReady)
			if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= 1 {
				ready++
				if stuckProgressing(st, 1) {
					stuck = append(stuck, st)
				}
			}
		}
		if ready == n {
			return "", nil
		}
		if time.Since(lastReport) > time.Minute {
			lastReport = time.Now()
			detailf("%s: %s: %d/%d stacks Ready", b.Name(), time.Since(t0).Round(time.Second), ready, n)
		}
		time.Sleep(poll)
		return fmt.Sprintf("%d/%d Ready", ready, n), nil
	})
	leftProgressing = len(stuck)
	for _, st := range stuck {
		requestReconcile(b, st)
	}
	waitUntil(b, 10*time.Minute, "every rollout recorded as completed", func() (string, error) {
		var list swarmv1.SwarmStackList
		if err := bed.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return "", err
		}
		done, check := 0, rolledOut("v1", 1)
		for i := range list.Items {
			ok, err := check(&list.Items[i])
			if err != nil {
				return "", fmt.Errorf("%s: %w", list.Items[i].Name, err)
			}
			if ok {
				done++
			}
		}
		if done == n {
			return "", nil
		}
		time.Sleep(poll)
		return fmt.Sprintf("%d/%d completed", done, n), nil
	})
	return leftProgressing
}

// resyncFigures is what an operator restart costs: everything it holds is rebuilt from
// the API and the swarms.
type resyncFigures struct {
	stacks       int // SwarmStacks in the API
	took         time.Duration
	reconciles   float64
	perReconcile time.Duration
	requests     requestCount       // to Docker
	api          map[string]float64 // to the API server, by HTTP method
	// renders and skipped count the resync's passes that rendered the compose files
	// and those that did not need to (swarm_operator_stack_renders_total).
	renders, skipped float64
	cpu              cpuTimes // used during the resync
	// Go heap in use after GC and process RSS, with the operator stopped and running.
	heapOff, heapOn, rssOff, rssOn uint64
}

// resyncRun is the operator measureResync restarts, and how it watches the resync; the
// zero value is the bed's operator.
type resyncRun struct {
	stop  func()        // default stopOperator
	start func() error  // default startOperator
	c     client.Client // where the SwarmStacks are counted; default bed.Client
	// profile gets a CPU profile of the resync; default $BENCH_RESYNC_PROFILE.
	profile string
	// processes are the pids whose CPU time is counted besides this process's; nil
	// means all its children (envtest's, the sandbox's daemons).
	processes []int
	// nearlyDone, when set, is polled every 100 ms until it says true before the
	// metrics are polled: gathering them costs up to a second once there are tens of
	// thousands of series (one per service), so a cheaper sign of the end comes first.
	nearlyDone func() bool
	// during runs from the start until the resync is done (its context is then
	// cancelled), and the resync waits for it to return.
	during func(ctx context.Context)
}

// measureResync stops the operator and starts it again, and measures the time from its
// start until the SwarmStack controller has finished one reconcile per SwarmStack in the
// API (controller_runtime_reconcile_total) and its queue and workers are idle
// (workqueue_depth, controller_runtime_active_workers). The operator's own metrics are
// reset in between, as a restarted process has none of the old one's series.
func measureResync(b *testing.B, run resyncRun) resyncFigures {
	b.Helper()
	if run.stop == nil {
		run.stop, run.start = stopOperator, startOperator
	}
	if run.c == nil {
		run.c = bed.Client
	}
	if run.profile == "" {
		run.profile = os.Getenv("BENCH_RESYNC_PROFILE")
	}
	if run.processes == nil {
		run.processes = childProcesses()
	}
	run.stop()
	metrics.Reset()
	var r resyncFigures
	r.heapOff, r.rssOff = liveHeap(), rss()
	var all metav1.PartialObjectMetadataList
	all.SetGroupVersionKind(swarmv1.GroupVersion.WithKind("SwarmStackList"))
	if err := run.c.List(context.Background(), &all); err != nil {
		b.Fatal(err)
	}
	r.stacks = len(all.Items)
	rec0, req0, api0, cpu0 := stackReconciles(), dockerRequests(), apiRequests(), cpuSeconds(run.processes)
	rt0, rn0 := reconcileTime()
	stopProfile := profile(b, run.profile)
	t1 := time.Now()
	if err := run.start(); err != nil {
		b.Fatal(err)
	}
	during := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	if run.during != nil {
		go func() { defer close(during); run.during(ctx) }()
	} else {
		close(during)
	}
	if run.nearlyDone != nil {
		waitUntil(b, 20*time.Minute, "the resync nearly done", func() (string, error) {
			if !run.nearlyDone() {
				return "not yet", nil
			}
			return "", nil
		})
	}
	waitMetrics(b, 10*time.Minute, "full resync", func() bool {
		return stackReconciles()-rec0 >= float64(r.stacks) && stackQueueIdle()
	})
	r.took = time.Since(t1)
	r.cpu = cpuSeconds(run.processes).minus(cpu0)
	cancel()
	<-during
	stopProfile()
	r.reconciles = stackReconciles() - rec0
	rt1, rn1 := reconcileTime()
	r.perReconcile = time.Duration((rt1 - rt0) / max(rn1-rn0, 1) * float64(time.Second))
	r.requests = dockerRequests().minus(req0)
	r.api = apiRequests()
	for method, n := range api0 {
		r.api[method] -= n
	}
	r.renders = sum("swarm_operator_stack_renders_total", map[string]string{"render": "rendered"})
	r.skipped = sum("swarm_operator_stack_renders_total", map[string]string{"render": "skipped"})
	r.heapOn, r.rssOn = liveHeap(), rss()
	return r
}

func (r resyncFigures) report(b *testing.B) {
	b.ReportMetric(r.took.Seconds(), "resync-s")
	b.ReportMetric(r.reconciles/r.took.Seconds(), "reconciles/s")
	b.ReportMetric(float64(r.perReconcile)/float64(time.Millisecond), "ms/reconcile")
	b.ReportMetric(r.requests.total()/float64(max(r.stacks, 1)), "resync-requests/stack")
	b.ReportMetric(r.requests.writes, "resync-writes")
	b.ReportMetric(r.renders/float64(max(r.stacks, 1)), "resync-renders/stack")
	b.ReportMetric(float64(int64(r.heapOn)-int64(r.heapOff))/mib, "operator-heap-MiB")
	b.ReportMetric(float64(r.rssOn)/mib, "process-rss-MiB")
}

func (r resyncFigures) String() string {
	return fmt.Sprintf("restart with %d SwarmStacks in the API: %.0f reconciles in %s (%.1f/s, %s each on average), %.0f Docker reads and %.0f writes, API requests %v\n"+
		" CPU seconds during the resync: %v\n"+
		" Go heap in use after GC: %.1f MiB with the operator stopped, %.1f MiB running (operator %.1f MiB); RSS %.1f MiB stopped, %.1f MiB running",
		r.stacks, r.reconciles, r.took.Round(time.Millisecond), r.reconciles/r.took.Seconds(), r.perReconcile.Round(100*time.Microsecond), r.requests.reads, r.requests.writes, r.api,
		r.cpu.all(),
		float64(r.heapOff)/mib, float64(r.heapOn)/mib, float64(int64(r.heapOn)-int64(r.heapOff))/mib, float64(r.rssOff)/mib, float64(r.rssOn)/mib)
}

// profile writes a CPU profile of the process to path until the returned function is
// called (nothing when path is empty): BENCH_RESYNC_PROFILE=/tmp/resync.pprof profiles the
// resync of BenchmarkScale.
func profile(b *testing.B, path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// waitMetrics polls cond, which reads the process's metrics, every 250 ms: gathering
// the registry costs milliseconds of CPU once the operator exports a series per service
// (2000 here), and polling it faster took a visible share of the two cores from the
// operator being measured. The resync time is therefore known to within 250 ms.
func waitMetrics(b *testing.B, timeout time.Duration, what string, cond func() bool) {
	b.Helper()
	end := time.Now().Add(budget(timeout))
	for !cond() {
		if time.Now().After(end) {
			b.Fatalf("%s: not done after %s", what, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// logBoth logs to the benchmark (printed under its line) and to the details file.
func logBoth(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	detailf("%s: "+format, append([]any{b.Name()}, args...)...)
}
