package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// TestStackSetReleasesCanaryFirstAndHaltsABadRelease runs a SwarmStackSet against the
// real control plane and the sandbox Swarm, reached through three SwarmClusters (one
// canary, two prod) and a fourth (lab) that no step selects. The generated stacks keep
// their default stack names (<set>-<cluster>), so the three releases live side by side
// on the one Swarm without touching each other. A good release walks canary, soak,
// approval and prod; a bad one (v5-bad: the api fails its health check) halts at the
// canary, the prod stacks never see it, and RollbackAll writes v3 back to the canary.
func TestStackSetReleasesCanaryFirstAndHaltsABadRelease(t *testing.T) {
	ctx := context.Background()
	ns, canary := newNamespace(t, "fleet")
	cm := numbersConfigMap(t, ns)
	label(t, canary, "canary")
	for _, name := range []string{"prod-1", "prod-2", "lab"} {
		c, err := bed.CreateCluster(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		env := "prod"
		if name == "lab" {
			env = "lab"
		}
		label(t, c, env)
	}
	base := []string{"docker-compose.yml", "prod-healthcheck.yml", "prod-update-config.yml", "prod-rollback-config.yml"}
	one := intstr.FromInt32(1)
	set := &swarmv1.SwarmStackSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSetSpec{
			ClusterSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "numbers"}},
			Template: swarmv1.SwarmStackTemplate{Spec: swarmv1.SwarmStackTemplateSpec{
				Version: "v3", RollbackPolicy: swarmv1.RollbackPolicyStack,
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
	if got := swarmImage(t, "numbers-sandbox_numbers-api"); got != "numbers-api:v3" {
		t.Fatalf("canary api runs %s", got)
	}
	for _, name := range []string{"numbers-prod-1", "numbers-prod-2", "numbers-lab"} {
		if err := bed.Client.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, &swarmv1.SwarmStack{}); err == nil {
			t.Fatalf("%s exists before prod was approved", name)
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
	for _, stack := range []string{"numbers-sandbox", "numbers-prod-1", "numbers-prod-2"} {
		if got := swarmImage(t, stack+"_numbers-api"); got != "numbers-api:v3" {
			t.Fatalf("%s api runs %s", stack, got)
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
	// RollbackAll: the canary's stack gets the v3 template back, and the Swarm runs v3.
	// (The SwarmStack itself goes on reporting its rolled back v5 as long as the revision
	// its spec renders is the one already running: that is the stack's summary, not the
	// set's, so it is not asserted here.)
	canaryStack := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-sandbox"}}
	eventually(t, 4*time.Minute, "the canary back on v3", func() string {
		get(t, canaryStack)
		if canaryStack.Spec.Version != "v3" || canaryStack.Status.ObservedGeneration != canaryStack.Generation {
			return canaryStack.Spec.Version + "; " + describeConditions(canaryStack.Status.Conditions)
		}
		if got := swarmImage(t, "numbers-sandbox_numbers-api"); got != "numbers-api:v3" {
			return "canary api runs " + got
		}
		return ""
	})
	if !slices.ContainsFunc(canaryStack.Status.History, func(h swarmv1.HistoryEntry) bool {
		return h.Version == "v5" && h.Outcome == swarmv1.OutcomeRolledBack
	}) {
		t.Errorf("the canary's history has no rolled back v5: %+v", canaryStack.Status.History)
	}
	for _, name := range []string{"numbers-prod-1", "numbers-prod-2"} {
		s := &swarmv1.SwarmStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		get(t, s)
		if s.Spec.Version != "v3" || slices.ContainsFunc(s.Status.History, func(h swarmv1.HistoryEntry) bool { return h.Version == "v5" }) {
			t.Errorf("%s saw v5: spec %s, history %+v", name, s.Spec.Version, s.Status.History)
		}
		if got := swarmImage(t, name+"_numbers-api"); got != "numbers-api:v3" {
			t.Errorf("%s api runs %s", name, got)
		}
	}
	get(t, set)
	if set.Status.History[0].Outcome != "RolledBack" || set.Status.History[1].Outcome != swarmv1.OutcomeCompleted {
		t.Errorf("set history %+v", set.Status.History)
	}
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
