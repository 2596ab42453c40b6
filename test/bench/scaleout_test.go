package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"
	dockerclient "github.com/docker/docker/client"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// BenchmarkScaleOut (issue 18): many stacks over several swarms, and how fast a change
// to a stack on another, healthy swarm is acted on beside them. In one run:
//  1. reaction on the bed's swarm, idle: BENCH_SCALEOUT_CHANGES (10) changes;
//  2. the same beside a hung swarm (TCP accepted, nothing answered) holding
//     BENCH_HUNG_STACKS (100) stacks;
//  3. deploy from nothing: BENCH_SCALEOUT_STACKS (2000) stacks of BENCH_SCALE_SERVICES
//     (5) services (replicas 0, no containers) spread over BENCH_SCALEOUT_SWARMS (4)
//     sandbox swarms of one manager each, with changes to the reaction stack made
//     while it runs;
//  4. an operator restart: the resync of those stacks, with changes to the reaction
//     stack made while it runs.
//
// Reaction is the time from the API write to Swarm starting the update (the earlier
// UpdateStatus.StartedAt of the probe stack's service, Swarm's own timestamp: the
// sandbox runs on this machine's clock).
func BenchmarkScaleOut(b *testing.B) {
	getBed(b)
	load := loadAvg()
	nSwarms := max(envInt("BENCH_SCALEOUT_SWARMS", 4), 1)
	nStacks := envInt("BENCH_SCALEOUT_STACKS", 2000)
	per := envInt("BENCH_SCALE_SERVICES", 5)
	nHung := envInt("BENCH_HUNG_STACKS", 100)
	changes := max(envInt("BENCH_SCALEOUT_CHANGES", 10), 1)
	ctx := context.Background()

	swarms := startSwarms(b, nSwarms)
	probe := newReactionProbe(b)

	b.ResetTimer()
	idle := probe.changes(b, changes)

	hungNS, err := bed.Namespace(ctx, "bench-hung")
	if err != nil {
		b.Fatal(err)
	}
	hungAt := hungSwarmWithStacks(b, hungNS, nHung)
	behindHung := probe.changes(b, changes)
	hungReconciles := stackReconciles()
	removeHungStacks(b, hungNS)
	hungAt()

	baseline, baselineCPU := swarmCreateBaseline(b, swarms[0], envInt("BENCH_BASELINE_SERVICES", 500), 8)

	ns, err := bed.Namespace(ctx, "bench-out")
	if err != nil {
		b.Fatal(err)
	}
	var clusters []string
	for k, sw := range swarms {
		clusters = append(clusters, clusterOn(b, ns, fmt.Sprintf("swarm%d", k+1), sw, time.Hour).Name)
	}
	// Orphan: the swarms go with the benchmark, so their services need no removal.
	b.Cleanup(func() { deleteStacks(b, ns, 10*time.Minute) })
	// Changes to the probe stack from the first create until every stack is Ready: the
	// deploy's backlog must not hold a user's change.
	// A rollout's polls rank below new stacks in the queue, so its completion may wait
	// for the deploy (a first run saw more than 2 minutes): wait for it as long as the
	// deploy may take, and record that time too.
	var duringDeploy, deployReady samples
	deployCtx, deployOver := context.WithCancel(ctx)
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		for deployCtx.Err() == nil || len(duringDeploy) == 0 {
			start, ready := probe.changeWithin(b, 20*time.Minute)
			duringDeploy, deployReady = append(duringDeploy, start), append(deployReady, ready)
		}
	}()
	requestsBefore, apiBefore := dockerRequestsByKind(), apiServerRequests(ctx, bed.Config)
	processes := childProcesses()
	cpuBefore := cpuSeconds(processes)
	stopProfile := profile(b, os.Getenv("BENCH_DEPLOY_PROFILE"))
	if path := os.Getenv("BENCH_DEPLOY_APISERVER_PROFILE"); path != "" {
		// 30 s from the first create: the deploy in full swing.
		go func() {
			if err := apiServerProfile(ctx, bed.Config, 30*time.Second, path); err != nil {
				logBoth(b, "API server profile: %v", err)
			}
		}()
	}
	t0 := time.Now()
	createScaleStacks(b, bed.Client, ns, clusters, 0, nStacks, per, "Orphan", 8)
	created := time.Since(t0)
	// Listing thousands of stacks with their status is work for the API server that the
	// operator competes with: poll less often the more there are.
	stuck := waitScaleStacksDeployed(b, ns, nStacks, time.Duration(max(1, nStacks/400))*time.Second)
	deployed := time.Since(t0)
	stopProfile()
	deployRequests, deployAPI := requestsSince(requestsBefore), apiServerRequestsSince(ctx, bed.Config, apiBefore)
	deployCPU := cpuSeconds(processes).minus(cpuBefore)
	deployOver()
	<-probing
	quietFor(b, 3*time.Second, 2*time.Minute)

	var duringResync samples
	r := measureResync(b, resyncRun{during: func(ctx context.Context) {
		// From the resync's first reconcile on: before it, the new operator is still
		// starting (caches, connections) and nothing is queued yet.
		started := stackReconciles()
		for stackReconciles() == started && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		for ctx.Err() == nil || len(duringResync) == 0 {
			duringResync = append(duringResync, probe.change(b))
		}
	}})
	b.StopTimer()

	idle.report(b, "idle-write-to-start", "ms")
	behindHung.report(b, "hung-write-to-start", "ms")
	duringResync.report(b, "resync-write-to-start", "ms")
	duringDeploy.report(b, "deploy-write-to-start", "ms")
	r.report(b)
	b.ReportMetric(deployed.Seconds(), "deploy-s")
	b.ReportMetric(float64(nStacks*per)/deployed.Seconds(), "services-created/s")
	b.ReportMetric(baseline, "swarm-alone-services-created/s")
	b.ReportMetric(float64(stuck), "stuck-progressing")
	reportLoad(b, load)
	logBoth(b, "reaction (write to Swarm's update start) on a healthy swarm:\n idle %v\n beside a hung swarm with %d stacks (%.0f stack reconciles meanwhile) %v\n during the deploy below %v (write to Ready: %v)\n during the resync below %v",
		idle, nHung, hungReconciles, behindHung, duringDeploy, deployReady, duringResync)
	logBoth(b, "%d stacks x %d services (replicas 0) over %d swarms: created the resources in %s, all Ready after %s (%.1f stacks/s, %.0f services/s; one swarm alone, 8 clients creating services directly: %.0f services/s); %d Ready with the rollout still recorded as Progressing\n %s",
		nStacks, per, nSwarms, created.Round(time.Millisecond), deployed.Round(time.Second), float64(nStacks)/deployed.Seconds(),
		float64(nStacks*per)/deployed.Seconds(), baseline, stuck, r)
	logBoth(b, "the deploy: the operator's Docker requests (the probe's included): %s\n the API server's requests (every client): %s\n CPU seconds: %v; dockerd CPU per service created: %.1f ms (Swarm alone: %.1f ms)",
		deployRequests, deployAPI, deployCPU.all(), 1000*deployCPU["dockerd"]/float64(nStacks*per), baselineCPU)
}

// swarmCreateBaseline is what one sandbox swarm does alone on this machine: n services
// (replicas 0, as the scale stacks have) created directly by `clients` concurrent
// clients, in services per second, and the dockerds' CPU milliseconds per service
// created. They are removed afterwards.
func swarmCreateBaseline(b *testing.B, sw *sandbox.Swarm, n, clients int) (rate, cpuMsPerService float64) {
	b.Helper()
	if n == 0 {
		return 0, 0
	}
	cli, err := sw.Client(sw.Managers()[0])
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx := context.Background()
	replicas := uint64(0)
	ids := make([]string, n)
	processes := childProcesses()
	cpu0 := cpuSeconds(processes)
	t0 := time.Now()
	err = inParallel(clients, 0, n, func(i int) error {
		spec := swarmtypes.ServiceSpec{
			Annotations:  swarmtypes.Annotations{Name: fmt.Sprintf("baseline_%04d", i)},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
			Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &replicas}},
		}
		resp, err := cli.ServiceCreate(ctx, spec, swarmtypes.ServiceCreateOptions{})
		ids[i] = resp.ID
		return err
	})
	took := time.Since(t0)
	dockerdCPU := cpuSeconds(processes).minus(cpu0)["dockerd"]
	for _, id := range ids {
		if id != "" {
			if err := cli.ServiceRemove(ctx, id); err != nil {
				b.Error(err)
			}
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	return float64(n) / took.Seconds(), 1000 * dockerdCPU / float64(n)
}

// startSwarms starts n sandbox swarms of BENCH_SCALEOUT_MANAGERS (1) managers at once.
// They are closed after the benchmark, and by teardown should it not get there.
func startSwarms(b *testing.B, n int) []*sandbox.Swarm {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	managers := max(envInt("BENCH_SCALEOUT_MANAGERS", 1), 1)
	logf := func(string, ...any) {}
	if os.Getenv("BENCH_VERBOSE") != "" {
		logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "sandbox: "+f+"\n", a...) }
	}
	out := make([]*sandbox.Swarm, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sw, err := sandbox.Start(ctx, sandbox.Options{Name: fmt.Sprintf("out%d-", k+1), Managers: managers, Logf: logf})
			if err != nil {
				errs[k] = err
				return
			}
			bedMu.Lock()
			extraSwarms = append(extraSwarms, sw)
			bedMu.Unlock()
			out[k] = sw
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, sw := range out {
			if sw != nil {
				if err := sw.Close(); err != nil {
					b.Error(err)
				}
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			b.Fatalf("starting a sandbox swarm: %v", err)
		}
	}
	detailf("%s: %d sandbox swarms of %d manager(s) started in %s", b.Name(), n, managers, time.Since(t0).Round(time.Millisecond))
	return out
}

// reactionProbe is a one-service stack on the bed's swarm whose update takes a second
// or two (one task, start-first, 500 ms monitor), so that many changes fit in a resync.
type reactionProbe struct {
	s    *swarmv1.SwarmStack
	w    *stackWatch
	cli  *dockerclient.Client
	next int
}

func probeCompose(change int) string {
	return fmt.Sprintf(`services:
  probe:
    image: numbers-api:v1
    environment: [BENCH_CHANGE=%d]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      endpoint_mode: dnsrr
      update_config: {order: start-first, monitor: 500ms}
`, change)
}

func newReactionProbe(b *testing.B) *reactionProbe {
	b.Helper()
	ns, cluster := newCluster(b, "bench-out-react", 30*time.Second)
	b.Cleanup(func() { deleteStacks(b, ns, 2*time.Minute); deleteCluster(b, cluster) })
	inline := probeCompose(0)
	p := &reactionProbe{cli: swarmClient(b), next: 1, s: &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: versionOf(0),
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "probe.yml", Inline: &inline}}},
			},
		},
	}}
	var err error
	if p.w, err = watchStack(ns, p.s.Name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.w.stop)
	mark := p.w.mark()
	if err := bed.Client.Create(context.Background(), p.s); err != nil {
		b.Fatal(err)
	}
	settle(b, p.s, p.w, mark, versionOf(0), 1, 4*time.Minute)
	return p
}

func (p *reactionProbe) changes(b *testing.B, n int) samples {
	b.Helper()
	var out samples
	for range n {
		out = append(out, p.change(b))
	}
	return out
}

// change makes the next change and returns the time from its write to Swarm's start of
// the update; it returns when the stack reports the rollout completed.
func (p *reactionProbe) change(b *testing.B) time.Duration {
	b.Helper()
	start, _ := p.changeWithin(b, 2*time.Minute)
	return start
}

// changeWithin is change, waiting up to `done` for the rollout's completion, whose time
// from the write it returns too.
func (p *reactionProbe) changeWithin(b *testing.B, done time.Duration) (toStart, toReady time.Duration) {
	b.Helper()
	i := p.next
	p.next++
	mark := p.w.mark()
	inline := probeCompose(i)
	write, gen := mutate(b, p.s, func(s *swarmv1.SwarmStack) {
		s.Spec.Version = versionOf(i)
		s.Spec.Compose.Files[0].Inline = &inline
	})
	var start time.Time
	waitUntil(b, 2*time.Minute, fmt.Sprintf("Swarm starts change %d", i), func() (string, error) {
		svcs, err := stackServices(p.cli, stackName(p.s))
		if err != nil {
			return "", err
		}
		if len(svcs) != 1 {
			return fmt.Sprintf("%d services", len(svcs)), nil
		}
		u := svcs[0].UpdateStatus
		if u == nil || u.StartedAt == nil || u.StartedAt.Before(write) {
			return "the update has not started", nil
		}
		start = *u.StartedAt
		return "", nil
	})
	if _, err := p.w.waitFor(mark, done, rolledOut(versionOf(i), gen)); err != nil {
		b.Fatalf("change %d: %v", i, err)
	}
	return start.Sub(write), time.Since(write)
}

// hungSwarmWithStacks creates, in ns, a SwarmCluster whose only endpoint accepts and
// never answers and n stacks on it (deletionPolicy Orphan: there is nothing to remove),
// and waits until each has been reconciled once (its Ready condition says why it
// waits). It returns the function that closes the endpoint.
func hungSwarmWithStacks(b *testing.B, ns string, n int) (closeEndpoint func()) {
	b.Helper()
	ctx := context.Background()
	endpoint, closeAll, err := testbed.HungEndpoint()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeAll)
	hung := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hung"},
		Spec:       swarmv1.SwarmClusterSpec{Endpoints: []string{endpoint}, Insecure: true},
	}
	if err := bed.Client.Create(ctx, hung); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		s := scaleStack(ns, hung.Name, i, 1)
		s.Spec.DeletionPolicy = "Orphan"
		if err := bed.Client.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	waitUntil(b, 5*time.Minute, fmt.Sprintf("%d stacks on the hung swarm reconciled", n), func() (string, error) {
		var list swarmv1.SwarmStackList
		if err := bed.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return "", err
		}
		seen := 0
		for i := range list.Items {
			if c := meta.FindStatusCondition(list.Items[i].Status.Conditions, swarmv1.ConditionReady); c != nil && c.ObservedGeneration >= 1 {
				seen++
			}
		}
		if seen < n {
			time.Sleep(400 * time.Millisecond)
			return fmt.Sprintf("%d/%d", seen, n), nil
		}
		return "", nil
	})
	detailf("%s: %d stacks on the hung swarm reconciled once after %s", b.Name(), n, time.Since(t0).Round(time.Millisecond))
	return closeAll
}

// removeHungStacks deletes the hung swarm's stacks and cluster.
func removeHungStacks(b *testing.B, ns string) {
	b.Helper()
	deleteStacks(b, ns, 5*time.Minute)
	if err := bed.Client.DeleteAllOf(context.Background(), &swarmv1.SwarmCluster{}, client.InNamespace(ns)); err != nil {
		b.Error(err)
	}
}
