package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// TestStackSetReleasesCanaryFirstAndHaltsABadRelease runs a SwarmStackSet against the
// real control plane and three real Swarms: the canary cluster on the package's shared
// sandbox Swarm and the two prod clusters each on a Swarm of its own (one manager), plus a
// fourth cluster (lab) that no step selects. Every stack is named "fleet" on its Swarm,
// so each check reads one Swarm's own services. A good release walks canary, soak,
// approval and prod; a bad one (v5-bad: the api fails its health check) halts at the
// canary, the prod Swarms' services are never written, and RollbackAll puts v3 back on
// the canary's Swarm.
func TestStackSetReleasesCanaryFirstAndHaltsABadRelease(t *testing.T) {
	ctx := context.Background()
	ns, canary := newNamespace(t, "fleet")
	prodSwarms := startFleetSwarms(t, ns, "prod1-", "prod2-")
	cm := numbersConfigMap(t, ns)
	label(t, canary, "canary")
	prod := map[string]*client.Client{}
	for i, name := range []string{"prod-1", "prod-2"} {
		c, err := bed.CreateClusterOn(ctx, prodSwarms[i], ns, name)
		if err != nil {
			t.Fatal(err)
		}
		label(t, c, "prod")
		prod[name] = swarmClient(t, prodSwarms[i])
	}
	lab, err := bed.CreateCluster(ctx, ns, "lab")
	if err != nil {
		t.Fatal(err)
	}
	label(t, lab, "lab")
	base := []string{"docker-compose.yml", "prod-healthcheck.yml", "prod-update-config.yml", "prod-rollback-config.yml"}
	one := intstr.FromInt32(1)
	set := &swarmv1.SwarmStackSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSetSpec{
			ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "numbers"}},
			Template: swarmv1.SwarmStackTemplate{Spec: swarmv1.SwarmStackTemplateSpec{
				StackName: "fleet", Version: "v3", RollbackPolicy: swarmv1.RollbackPolicyStack,
				Compose: swarmv1.ComposeSource{Files: composeFiles(cm.Name, append(base, "v3.yml")...)},
			}},
			Strategy: swarmv1.StackSetStrategy{
				Type: swarmv1.StrategyProgressive,
				Steps: []swarmv1.StackSetStep{
					{Name: "canary", ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "canary"}}, MaxConcurrent: &one, Soak: &metav1.Duration{Duration: 5 * time.Second}},
					{Name: "prod", ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, MaxConcurrent: &one, Approval: swarmv1.ApprovalManual},
				},
				OnFailure:        swarmv1.OnFailureRollbackAll,
				ProgressDeadline: &metav1.Duration{Duration: 5 * time.Minute},
			},
		},
	}
	if err := bed.Client.Create(ctx, set); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteSet(t, set) })

	// v3: the canary, its soak, then approval.
	waitSet(t, set, 4*time.Minute, "canary done, prod awaiting approval", func() string {
		if got := setPhases(set); got != "canary=Completed prod=AwaitingApproval" {
			return "phases " + got + "; " + describeConditions(set.Status.Conditions)
		}
		return ""
	})
	if !slices.Equal(set.Status.Unmatched, []string{"lab"}) || condition(set.Status.Conditions, swarmv1.ConditionUnmatched) == nil {
		var clusters swarmv1.SwarmClusterList
		_ = bed.Client.List(ctx, &clusters, crclient.InNamespace(ns))
		var labels []string
		for _, c := range clusters.Items {
			labels = append(labels, fmt.Sprintf("%s%v", c.Name, c.Labels))
		}
		raw, _ := json.Marshal(set)
		t.Fatalf("unmatched %v; SwarmClusters %v; set %s", set.Status.Unmatched, labels, raw)
	}
	if got := fleetServices(t, dockerClient(t)); got["fleet_numbers-api"].image != "numbers-api:v3" {
		t.Fatalf("the canary Swarm runs %+v", got)
	}
	for name, cli := range prod {
		if got := fleetServices(t, cli); len(got) > 0 {
			t.Fatalf("the %s Swarm runs %+v before prod was approved", name, got)
		}
	}
	update(t, set, func(s *swarmv1.SwarmStackSet) {
		metav1.SetMetaDataAnnotation(&s.ObjectMeta, swarmv1.AnnotationApprove, "prod")
	})
	waitSet(t, set, 5*time.Minute, "v3 released everywhere", func() string {
		if c := condition(set.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return describeConditions(set.Status.Conditions)
		}
		return ""
	})
	// Each prod Swarm runs its own v3; what it runs now is compared at the end: a
	// service Swarm updated (or rolled back) since would have a new version.
	v3 := map[string]map[string]swarmService{}
	for name, cli := range prod {
		v3[name] = fleetServices(t, cli)
		if api, web := v3[name]["fleet_numbers-api"], v3[name]["fleet_numbers-web"]; api.image != "numbers-api:v3" || web.image != "numbers-web:v3" {
			t.Fatalf("the %s Swarm runs %+v", name, v3[name])
		}
	}

	// v5-bad: the canary rolls back, the set halts, prod never sees it.
	update(t, set, func(s *swarmv1.SwarmStackSet) {
		s.Spec.Template.Spec.Version = "v5"
		s.Spec.Template.Spec.Compose.Files = composeFiles(cm.Name, append(base, "v5-bad.yml")...)
	})
	waitSet(t, set, 5*time.Minute, "the release halted", func() string {
		if !set.Status.Halted {
			return setPhases(set) + "; " + describeConditions(set.Status.Conditions)
		}
		return ""
	})
	// RollbackAll: the canary's stack gets the v3 template back, and its Swarm runs v3.
	// (The SwarmStack itself goes on reporting its rolled back v5 as long as the revision
	// its spec renders is the one already running: that is the stack's summary, not the
	// set's, so it is not asserted here.)
	canaryStack := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-sandbox"}}
	eventually(t, 4*time.Minute, "the canary back on v3", func() string {
		get(t, canaryStack)
		if canaryStack.Spec.Version != "v3" || canaryStack.Status.ObservedGeneration != canaryStack.Generation {
			return canaryStack.Spec.Version + "; " + describeConditions(canaryStack.Status.Conditions)
		}
		if got := fleetServices(t, dockerClient(t))["fleet_numbers-api"].image; got != "numbers-api:v3" {
			return "the canary Swarm's api runs " + got
		}
		return ""
	})
	if !slices.ContainsFunc(canaryStack.Status.History, func(h swarmv1.HistoryEntry) bool {
		return h.Version == "v5" && h.Outcome == swarmv1.OutcomeRolledBack
	}) {
		t.Errorf("the canary's history has no rolled back v5: %+v", canaryStack.Status.History)
	}
	for name, cli := range prod {
		s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-" + name}}
		get(t, s)
		if s.Spec.Version != "v3" || slices.ContainsFunc(s.Status.History, func(h swarmv1.HistoryEntry) bool { return h.Version == "v5" }) {
			t.Errorf("%s saw v5: spec %s, history %+v", name, s.Spec.Version, s.Status.History)
		}
		if got := fleetServices(t, cli); !maps.Equal(got, v3[name]) {
			t.Errorf("the %s Swarm's services were written after v3: %+v, then %+v", name, v3[name], got)
		}
	}
	get(t, set)
	if set.Status.History[0].Outcome != "RolledBack" || set.Status.History[1].Outcome != swarmv1.OutcomeCompleted {
		t.Errorf("set history %+v", set.Status.History)
	}
}

// startFleetSwarms starts a single-manager sandbox Swarm per name for this test and
// removes it when the test ends, failed or not; the namespace's SwarmClusters go first,
// so that the operator does not keep dialling Swarms that are gone.
func startFleetSwarms(t *testing.T, ns string, names ...string) []*sandbox.Swarm {
	t.Helper()
	swarms, err := testbed.StartSwarms(context.Background(), t.Logf, names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.Client.DeleteAllOf(context.Background(), &swarmv1.SwarmCluster{}, crclient.InNamespace(ns)); err != nil {
			t.Error(err)
		}
		for _, sw := range swarms {
			if err := sw.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	return swarms
}

// swarmClient talks to the single manager of a fleet Swarm.
func swarmClient(t *testing.T, sw *sandbox.Swarm) *client.Client {
	t.Helper()
	cli, err := sw.Client(sw.Managers()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// swarmService is what a check needs of one Swarm service: its image, and its version,
// which every write to the service (an update, a rollback) moves on.
type swarmService struct {
	image   string
	version uint64
}

// fleetServices lists the services of the stack "fleet" on one Swarm, by name.
func fleetServices(t *testing.T, cli *client.Client) map[string]swarmService {
	t.Helper()
	list, err := cli.ServiceList(context.Background(), swarmtypes.ServiceListOptions{
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace=fleet")),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]swarmService{}
	for _, s := range list {
		out[s.Spec.Name] = swarmService{image: s.Spec.TaskTemplate.ContainerSpec.Image, version: s.Version.Index}
	}
	return out
}

func label(t *testing.T, c *swarmv1.SwarmCluster, env string) {
	t.Helper()
	update(t, c, func(c *swarmv1.SwarmCluster) {
		c.Labels = map[string]string{"app": "numbers", "env": env}
	})
}

func setPhases(s *swarmv1.SwarmStackSet) string {
	var out []string
	for _, st := range s.Status.Steps {
		out = append(out, st.Name+"="+st.Phase)
	}
	return strings.Join(out, " ")
}

// waitSet re-reads the set until cond says nothing is wrong.
func waitSet(t *testing.T, s *swarmv1.SwarmStackSet, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	eventually(t, timeout, what, func() string {
		get(t, s)
		if msg := cond(); msg != "" {
			return fmt.Sprintf("%s (clusters %+v)", msg, s.Status.Clusters)
		}
		return ""
	})
}

// deleteSet deletes the set and waits until its stacks are gone from the API (and so,
// through their finalizers, from the Swarm).
func deleteSet(t *testing.T, s *swarmv1.SwarmStackSet) {
	ctx := context.Background()
	if err := bed.Client.Delete(ctx, s); crclient.IgnoreNotFound(err) != nil {
		t.Error(err)
		return
	}
	eventually(t, 3*time.Minute, "the set's stacks deleted", func() string {
		var list swarmv1.SwarmStackList
		if err := bed.Client.List(ctx, &list, crclient.InNamespace(s.Namespace)); err != nil {
			return err.Error()
		}
		if len(list.Items) > 0 {
			return fmt.Sprintf("%d stacks left", len(list.Items))
		}
		return ""
	})
}
