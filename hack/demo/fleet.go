package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// The fleet of the last step: three more Swarms, one manager each, named as in
// docs/fleet.md. The first is the canary.
var fleet = []struct{ name, env string }{{"seoul", "canary"}, {"frankfurt", "prod"}, {"virginia", "prod"}}

// fleetSoak replaces the sample's 10m soak, so that the step takes seconds.
const fleetSoak = 5 * time.Second

// runFleet releases the sample SwarmStackSet (config/samples) over three Swarms of their
// own and checks, on each Swarm, that the canary got it first and prod only after the
// soak and the approval. Every check reads an outcome, none a duration: the step passes
// however slow the machine is.
func (d *demo) runFleet(ctx context.Context) error {
	step(fmt.Sprintf("11. Fleet: the numbers release over three more Swarms with the SwarmStackSet of config/samples: the canary (%s) first, a %s soak, an approval, then prod one Swarm at a time", fleet[0].name, fleetSoak))
	t0 := time.Now()
	var names []string
	for _, c := range fleet {
		names = append(names, c.name)
	}
	swarms, err := testbed.StartSwarms(ctx, nil, names...)
	if err != nil {
		return err
	}
	defer func() {
		for _, sw := range swarms {
			_ = sw.Close()
		}
	}()
	fmt.Printf("  sandbox Swarms %s started, one manager each (%s)\n", strings.Join(names, ", "), time.Since(t0).Round(time.Second))
	for i, c := range fleet {
		cluster, err := d.bed.CreateClusterOn(ctx, swarms[i], ns, c.name)
		if err != nil {
			return err
		}
		cluster.Labels = map[string]string{"app": "numbers", "env": c.env}
		if err := d.c.Update(ctx, cluster); err != nil {
			return err
		}
	}
	if err := d.wait(ctx, "the fleet's SwarmClusters Ready", 2*time.Minute, func() (bool, string) {
		for _, c := range fleet {
			var sc swarmv1.SwarmCluster
			if err := d.c.Get(ctx, key(c.name), &sc); err != nil {
				return false, err.Error()
			}
			if ok, msg := ready(sc.Status.Conditions); !ok {
				return false, c.name + ": " + msg
			}
		}
		return true, ""
	}); err != nil {
		return err
	}
	d.cli.kubectl("get", "swarmclusters", "-l", "app=numbers", "-L", "env")

	set, err := sampleSet()
	if err != nil {
		return err
	}
	set.Namespace = ns
	set.Spec.Strategy.Steps[0].Soak = &metav1.Duration{Duration: fleetSoak}
	fmt.Printf("  applying %s (soak set to %s)\n", sampleSetFile, fleetSoak)
	if err := d.c.Create(ctx, set); err != nil {
		return err
	}
	version := set.Spec.Template.Spec.Version
	if err := d.waitSet(ctx, set, "the canary released and soaked, prod awaiting approval", func() (bool, string) {
		phases := setPhases(set)
		return phases == "canary=Completed prod=AwaitingApproval", phases
	}); err != nil {
		return err
	}
	// Prod has seen nothing yet: checked on the Swarms themselves.
	for i, c := range fleet {
		want := ""
		if c.env == "canary" {
			want = version
		}
		if err := d.checkFleetSwarm(ctx, swarms[i], c.name, want); err != nil {
			return err
		}
	}
	d.cli.kubectl("swarm", "get", "set", set.Name)
	if err := d.cli.run("swarm", "approve", set.Name, "prod"); err != nil {
		return err
	}
	if err := d.waitSet(ctx, set, "the release on every Swarm", func() (bool, string) {
		return ready(set.Status.Conditions)
	}); err != nil {
		return err
	}
	for i, c := range fleet {
		if err := d.checkFleetSwarm(ctx, swarms[i], c.name, version); err != nil {
			return err
		}
	}
	if err := checkFleetOrder(set); err != nil {
		return err
	}
	done(t0)
	d.cli.kubectl("get", "swarmstacksets")
	d.cli.kubectl("swarm", "get", "set", set.Name)
	d.cli.kubectl("get", "swarmstacks", "-l", swarmv1.LabelSet+"="+set.Name)
	return nil
}

const sampleSetFile = "config/samples/swarm_v1alpha1_swarmstackset.yaml"

// sampleSet reads the SwarmStackSet sample, as `kubectl apply -k config/samples` would.
func sampleSet() (*swarmv1.SwarmStackSet, error) {
	root, err := sandbox.RepoRoot()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, sampleSetFile))
	if err != nil {
		return nil, err
	}
	var set swarmv1.SwarmStackSet
	if err := yaml.UnmarshalStrict(data, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", sampleSetFile, err)
	}
	if len(set.Spec.Strategy.Steps) != 2 || set.Spec.Strategy.Steps[0].Name != "canary" {
		return nil, fmt.Errorf("%s: the demo wants two steps, canary first", sampleSetFile)
	}
	return &set, nil
}

// waitSet re-reads the set until cond holds.
func (d *demo) waitSet(ctx context.Context, set *swarmv1.SwarmStackSet, what string, cond func() (bool, string)) error {
	return d.wait(ctx, what, 5*time.Minute, func() (bool, string) {
		if err := d.c.Get(ctx, key(set.Name), set); err != nil {
			return false, err.Error()
		}
		if set.Status.Halted {
			return true, "unexpected halt: " + setPhases(set)
		}
		return cond()
	})
}

// checkFleetSwarm checks the numbers stack on one Swarm: every service on the version
// (v2: numbers-api:v2 and numbers-web:v2), or no service at all when version is "".
func (d *demo) checkFleetSwarm(ctx context.Context, sw *sandbox.Swarm, name, version string) error {
	cli, err := sw.Client(sw.Managers()[0])
	if err != nil {
		return err
	}
	defer cli.Close()
	list, err := cli.ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace=numbers"))})
	if err != nil {
		return err
	}
	var got []string
	for _, s := range list {
		got = append(got, s.Spec.Name+"="+s.Spec.TaskTemplate.ContainerSpec.Image)
	}
	slices.Sort(got)
	var want []string
	if version != "" {
		want = []string{"numbers_numbers-api=numbers-api:" + version, "numbers_numbers-web=numbers-web:" + version}
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("the %s Swarm runs %v, want %v", name, got, want)
	}
	if len(got) == 0 {
		got = []string{"nothing"}
	}
	fmt.Printf("  Swarm %s runs %s\n", name, strings.Join(got, ", "))
	return nil
}

// checkFleetOrder checks the set's own record: no prod cluster was written before the
// canary's soak ended, and prod went one cluster at a time (maxConcurrent 25% of two),
// the second written only once the first was Ready.
func checkFleetOrder(set *swarmv1.SwarmStackSet) error {
	var soaked time.Time
	for _, st := range set.Status.Steps {
		if st.Name == "canary" && st.SoakedAt != nil {
			soaked = st.SoakedAt.Time
		}
	}
	if soaked.IsZero() {
		return errors.New("the canary step has no soakedAt")
	}
	for _, c := range set.Status.Clusters {
		if c.WrittenAt == nil || c.ReadyAt == nil {
			return fmt.Errorf("cluster %s: no writtenAt or readyAt", c.Name)
		}
	}
	clusters := slices.Clone(set.Status.Clusters)
	slices.SortFunc(clusters, func(a, b swarmv1.StackSetClusterStatus) int { return a.WrittenAt.Compare(b.WrittenAt.Time) })
	var prod []swarmv1.StackSetClusterStatus
	for _, c := range clusters {
		fmt.Printf("  %-9s step %-6s written %s, Ready %s\n", c.Name, c.Step, c.WrittenAt.Format(time.TimeOnly), c.ReadyAt.Format(time.TimeOnly))
		if c.Step == "canary" {
			fmt.Printf("  %-9s soaked until %s\n", "", soaked.Format(time.TimeOnly))
		}
		if c.Step == "prod" {
			prod = append(prod, c)
		}
	}
	if len(prod) != 2 {
		return fmt.Errorf("%d prod clusters, want 2", len(prod))
	}
	// The first done is the first written. Status times are whole seconds: ties on
	// readyAt fall back to writtenAt, so the order holds however close the two were.
	slices.SortFunc(prod, func(a, b swarmv1.StackSetClusterStatus) int {
		if c := a.ReadyAt.Compare(b.ReadyAt.Time); c != 0 {
			return c
		}
		return a.WrittenAt.Compare(b.WrittenAt.Time)
	})
	if prod[0].WrittenAt.Before(&metav1.Time{Time: soaked}) {
		return fmt.Errorf("%s was written before the canary's soak ended", prod[0].Name)
	}
	if prod[1].WrittenAt.Before(prod[0].ReadyAt) {
		return fmt.Errorf("%s was written before %s was Ready", prod[1].Name, prod[0].Name)
	}
	return nil
}

func setPhases(s *swarmv1.SwarmStackSet) string {
	if len(s.Status.Steps) == 0 {
		return "no status yet"
	}
	var out []string
	for _, st := range s.Status.Steps {
		out = append(out, st.Name+"="+st.Phase)
	}
	return strings.Join(out, " ")
}
