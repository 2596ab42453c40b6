package controllers_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/security"
)

// TestNamespaceSecurityLabelHoldsTheStackUntilLifted: on a real API server and Swarm, a
// namespace labelled enforce=baseline stops a stack that adds SYS_ADMIN before anything
// reaches the Swarm; lifting the label alone (no edit of the stack) wakes it through the
// namespace watch, and it deploys.
func TestNamespaceSecurityLabelHoldsTheStackUntilLifted(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "security")
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	update(t, namespace, func(n *corev1.Namespace) {
		n.Labels = map[string]string{security.LabelEnforce: "baseline"}
	})
	text := "services:\n  api:\n    image: numbers-api:v1\n    cap_add: [SYS_ADMIN]\n    deploy: {update_config: {monitor: 1s}}\n"
	s := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "privileged-api"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "compose.yml", Inline: &text}}},
			},
		},
	}
	if err := bed.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, s) })
	want := `Security level baseline forbids: compose.yml:4: service "api": cap_add: capability "SYS_ADMIN" is not in the baseline list`
	eventually(t, time.Minute, "Ready=False PolicyViolation", func() string {
		get(t, s)
		if c := condition(s.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Reason != swarmv1.ReasonPolicyViolation || len(c.Message) < len(want) || c.Message[:len(want)] != want {
			return describeConditions(s.Status.Conditions)
		}
		return ""
	})
	if _, _, err := dockerClient(t).ServiceInspectWithRaw(ctx, "privileged-api_api", swarmServiceInspectOptions); err == nil {
		t.Fatal("the refused stack's service exists on the Swarm")
	}

	update(t, namespace, func(n *corev1.Namespace) { delete(n.Labels, security.LabelEnforce) })
	eventually(t, 2*time.Minute, "Ready=True once the label is lifted", func() string {
		get(t, s)
		if c := condition(s.Status.Conditions, swarmv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return describeConditions(s.Status.Conditions)
		}
		return ""
	})
}
