// Command demo runs the seed scenario's release routine on a local control plane and a
// sandbox swarm, then a release over a fleet of three more Swarms: `make demo`. It leaves the machine as it found it, on success, on error
// and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	swarmtypes "github.com/docker/docker/api/types/swarm"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/controllers"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/internal/security"
	"github.com/swarmops/swarm-operator/test/testbed"
)

const ns = "default"

// interactive is true when stdout is a terminal, where progress is redrawn in place.
var interactive = func() bool {
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}()

type demo struct {
	bed   *testbed.Bed
	c     crclient.Client
	cli   *cli
	start time.Time
}

func main() {
	os.Exit(runDemo())
}

func runDemo() int {
	ctrl.SetLogger(logr.Discard())
	if err := sandbox.Available(); err != nil {
		fail(err)
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fail(errors.New("KUBEBUILDER_ASSETS is not set: run `make demo`"))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	_ = sandbox.CleanupStale()

	step("Starting a local kube-apiserver + etcd and a sandbox swarm of 3 managers and 2 workers")
	t0 := time.Now()
	bed, err := testbed.Start(ctx, testbed.Options{Name: "node", Managers: 3, Workers: 2})
	if err != nil {
		fail(err)
	}
	// Every exit path below goes through here: nothing is left running.
	defer func() {
		step("Cleaning up")
		if err := bed.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}()
	done(t0)
	// The release runs at the baseline security level (applySamples labels the
	// namespace); web publishes port 80 in host mode, which the platform allows here.
	stop, err := bed.StartOperator(controllers.Options{StackSecurity: security.Policy{AllowedHostPorts: []uint32{80}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	cli, err := newCLI(bed)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cli.close()
	d := &demo{bed: bed, c: bed.Client, cli: cli, start: time.Now()}
	if err := d.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "\nDEMO FAILED:", err)
		return 1
	}
	return 0
}

func (d *demo) run(ctx context.Context) error {
	step("Applying config/samples: the numbers compose files as a ConfigMap, a SwarmCluster with mutual TLS; namespace " + ns + " enforces security level baseline (host port 80 allowed)")
	if err := d.applySamples(ctx); err != nil {
		return err
	}
	if err := d.wait(ctx, "SwarmCluster prod Ready", time.Minute, func() (bool, string) {
		var c swarmv1.SwarmCluster
		if err := d.c.Get(ctx, key("prod"), &c); err != nil {
			return false, err.Error()
		}
		return ready(c.Status.Conditions)
	}); err != nil {
		return err
	}
	d.printClusters(ctx)

	releases := []struct {
		title, version, outcome string
		files                   []string
		rollbackPolicy          string
		updateOrder             string
	}{
		{"1. Release v1: core + prod (api x6 replicated, web global with a host-mode port)", "v1", swarmv1.OutcomeCompleted,
			[]string{"docker-compose.yml", "prod.yml"}, "", ""},
		{"2. v2 with health checks: the default rolling update, one task at a time", "v2", swarmv1.OutcomeCompleted,
			[]string{"docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "v2.yml"}, "", ""},
		{"3. v3 with update_config: parallelism 3, start-first, rollback on failure", "v3", swarmv1.OutcomeCompleted,
			[]string{"docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "v3.yml"}, "", ""},
		{"4. v5-bad with rollbackPolicy Stack: new api tasks fail their health check; the whole stack goes back to v3", "v5-bad", swarmv1.OutcomeRolledBack,
			[]string{"docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "v5-bad.yml"}, swarmv1.RollbackPolicyStack, ""},
		{"5. v5-bad again, rollbackPolicy Service and the fast rollback config: Swarm rolls back api alone, web stays on v5", "v5-bad+fast-rollback", swarmv1.OutcomeRolledBack,
			[]string{"docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "prod-rollback-config.yml", "v5-bad.yml"}, swarmv1.RollbackPolicyService, ""},
		{"6. v5 from core + prod-full (UTF-16 with BOM) + v5", "v5", swarmv1.OutcomeCompleted,
			[]string{"docker-compose.yml", "prod-full.yml", "v5.yml"}, "", ""},
		{"7. v3 as an ordered release (updateOrder DependsOn, web depends on a healthy api): api first, web once api completed", "v3-ordered", swarmv1.OutcomeCompleted,
			[]string{"docker-compose.yml", "prod-full.yml", "v3.yml", "ordered.yml"}, "", swarmv1.UpdateOrderDependsOn},
	}
	for _, r := range releases {
		step(r.title)
		t0 := time.Now()
		if err := d.release(ctx, r.version, r.files, r.rollbackPolicy, r.updateOrder); err != nil {
			return err
		}
		if err := d.waitOutcome(ctx, r.version, r.outcome); err != nil {
			return err
		}
		if r.rollbackPolicy == swarmv1.RollbackPolicyStack {
			if err := d.waitImages(ctx, ":v3"); err != nil {
				return err
			}
		}
		if r.updateOrder == swarmv1.UpdateOrderDependsOn {
			if err := d.showOrder(ctx); err != nil {
				return err
			}
		}
		done(t0)
		d.printStack(ctx)
	}

	step("8. Maintenance: drain worker node5 and manager node3 for a window starting now (10 minutes), rebalance after it")
	t0 := time.Now()
	d.printNodes(ctx)
	start := metav1.NewTime(time.Now().Truncate(time.Second))
	m := &swarmv1.SwarmNodeMaintenance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "demo-maintenance"},
		Spec: swarmv1.SwarmNodeMaintenanceSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: "prod"}, Nodes: []string{"node5", "node3"},
			MaxConcurrent: 2, Reason: "demo", Rebalance: true,
			Window: &swarmv1.MaintenanceWindow{Start: &start, Duration: metav1.Duration{Duration: 10 * time.Minute}},
		},
	}
	if err := d.c.Create(ctx, m); err != nil {
		return err
	}
	if err := d.wait(ctx, "both nodes drained and empty", 3*time.Minute, func() (bool, string) {
		if err := d.c.Get(ctx, crclient.ObjectKeyFromObject(m), m); err != nil {
			return false, err.Error()
		}
		return m.Status.Phase == swarmv1.PhaseInMaintenance, "phase " + m.Status.Phase + " " + nodeSummary(m)
	}); err != nil {
		return err
	}
	done(t0)
	d.printMaintenance(m)
	d.printNodes(ctx)
	step("9. End of the window (ended early: its duration set to end now); each node returns to its previous availability, then the rebalance spreads the api tasks back")
	t0 = time.Now()
	if err := d.c.Get(ctx, crclient.ObjectKeyFromObject(m), m); err != nil {
		return err
	}
	m.Spec.Window.Duration = metav1.Duration{Duration: time.Since(start.Time).Round(time.Second) + time.Second}
	if err := d.c.Update(ctx, m); err != nil {
		return err
	}
	if err := d.wait(ctx, "nodes restored and services rebalanced", 3*time.Minute, func() (bool, string) {
		if err := d.c.Get(ctx, crclient.ObjectKeyFromObject(m), m); err != nil {
			return false, err.Error()
		}
		rb := m.Status.Rebalance
		return m.Status.Phase == swarmv1.PhaseCompleted && rb != nil && rb.FinishedAt != nil, "phase " + m.Status.Phase + " " + nodeSummary(m)
	}); err != nil {
		return err
	}
	done(t0)
	fmt.Printf("  rebalanced: %s\n", strings.Join(m.Status.Rebalance.Services, ", "))
	d.printMaintenance(m)
	d.printNodes(ctx)
	if err := d.c.Delete(ctx, m); err != nil {
		return err
	}

	step("10. High availability: stop the manager the operator uses (node1); it goes on through another")
	t0 = time.Now()
	node1 := d.bed.Swarm.Node("node1")
	if err := node1.Stop(ctx); err != nil {
		return err
	}
	if err := d.wait(ctx, "SwarmCluster on another endpoint with 2/3 managers reachable", 2*time.Minute, func() (bool, string) {
		var c swarmv1.SwarmCluster
		if err := d.c.Get(ctx, key("prod"), &c); err != nil {
			return false, err.Error()
		}
		ok, msg := ready(c.Status.Conditions)
		m := c.Status.Managers
		return ok && m != nil && m.Reachable == 2 && c.Status.Endpoint != node1.Endpoint, msg
	}); err != nil {
		return err
	}
	done(t0)
	d.printClusters(ctx)
	step("Restarting node1")
	if err := node1.Start(ctx); err != nil {
		return err
	}
	if err := d.wait(ctx, "3/3 managers reachable", 2*time.Minute, func() (bool, string) {
		var c swarmv1.SwarmCluster
		if err := d.c.Get(ctx, key("prod"), &c); err != nil {
			return false, err.Error()
		}
		ok, msg := ready(c.Status.Conditions)
		return ok && c.Status.Managers != nil && c.Status.Managers.Reachable == 3, msg
	}); err != nil {
		return err
	}
	d.printClusters(ctx)
	if err := d.runFleet(ctx); err != nil {
		return err
	}
	fmt.Printf("\nDemo finished in %s.\n", time.Since(d.start).Round(time.Second))
	return nil
}

// applySamples creates what `kubectl apply -k config/samples` would, with the cluster's
// endpoints and TLS Secret pointed at the sandbox.
func (d *demo) applySamples(ctx context.Context) error {
	root, err := sandbox.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "config", "samples", "numbers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-compose"}, BinaryData: map[string][]byte{}}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		cm.BinaryData[e.Name()] = data
	}
	if err := d.c.Create(ctx, cm); err != nil {
		return err
	}
	var namespace corev1.Namespace
	if err := d.c.Get(ctx, crclient.ObjectKey{Name: ns}, &namespace); err != nil {
		return err
	}
	if namespace.Labels == nil {
		namespace.Labels = map[string]string{}
	}
	namespace.Labels[security.LabelEnforce] = security.Baseline.String()
	if err := d.c.Update(ctx, &namespace); err != nil {
		return err
	}
	_, err = d.bed.CreateCluster(ctx, ns, "prod")
	return err
}

func (d *demo) release(ctx context.Context, version string, files []string, rollbackPolicy, updateOrder string) error {
	var s swarmv1.SwarmStack
	err := d.c.Get(ctx, key("numbers"), &s)
	create := err != nil
	if create {
		s = swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
			Spec: swarmv1.SwarmStackSpec{ClusterRef: swarmv1.LocalObjectReference{Name: "prod"}}}
	}
	s.Spec.Version = version
	s.Spec.RollbackPolicy = rollbackPolicy
	s.Spec.UpdateOrder = updateOrder
	s.Spec.Compose.Files = nil
	for _, f := range files {
		s.Spec.Compose.Files = append(s.Spec.Compose.Files, swarmv1.ComposeFile{Name: f, ConfigMapRef: &swarmv1.KeySelector{Name: "numbers-compose", Key: f}})
	}
	fast := testbed.FastRolloutOverride
	s.Spec.Compose.Files = append(s.Spec.Compose.Files, swarmv1.ComposeFile{Name: "demo-fast.yml", Inline: &fast})
	fmt.Printf("  compose files: %s + demo-fast.yml (short monitors)\n", strings.Join(files, " + "))
	if create {
		return d.c.Create(ctx, &s)
	}
	return d.c.Update(ctx, &s)
}

func (d *demo) waitOutcome(ctx context.Context, version, outcome string) error {
	return d.wait(ctx, fmt.Sprintf("rollout of %s to end (%s expected)", version, outcome), 6*time.Minute, func() (bool, string) {
		var s swarmv1.SwarmStack
		if err := d.c.Get(ctx, key("numbers"), &s); err != nil {
			return false, err.Error()
		}
		msg := ""
		if c := meta.FindStatusCondition(s.Status.Conditions, swarmv1.ConditionReady); c != nil {
			msg = c.Message
		}
		if len(s.Status.History) == 0 || s.Status.ObservedGeneration != s.Generation {
			return false, msg
		}
		h := s.Status.History[0]
		if h.Version == version && h.Outcome != swarmv1.OutcomeProgressing {
			if h.Outcome != outcome {
				return true, fmt.Sprintf("unexpected outcome %s: %s", h.Outcome, h.Message)
			}
			return true, ""
		}
		return false, msg
	})
}

// waitImages waits until every service of the stack runs an image with that tag and
// no update or rollback is under way.
func (d *demo) waitImages(ctx context.Context, tag string) error {
	return d.wait(ctx, "every service back on "+strings.TrimPrefix(tag, ":"), 3*time.Minute, func() (bool, string) {
		var s swarmv1.SwarmStack
		if err := d.c.Get(ctx, key("numbers"), &s); err != nil {
			return false, err.Error()
		}
		var on []string
		for _, svc := range s.Status.Services {
			on = append(on, svc.Name+" "+svc.Image+" "+svc.UpdateState)
			if !strings.HasSuffix(svc.Image, tag) || svc.UpdateState == "rollback_started" || svc.UpdateState == "updating" {
				return false, strings.Join(on, ", ")
			}
		}
		return len(s.Status.Services) > 0, strings.Join(on, ", ")
	})
}

// showOrder shows that the ordered release went wave by wave, on Swarm's own clock: the
// web's update started only after the api's had completed.
func (d *demo) showOrder(ctx context.Context) error {
	var s swarmv1.SwarmStack
	if err := d.c.Get(ctx, key("numbers"), &s); err != nil {
		return err
	}
	fmt.Printf("  waves written: %s\n", strings.Join(s.Status.History[0].Waves, " -> "))
	cli, err := d.anyManager(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	update := map[string]*swarmtypes.UpdateStatus{}
	for _, name := range []string{"numbers_numbers-api", "numbers_numbers-web"} {
		svc, _, err := cli.ServiceInspectWithRaw(ctx, name, swarmtypes.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if svc.UpdateStatus == nil || svc.UpdateStatus.StartedAt == nil || svc.UpdateStatus.CompletedAt == nil {
			return fmt.Errorf("%s has no finished update", name)
		}
		update[name] = svc.UpdateStatus
	}
	api, web := update["numbers_numbers-api"], update["numbers_numbers-web"]
	fmt.Printf("  Swarm: api updated %s to %s, web %s to %s\n", api.StartedAt.Format(time.TimeOnly), api.CompletedAt.Format(time.TimeOnly),
		web.StartedAt.Format(time.TimeOnly), web.CompletedAt.Format(time.TimeOnly))
	if web.StartedAt.Before(*api.CompletedAt) {
		return errors.New("the web's update started before the api's completed")
	}
	return nil
}

// wait polls cond and shows what it waits for and for how long, never a silent pause.
func (d *demo) wait(ctx context.Context, what string, timeout time.Duration, cond func() (bool, string)) error {
	start := time.Now()
	lastShown := time.Time{}
	for {
		ok, msg := cond()
		if ok {
			if interactive {
				fmt.Printf("\r\033[K")
			}
			if strings.HasPrefix(msg, "unexpected") {
				return errors.New(msg)
			}
			return nil
		}
		line := fmt.Sprintf("  waiting for %s (%s): %s", what, time.Since(start).Round(time.Second), msg)
		if len(line) > 160 {
			line = line[:157] + "..."
		}
		switch {
		case interactive:
			fmt.Printf("\r\033[K%s", line)
		case time.Since(lastShown) >= 5*time.Second:
			// Logs (CI) get a line every few seconds instead of a redrawn one.
			fmt.Println(line)
			lastShown = time.Now()
		}
		if time.Since(start) > timeout {
			fmt.Println()
			return fmt.Errorf("timed out after %s waiting for %s: %s", timeout, what, msg)
		}
		select {
		case <-ctx.Done():
			fmt.Println()
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *demo) printClusters(context.Context) {
	d.cli.kubectl("get", "swarmclusters")
}

func (d *demo) printStack(context.Context) {
	d.cli.kubectl("get", "swarmstacks")
	d.cli.kubectl("swarm", "get", "stack", "numbers")
	d.cli.kubectl("swarm", "history", "numbers")
}

func (d *demo) printMaintenance(m *swarmv1.SwarmNodeMaintenance) {
	d.cli.kubectl("get", "swarmnodemaintenances")
	d.cli.kubectl("swarm", "get", "maintenances", m.Name)
}

// printNodes shows what `docker node ls` would, plus the tasks running on each node.
func (d *demo) printNodes(ctx context.Context) {
	cli, err := d.anyManager(ctx)
	if err != nil {
		return
	}
	defer cli.Close()
	nodes, err := cli.NodeList(ctx, swarmtypes.NodeListOptions{})
	if err != nil {
		return
	}
	tasks, _ := cli.TaskList(ctx, swarmtypes.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	perNode := map[string]int{}
	for _, t := range tasks {
		perNode[t.NodeID]++
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Description.Hostname < nodes[j].Description.Hostname })
	tw := table("$ docker node ls", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "RUNNING TASKS")
	for _, n := range nodes {
		ms := ""
		if n.ManagerStatus != nil {
			ms = string(n.ManagerStatus.Reachability)
			if n.ManagerStatus.Leader {
				ms = "Leader"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", n.Description.Hostname, n.Status.State, n.Spec.Availability, ms, perNode[n.ID])
	}
	tw.Flush()
}

func (d *demo) anyManager(ctx context.Context) (*client.Client, error) {
	for _, n := range d.bed.Swarm.Managers() {
		cli, err := d.bed.Swarm.Client(n)
		if err != nil {
			continue
		}
		if info, err := cli.Info(ctx); err == nil && info.Swarm.ControlAvailable {
			return cli, nil
		}
		cli.Close()
	}
	return nil, errors.New("no manager answers")
}

func nodeSummary(m *swarmv1.SwarmNodeMaintenance) string {
	var parts []string
	for _, n := range m.Status.Nodes {
		parts = append(parts, fmt.Sprintf("%s %s (%d tasks left)", n.Name, n.Availability, n.TasksRemaining))
	}
	return strings.Join(parts, ", ")
}

func ready(conds []metav1.Condition) (bool, string) {
	c := meta.FindStatusCondition(conds, swarmv1.ConditionReady)
	if c == nil {
		return false, "no Ready condition yet"
	}
	return c.Status == metav1.ConditionTrue, c.Message
}

func table(title string, cols ...string) *tabwriter.Writer {
	fmt.Println("\n" + title)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	return tw
}

func key(name string) crclient.ObjectKey { return crclient.ObjectKey{Namespace: ns, Name: name} }

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func done(t0 time.Time) { fmt.Printf("  done in %s\n", time.Since(t0).Round(100*time.Millisecond)) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}
