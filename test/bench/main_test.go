package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers"
	"github.com/swarmops/swarm-operator/internal/reconcile"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// One control plane, one sandbox swarm and one in-process operator serve every benchmark
// of the package. They start on the first benchmark that asks for them (never for plain
// `go test`), and TestMain tears them down after the run, also on failure and Ctrl-C.
var (
	bedOnce  sync.Once
	bedMu    sync.Mutex // guards bed against the signal handler
	bed      *testbed.Bed
	bedErr   error
	bedStart time.Duration
	instance = -1 // the sandbox instance this process owns, for the leftover check

	// extraSwarms are the sandbox swarms a benchmark started beside the bed's
	// (BenchmarkScaleOut); teardown closes them too.
	extraSwarms []*sandbox.Swarm

	operatorMu sync.Mutex
	stopOp     func()

	started = time.Now()
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("BENCH_VERBOSE") != "" || os.Getenv("TEST_VERBOSE_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "bench: interrupted, tearing the test bed down")
		teardown()
		os.Exit(1)
	}()
	code := m.Run()
	if !teardown() && code == 0 {
		code = 1
	}
	return code
}

// teardown stops the simulation, the operator and the bed (if started) and checks that
// the sandbox left nothing behind. It reports whether all went well.
func teardown() bool {
	stopSimulation()
	stopOperator()
	bedMu.Lock()
	defer bedMu.Unlock()
	ok := true
	owned := map[int]bool{}
	for _, sw := range extraSwarms {
		owned[sw.Instance] = true
		if err := sw.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: teardown:", err)
			ok = false
		}
	}
	extraSwarms = nil
	if bed != nil {
		owned[instance] = true
		if err := bed.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: teardown:", err)
			ok = false
		}
		bed = nil
	}
	var mine []string
	for _, l := range sandbox.Leftovers() {
		for idx := range owned {
			if strings.HasPrefix(l, fmt.Sprintf("[%d] ", idx)) {
				mine = append(mine, l)
			}
		}
	}
	if len(mine) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: the sandbox left:", strings.Join(mine, ", "))
		ok = false
	}
	return ok
}

// Benchmark logs are cut to about ten lines by the testing package, so the long ones
// (raw samples of every benchmark, status traces) go to a details file as well:
// $BENCH_DETAILS, or swarm-operator-bench.log in the temporary directory.
var (
	detailsOnce sync.Once
	detailsMu   sync.Mutex
	details     *os.File
)

func detailsPath() string {
	if p := os.Getenv("BENCH_DETAILS"); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "swarm-operator-bench.log")
}

// detailf appends a line to the details file.
func detailf(format string, args ...any) {
	detailsOnce.Do(func() {
		details, _ = os.Create(detailsPath())
		if details != nil {
			fmt.Fprintf(details, "# swarm-operator benchmarks, %s, %d CPUs, load %.2f\n", time.Now().Format(time.RFC3339), runtime.NumCPU(), loadAvg())
		}
	})
	detailsMu.Lock()
	defer detailsMu.Unlock()
	if details != nil {
		fmt.Fprintf(details, format+"\n", args...)
	}
}

// missingPrerequisites says why the bed cannot start here ("" when it can).
func missingPrerequisites() string {
	var missing []string
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		missing = append(missing, "KUBEBUILDER_ASSETS is not set (run `make bench`, or hack/envtest-assets.sh)")
	}
	if err := sandbox.Available(); err != nil {
		missing = append(missing, err.Error())
	}
	return strings.Join(missing, "; ")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// getBed starts the shared bed on first use: envtest, a sandbox swarm of
// BENCH_MANAGERS + BENCH_WORKERS nodes (3 + 2 by default, the release scenario's shape)
// and the operator. Without the prerequisites the benchmark is skipped, or fails under
// CI=true.
func getBed(b *testing.B) *testbed.Bed {
	b.Helper()
	if msg := missingPrerequisites(); msg != "" {
		if sandbox.InCI() {
			b.Fatalf("%s (CI=true: a missing prerequisite is an error)", msg)
		}
		b.Skip(msg)
	}
	bedOnce.Do(func() {
		_ = sandbox.CleanupStale()
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		logf := func(string, ...any) {}
		if os.Getenv("BENCH_VERBOSE") != "" {
			logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "sandbox: "+f+"\n", a...) }
		}
		bd, err := testbed.Start(ctx, testbed.Options{
			Name: "bench", Managers: envInt("BENCH_MANAGERS", 3), Workers: envInt("BENCH_WORKERS", 2), Logf: logf,
		})
		if err != nil {
			bedErr = fmt.Errorf("test bed: %w", err)
			return
		}
		bedMu.Lock()
		bed = bd
		instance = bd.Swarm.Instance
		bedMu.Unlock()
		bedStart = time.Since(t0)
		detailf("test bed (envtest + sandbox swarm of %d managers and %d workers, instance %d) started in %s",
			len(bd.Swarm.Managers()), len(bd.Swarm.Workers()), instance, bedStart.Round(time.Millisecond))
		if err := startOperator(); err != nil {
			bedErr = err
		}
	})
	if bedErr != nil {
		b.Fatal(bedErr)
	}
	return bed
}

func startOperator() error {
	operatorMu.Lock()
	defer operatorMu.Unlock()
	// BENCH_CONCURRENT sets --concurrent (0: the operator's default).
	// The scale-out benchmark's Swarms are plain TCP: allowed explicitly.
	stop, err := bed.StartOperator(controllers.Options{Concurrent: envInt("BENCH_CONCURRENT", 0), SwarmEndpoints: reconcile.EndpointPolicy{AllowInsecure: true}})
	if err != nil {
		return fmt.Errorf("starting the operator: %w", err)
	}
	stopOp = stop
	return nil
}

func stopOperator() {
	operatorMu.Lock()
	defer operatorMu.Unlock()
	if stopOp != nil {
		stopOp()
		stopOp = nil
	}
}

// deadline is when a benchmark must stop waiting so that the bed can still be torn down
// before -test.timeout kills the process (which would leave envtest's processes behind).
func deadline() time.Time {
	timeout := 60 * time.Minute
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			timeout = d
		}
	}
	return started.Add(timeout - 3*time.Minute)
}

// budget is the smaller of d and the time left before the deadline.
func budget(d time.Duration) time.Duration {
	if left := time.Until(deadline()); left < d {
		return left
	}
	return d
}

// loadAvg is the machine's 1-minute load average (/proc/loadavg), or -1.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		return -1
	}
	return f
}

// reportLoad puts the load average next to the figures: the machine is shared.
func reportLoad(b *testing.B, atStart float64) {
	b.ReportMetric(atStart, "load1-start")
	b.ReportMetric(loadAvg(), "load1-end")
}

// newCluster creates, in a fresh namespace, a SwarmCluster for the bed's sandbox swarm
// (see clusterOn).
func newCluster(b *testing.B, prefix string, interval time.Duration) (ns string, cluster *swarmv1.SwarmCluster) {
	b.Helper()
	ns, err := bed.Namespace(context.Background(), prefix)
	if err != nil {
		b.Fatal(err)
	}
	return ns, clusterOn(b, ns, "sandbox", bed.Swarm, interval)
}

// clusterOn creates the TLS Secret and a SwarmCluster for the managers of sw, like
// testbed.CreateCluster but with the health interval given (a long one keeps the
// cluster's periodic Docker reads out of request counts), and waits until it is Ready.
func clusterOn(b *testing.B, ns, name string, sw *sandbox.Swarm, interval time.Duration) *swarmv1.SwarmCluster {
	b.Helper()
	ctx := context.Background()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-tls"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"ca.crt": sw.CACertPEM, "tls.crt": sw.ClientCertPEM, "tls.key": sw.ClientKeyPEM,
		},
	}
	if err := bed.Client.Create(ctx, secret); err != nil {
		b.Fatal(err)
	}
	var endpoints []string
	for _, m := range sw.Managers() {
		endpoints = append(endpoints, m.Endpoint)
	}
	cluster := &swarmv1.SwarmCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: swarmv1.SwarmClusterSpec{
			Endpoints:    endpoints,
			TLSSecretRef: &swarmv1.LocalObjectReference{Name: secret.Name},
			Interval:     &metav1.Duration{Duration: interval},
		},
	}
	if err := bed.Client.Create(ctx, cluster); err != nil {
		b.Fatal(err)
	}
	waitUntil(b, 2*time.Minute, "cluster "+ns+"/"+name+" Ready", func() (string, error) {
		if err := bed.Client.Get(ctx, client.ObjectKeyFromObject(cluster), cluster); err != nil {
			return "", err
		}
		if c := meta.FindStatusCondition(cluster.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Sprintf("%+v", cluster.Status.Conditions), nil
		}
		return "", nil
	})
	return cluster
}

// deleteCluster removes the cluster (the operator closes its connection and event stream).
func deleteCluster(b *testing.B, c *swarmv1.SwarmCluster) {
	if err := bed.Client.Delete(context.Background(), c); client.IgnoreNotFound(err) != nil {
		b.Error(err)
	}
}

// waitUntil polls cond every 100 ms until it returns "" (done) or an error, or the
// timeout (bounded by the run's deadline) passes.
func waitUntil(b *testing.B, timeout time.Duration, what string, cond func() (string, error)) {
	b.Helper()
	end := time.Now().Add(budget(timeout))
	for {
		msg, err := cond()
		if err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		if msg == "" {
			return
		}
		if time.Now().After(end) {
			b.Fatalf("%s: still not true after %s: %s", what, timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
