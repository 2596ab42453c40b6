package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

// TestStackRollbackPolicyStackLeavesThePreviousReleaseRunning: a two-service release in
// which one service fails its health check ends with both services on the previous
// release, and history names them.
func TestStackRollbackPolicyStackLeavesThePreviousReleaseRunning(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "atomic")
	cm := numbersConfigMap(t, ns)
	base := []string{"docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml"}
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version:        "v3",
				RollbackPolicy: swarmv1.RollbackPolicyStack,
				Compose:        swarmv1.ComposeSource{Files: composeFiles(cm.Name, append(base, "v3.yml")...)},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	const api, web = "numbers_numbers-api", "numbers_numbers-web"
	waitOutcome(t, stack, "v3", swarmv1.OutcomeCompleted, 3*time.Minute)

	// v5-bad: new api tasks fail their health check; web's update would succeed.
	setRelease(t, stack, "v5", composeFiles(cm.Name, append(base, "v5-bad.yml")...))
	waitOutcome(t, stack, "v5", swarmv1.OutcomeRolledBack, 4*time.Minute)
	h := stack.Status.History[0]
	if strings.Join(h.RolledBackServices, ",") != api+","+web {
		t.Errorf("history names %v as rolled back, want both services: %s", h.RolledBackServices, h.Message)
	}
	eventually(t, 3*time.Minute, "both services back on v3", func() string {
		a, w := swarmImage(t, api), swarmImage(t, web)
		if a != "numbers-api:v3" || w != "numbers-web:v3" {
			return "api " + a + ", web " + w
		}
		return ""
	})
	if c := readyCondition(t, stack); c.Status != metav1.ConditionFalse || c.Reason != swarmv1.ReasonRolledBack {
		t.Errorf("Ready %+v", c)
	}
}
