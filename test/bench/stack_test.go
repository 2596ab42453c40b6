package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	dockerclient "github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
)

// numbersShape sizes the two-service numbers stack (config/samples/numbers/
// docker-compose.yml: numbers-api and numbers-web on one overlay network) for a
// benchmark. Every change sets a new BENCH_CHANGE environment variable on both services,
// so each change is a rolling update of both.
type numbersShape struct {
	replicas int
	// monitor is update_config.monitor; "" leaves Swarm's default update config
	// (parallelism 1, delay 0, stop-first, monitor 5s).
	monitor string
}

// override is the inline file merged over docker-compose.yml. endpoint_mode dnsrr: this
// kernel has no IPVS for Swarm's VIPs (internal/sandbox/README.md); no published ports,
// so the operator's and the CLI's copies can share the nodes.
func (sh numbersShape) override(change int) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for _, svc := range []string{"numbers-api", "numbers-web"} {
		fmt.Fprintf(&b, "  %s:\n    environment: [BENCH_CHANGE=%d]\n    deploy:\n      replicas: %d\n      endpoint_mode: dnsrr\n",
			svc, change, sh.replicas)
		if sh.monitor != "" {
			fmt.Fprintf(&b, "      update_config: {monitor: %s}\n", sh.monitor)
		}
	}
	return b.String()
}

func baseCompose(b *testing.B) []byte {
	b.Helper()
	root, err := sandbox.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", "numbers", "docker-compose.yml"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func versionOf(change int) string { return fmt.Sprintf("c%d", change) }

// firstDeploy is the creation of a stack: when it was created and when its first
// rollout was reported complete (Ready=True and history Completed).
type firstDeploy struct {
	created, ready time.Time
}

// createNumbersStack creates the stack (the core file from a ConfigMap, as a user keeps
// it, plus the inline override), starts watching it and waits for its first rollout.
func createNumbersStack(b *testing.B, ns string, cluster *swarmv1.SwarmCluster, name string, sh numbersShape) (*swarmv1.SwarmStack, *stackWatch, firstDeploy) {
	b.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-compose"},
		BinaryData: map[string][]byte{"docker-compose.yml": baseCompose(b)},
	}
	if err := bed.Client.Create(ctx, cm); err != nil {
		b.Fatal(err)
	}
	inline := sh.override(0)
	s := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: versionOf(0),
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{
					{Name: "docker-compose.yml", ConfigMapRef: &swarmv1.KeySelector{Name: cm.Name, Key: "docker-compose.yml"}},
					{Name: "bench.yml", Inline: &inline},
				}},
			},
		},
	}
	w, err := watchStack(ns, name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.stop)
	mark := w.mark()
	fd := firstDeploy{created: time.Now()}
	if err := bed.Client.Create(ctx, s); err != nil {
		b.Fatal(err)
	}
	o, pokes := settle(b, s, w, mark, versionOf(0), 1, 4*time.Minute)
	fd.ready = o.at
	if pokes > 0 {
		b.Logf("stack %s/%s: first rollout left Progressing under Ready=True; a reconcile request finished it (trace in %s)", ns, name, detailsPath())
		detailf("%s: stack %s/%s, first rollout left Progressing under Ready=True until a reconcile was requested. Status as watched:\n%s",
			b.Name(), ns, name, trace(w.since(mark)))
	}
	detailf("%s: stack %s/%s (%d replicas per service) created; first rollout reported complete after %s",
		b.Name(), ns, name, sh.replicas, fd.ready.Sub(fd.created).Round(time.Millisecond))
	return s, w, fd
}

// settle waits for the rollout of version to complete. Before commit 35f66c6 the
// operator could leave a new stack with Ready=True while its history still said
// Progressing: a reconcile that read a stale cache patched Ready without the history,
// and no Swarm event came to trigger another reconcile before the periodic one (10 min).
// When that state lasts 15 s, settle requests a reconcile (annotation) and says how
// often it had to, so the benchmarks still run, and report it, should it come back.
func settle(b *testing.B, s *swarmv1.SwarmStack, w *stackWatch, mark int, version string, gen int64, timeout time.Duration) (done observation, pokes int) {
	b.Helper()
	end := time.Now().Add(budget(timeout))
	for {
		o, err := w.waitFor(mark, 15*time.Second, rolledOut(version, gen))
		if err == nil {
			return o, pokes
		}
		if !strings.Contains(err.Error(), "not seen after") || time.Now().After(end) {
			b.Fatalf("rollout of %s/%s %s: %v", s.Namespace, s.Name, version, err)
		}
		if obs := w.since(mark); len(obs) > 0 && stuckProgressing(obs[len(obs)-1].stack, gen) {
			pokes++
			requestReconcile(b, s)
		}
	}
}

// stuckProgressing: Ready=True for the generation while the newest rollout is still
// recorded as in progress.
func stuckProgressing(s *swarmv1.SwarmStack, gen int64) bool {
	c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= gen &&
		len(s.Status.History) > 0 && s.Status.History[0].Outcome == swarmv1.OutcomeProgressing
}

// readyTooEarly: the status says Ready=True for the generation although the rollout of
// version has not completed (what `kubectl wait --for=condition=Ready` would believe).
func readyTooEarly(s *swarmv1.SwarmStack, version string, gen int64) bool {
	c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration < gen {
		return false
	}
	h := s.Status.History
	return len(h) == 0 || h[0].Version != version || h[0].Outcome != swarmv1.OutcomeCompleted
}

func requestReconcile(b *testing.B, s *swarmv1.SwarmStack) {
	value := strconv.FormatInt(time.Now().UnixNano(), 10)
	mutate(b, s, func(s *swarmv1.SwarmStack) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[swarmv1.AnnotationReconcileRequestedAt] = value
	})
}

// rolledOut is true once the rollout of version (at generation gen or later) completed
// and the stack says Ready; a rollout that ended otherwise is an error.
func rolledOut(version string, gen int64) func(*swarmv1.SwarmStack) (bool, error) {
	return func(s *swarmv1.SwarmStack) (bool, error) {
		if s.Status.ObservedGeneration < gen || len(s.Status.History) == 0 || s.Status.History[0].Version != version {
			return false, nil
		}
		switch h := s.Status.History[0]; h.Outcome {
		case swarmv1.OutcomeProgressing:
			return false, nil
		case swarmv1.OutcomeCompleted:
			c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady)
			return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= gen, nil
		default:
			return false, fmt.Errorf("rollout of %s ended %s: %s", version, h.Outcome, h.Message)
		}
	}
}

// mutate re-reads the stack and applies change until the write does not conflict (the
// operator patches status concurrently). It returns when the write was sent (the last
// attempt's start) and the generation it produced.
func mutate(b *testing.B, s *swarmv1.SwarmStack, change func(*swarmv1.SwarmStack)) (time.Time, int64) {
	b.Helper()
	ctx := context.Background()
	var sent time.Time
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := bed.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
			return err
		}
		change(s)
		sent = time.Now()
		return bed.Client.Update(ctx, s)
	})
	if err != nil {
		b.Fatal(err)
	}
	return sent, s.Generation
}

// setChange makes change number i: a new version and a new BENCH_CHANGE on both services.
func setChange(b *testing.B, s *swarmv1.SwarmStack, sh numbersShape, i int) (time.Time, int64) {
	inline := sh.override(i)
	return mutate(b, s, func(s *swarmv1.SwarmStack) {
		s.Spec.Version = versionOf(i)
		s.Spec.Compose.Files[1].Inline = &inline
	})
}

// swarmClient talks to the first manager, for reading Swarm's own view. Its requests do
// not go through the operator's instrumented transport, so they are not counted.
func swarmClient(b *testing.B) *dockerclient.Client {
	b.Helper()
	cli, err := bed.Swarm.Client(bed.Swarm.Managers()[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cli.Close() })
	return cli
}

// stackServices lists a stack's services as Swarm has them.
func stackServices(cli *dockerclient.Client, stack string) ([]swarmtypes.Service, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cli.ServiceList(ctx, swarmtypes.ServiceListOptions{
		Filters: filters.NewArgs(filters.Arg("label", swarmv1.LabelStackNamespace+"="+stack)),
	})
}

// tasksRunningAt is when the last task of the stack's services reached "running"
// (Swarm's task status timestamp); every service must have all its tasks running.
func tasksRunningAt(cli *dockerclient.Client, stack string) (time.Time, error) {
	svcs, err := stackServices(cli, stack)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, svc := range svcs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		tasks, err := cli.TaskList(ctx, swarmtypes.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("service", svc.ID), filters.Arg("desired-state", "running"))})
		cancel()
		if err != nil {
			return time.Time{}, err
		}
		want := 0
		if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
			want = int(*r.Replicas)
		}
		running := 0
		for _, t := range tasks {
			if t.Status.State == swarmtypes.TaskStateRunning {
				running++
				if t.Status.Timestamp.After(last) {
					last = t.Status.Timestamp
				}
			}
		}
		if running != want {
			return time.Time{}, fmt.Errorf("service %s: %d/%d tasks running", svc.Spec.Name, running, want)
		}
	}
	return last, nil
}

// rollout is what Swarm says about the update of a stack's services that began after
// `after`: the first start, the last start and the last completion.
type rollout struct {
	firstStart, lastStart, lastDone time.Time
	services                        []swarmtypes.Service
}

func swarmRollout(cli *dockerclient.Client, stack string, after time.Time, want int) (rollout, error) {
	svcs, err := stackServices(cli, stack)
	if err != nil {
		return rollout{}, err
	}
	if len(svcs) != want {
		return rollout{}, fmt.Errorf("stack %s has %d services, want %d", stack, len(svcs), want)
	}
	r := rollout{services: svcs}
	for _, svc := range svcs {
		u := svc.UpdateStatus
		if u == nil || u.StartedAt == nil || u.CompletedAt == nil || u.State != swarmtypes.UpdateStateCompleted {
			return r, fmt.Errorf("service %s: no completed update (%+v)", svc.Spec.Name, u)
		}
		// Swarm's clock is this machine's: the sandbox daemons run here.
		if u.StartedAt.Before(after) {
			return r, fmt.Errorf("service %s: its last update started at %s, before the change at %s", svc.Spec.Name, u.StartedAt, after)
		}
		if r.firstStart.IsZero() || u.StartedAt.Before(r.firstStart) {
			r.firstStart = *u.StartedAt
		}
		if u.StartedAt.After(r.lastStart) {
			r.lastStart = *u.StartedAt
		}
		if u.CompletedAt.After(r.lastDone) {
			r.lastDone = *u.CompletedAt
		}
	}
	return r, nil
}

// statusFollow measures, for each service of the rollout, how long after Swarm set its
// UpdateStatus the stack's status showed it: the start (status.services[].updateStartedAt
// equal to Swarm's StartedAt) and the completion (updateState completed with Swarm's
// CompletedAt). Status times are metav1.Time, whole seconds, so they are compared at
// second precision; rollouts here are seconds apart, so this cannot mix them up.
func statusFollow(r rollout, obs []observation) (starts, dones samples, err error) {
	for _, svc := range r.services {
		u := svc.UpdateStatus
		var startSeen, doneSeen time.Time
		for _, o := range obs {
			for _, st := range o.stack.Status.Services {
				if st.Name != svc.Spec.Name {
					continue
				}
				if startSeen.IsZero() && st.UpdateStartedAt != nil && st.UpdateStartedAt.Unix() == u.StartedAt.Unix() {
					startSeen = o.at
				}
				if doneSeen.IsZero() && st.UpdateState == string(swarmtypes.UpdateStateCompleted) &&
					st.UpdateCompletedAt != nil && st.UpdateCompletedAt.Unix() == u.CompletedAt.Unix() {
					doneSeen = o.at
				}
			}
		}
		if startSeen.IsZero() || doneSeen.IsZero() {
			return nil, nil, fmt.Errorf("the status never showed %s's update of %s (start seen %v, completion seen %v)",
				svc.Spec.Name, u.StartedAt, !startSeen.IsZero(), !doneSeen.IsZero())
		}
		starts = append(starts, startSeen.Sub(*u.StartedAt))
		dones = append(dones, doneSeen.Sub(*u.CompletedAt))
	}
	return starts, dones, nil
}

// operatorChange makes change i through the operator and measures it.
type changeResult struct {
	write, ready time.Time
	swarm        rollout
	starts       samples // Swarm's start to the status showing it, per service
	dones        samples // Swarm's completion to the status showing it, per service
	// earlyReady: some status showed Ready=True for the new generation before the
	// rollout had completed (the stale-cache patch of docs/benchmarks.md).
	earlyReady bool
}

func operatorChange(b *testing.B, cli *dockerclient.Client, s *swarmv1.SwarmStack, w *stackWatch, sh numbersShape, i int) changeResult {
	b.Helper()
	mark := w.mark()
	write, gen := setChange(b, s, sh, i)
	o, err := w.waitFor(mark, 5*time.Minute, rolledOut(versionOf(i), gen))
	if err != nil {
		b.Fatalf("change %d of %s: %v", i, s.Name, err)
	}
	r, err := swarmRollout(cli, stackName(s), write, 2)
	if err != nil {
		b.Fatalf("change %d of %s: %v", i, s.Name, err)
	}
	starts, dones, err := statusFollow(r, w.since(mark))
	if err != nil {
		b.Fatalf("change %d of %s: %v", i, s.Name, err)
	}
	res := changeResult{write: write, ready: o.at, swarm: r, starts: starts, dones: dones}
	for _, ob := range w.since(mark) {
		if ob.at.Before(o.at) && readyTooEarly(ob.stack, versionOf(i), gen) {
			res.earlyReady = true
		}
	}
	if res.earlyReady {
		detailf("%s: change %d of %s/%s (write at +0ms): Ready=True before the rollout completed. Status as watched:\n%s",
			b.Name(), i, s.Namespace, s.Name, traceFrom(write, w.since(mark)))
	}
	return res
}

func stackName(s *swarmv1.SwarmStack) string {
	if s.Spec.StackName != "" {
		return s.Spec.StackName
	}
	return s.Name
}

// deleteStacks deletes the stacks and waits until the operator has removed them from
// the swarm (their finalizer is gone).
func deleteStacks(b *testing.B, ns string, timeout time.Duration) time.Duration {
	ctx := context.Background()
	t0 := time.Now()
	if err := bed.Client.DeleteAllOf(ctx, &swarmv1.SwarmStack{}, client.InNamespace(ns)); err != nil {
		b.Error(err)
		return 0
	}
	end := time.Now().Add(budget(timeout))
	for {
		var list swarmv1.SwarmStackList
		if err := bed.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			b.Error(err)
			return 0
		}
		if len(list.Items) == 0 {
			return time.Since(t0)
		}
		if time.Now().After(end) {
			b.Errorf("%d stacks of %s still there after %s", len(list.Items), ns, timeout)
			return 0
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dockerCLI is the docker CLI with `stack deploy --detach` (Debian's 20.10 has none).
func dockerCLI() (string, error) {
	for _, p := range []string{"/usr/local/bin/docker", "docker"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		out, _ := exec.Command(path, "stack", "deploy", "--help").CombinedOutput()
		if strings.Contains(string(out), "--detach") {
			return path, nil
		}
	}
	return "", fmt.Errorf("no docker CLI with `stack deploy --detach` (looked at /usr/local/bin/docker and PATH)")
}

// cliStack deploys the same files with `docker stack deploy`, against the same manager
// the operator uses first.
type cliStack struct {
	docker, dir, name string
	env               []string
}

func newCLIStack(b *testing.B, docker, name string) *cliStack {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), baseCompose(b), 0o644); err != nil {
		b.Fatal(err)
	}
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, ".docker")},
		bed.Swarm.CLIEnv(bed.Swarm.Managers()[0])...)
	return &cliStack{docker: docker, dir: dir, name: name, env: env}
}

// deploy runs `docker stack deploy --detach=false` for change i and returns how long
// the command took. --resolve-image never: the operator's default, and the images are
// local to the nodes (no registry).
func (c *cliStack) deploy(sh numbersShape, i int) (time.Duration, time.Time, error) {
	override := filepath.Join(c.dir, "bench.yml")
	if err := os.WriteFile(override, []byte(sh.override(i)), 0o644); err != nil {
		return 0, time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget(5*time.Minute))
	defer cancel()
	cmd := exec.CommandContext(ctx, c.docker, "stack", "deploy", "--detach=false", "--resolve-image", "never",
		"-c", filepath.Join(c.dir, "docker-compose.yml"), "-c", override, c.name)
	cmd.Env = c.env
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		return took, t0, fmt.Errorf("docker stack deploy: %w: %s", err, out)
	}
	return took, t0, nil
}

func (c *cliStack) remove() error {
	cmd := exec.Command(c.docker, "stack", "rm", c.name)
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker stack rm: %w: %s", err, out)
	}
	return nil
}

// trace summarises watched statuses, one line each, for logs.
func trace(obs []observation) string {
	if len(obs) == 0 {
		return ""
	}
	return traceFrom(obs[0].at, obs)
}

func traceFrom(t0 time.Time, obs []observation) string {
	var b strings.Builder
	for _, o := range obs {
		s := o.stack
		ready := "-"
		if c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady); c != nil {
			ready = fmt.Sprintf("%s/%s", c.Status, c.Reason)
		}
		hist := "-"
		if len(s.Status.History) > 0 {
			hist = s.Status.History[0].Version + " " + s.Status.History[0].Outcome
		}
		svcs := ""
		for _, st := range s.Status.Services {
			svcs += fmt.Sprintf(" %s=%s", strings.TrimPrefix(st.Name, stackName(s)+"_"), st.UpdateState)
		}
		fmt.Fprintf(&b, "   +%6dms rv %s gen %d/%d Ready %s history[0] %s lastAttempted %.12s lastApplied %.12s services%s\n",
			o.at.Sub(t0).Milliseconds(), s.ResourceVersion, s.Generation, s.Status.ObservedGeneration, ready, hist,
			strings.TrimPrefix(s.Status.LastAttemptedRevision, "sha256:"), strings.TrimPrefix(s.Status.LastAppliedRevision, "sha256:"), svcs)
	}
	return b.String()
}
