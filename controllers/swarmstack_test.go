package controllers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/metrics"
	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// numbersConfigMap holds the numbers compose files of config/samples.
func numbersConfigMap(t *testing.T, ns string) *corev1.ConfigMap {
	t.Helper()
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config", "samples", "numbers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-compose"}, BinaryData: map[string][]byte{}}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		cm.BinaryData[e.Name()] = data
	}
	if err := bed.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	return cm
}

func composeFiles(cm string, names ...string) []swarmv1.ComposeFile {
	var files []swarmv1.ComposeFile
	for _, n := range names {
		files = append(files, swarmv1.ComposeFile{Name: n, ConfigMapRef: &swarmv1.KeySelector{Name: cm, Key: n}})
	}
	speed := testbed.FastRolloutOverride
	return append(files, swarmv1.ComposeFile{Name: "test-speed.yml", Inline: &speed})
}

// setRelease points the stack at new files and a new version, as `kubectl apply` would.
func setRelease(t *testing.T, s *swarmv1.SwarmStack, version string, files []swarmv1.ComposeFile) {
	t.Helper()
	update(t, s, func(s *swarmv1.SwarmStack) {
		s.Spec.Version = version
		s.Spec.Compose.Files = files
	})
}

// waitOutcome waits for the newest rollout of the version to end and returns the stack.
func waitOutcome(t *testing.T, s *swarmv1.SwarmStack, version, outcome string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("rollout of %s ends %s", version, outcome), func() string {
		get(t, s)
		if len(s.Status.History) == 0 {
			return "no history; " + describeConditions(s.Status.Conditions)
		}
		h := s.Status.History[0]
		if h.Version != version || h.Outcome != outcome || s.Status.ObservedGeneration != s.Generation {
			return fmt.Sprintf("history[0] %s %s %q; %s", h.Version, h.Outcome, h.Message, describeConditions(s.Status.Conditions))
		}
		return ""
	})
}

func serviceStatus(t *testing.T, s *swarmv1.SwarmStack, name string) swarmv1.ServiceStatus {
	t.Helper()
	for _, svc := range s.Status.Services {
		if svc.Name == name {
			return svc
		}
	}
	t.Fatalf("no status for service %s in %+v", name, s.Status.Services)
	return swarmv1.ServiceStatus{}
}

func readyCondition(t *testing.T, s *swarmv1.SwarmStack) metav1.Condition {
	t.Helper()
	c := condition(s.Status.Conditions, swarmv1.ConditionReady)
	if c == nil {
		t.Fatalf("no Ready condition: %s", describeConditions(s.Status.Conditions))
	}
	return *c
}

// swarmImage is the image the swarm itself holds for a service.
func swarmImage(t *testing.T, name string) string {
	t.Helper()
	svc, _, err := dockerClient(t).ServiceInspectWithRaw(context.Background(), name, swarmServiceInspectOptions)
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.TaskTemplate.ContainerSpec.Image
}

// TestStackReleaseRoutine carries steps 1 to 6 of the seed scenario end to end.
func TestStackReleaseRoutine(t *testing.T) {
	ctx := context.Background()
	ns, cluster := newNamespace(t, "release")
	waitSwarmReadyAndActive(t) // step 1 counts web's global tasks: one per node
	cm := numbersConfigMap(t, ns)
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: "v1",
				Compose: swarmv1.ComposeSource{Files: composeFiles(cm.Name, "docker-compose.yml", "prod.yml")},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	const api, web = "numbers_numbers-api", "numbers_numbers-web"

	// 1: api replicated x6, web global with a host-mode port.
	waitOutcome(t, stack, "v1", swarmv1.OutcomeCompleted, 2*time.Minute)
	if got := serviceStatus(t, stack, api); got.Mode != "replicated" || got.DesiredTasks != 6 || got.RunningTasks != 6 || got.Image != "numbers-api:v1" {
		t.Errorf("step 1 api status %+v", got)
	}
	if got := serviceStatus(t, stack, web); got.Mode != "global" || got.DesiredTasks != 5 || got.RunningTasks != 5 {
		t.Errorf("step 1 web status %+v", got)
	}
	if c := readyCondition(t, stack); c.Status != metav1.ConditionTrue {
		t.Errorf("step 1 Ready %+v", c)
	}

	// 2: health checks and v2, the default rolling update.
	setRelease(t, stack, "v2", composeFiles(cm.Name, "docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "v2.yml"))
	waitOutcome(t, stack, "v2", swarmv1.OutcomeCompleted, 4*time.Minute)
	if got := serviceStatus(t, stack, api); got.UpdateState != "completed" || got.Image != "numbers-api:v2" || got.UpdateStartedAt == nil || got.UpdateCompletedAt == nil {
		t.Errorf("step 2 api status %+v", got)
	}

	// 3: update config (parallelism 3, start-first, rollback on failure) and v3.
	setRelease(t, stack, "v3", composeFiles(cm.Name, "docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "v3.yml"))
	waitOutcome(t, stack, "v3", swarmv1.OutcomeCompleted, 4*time.Minute)
	got := serviceStatus(t, stack, api)
	if uc := got.UpdateConfig; uc == nil || uc.Parallelism != 3 || uc.Order != "start-first" || uc.FailureAction != "rollback" {
		t.Errorf("step 3 update config in force %+v", got.UpdateConfig)
	}
	if got.UpdateState != "completed" || got.UpdateMessage == "" {
		t.Errorf("step 3 update status %+v", got)
	}

	// 4: v5-bad with the default rollback config: Swarm rolls back; we say so.
	setRelease(t, stack, "v5", composeFiles(cm.Name, "docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "v5-bad.yml"))
	waitOutcome(t, stack, "v5", swarmv1.OutcomeRolledBack, 4*time.Minute)
	assertRolledBack(t, stack, api)
	// No loop: the same revision is not written again.
	attempted, entries := stack.Status.LastAttemptedRevision, len(stack.Status.History)
	svcBefore, _, err := dockerClient(t).ServiceInspectWithRaw(ctx, api, swarmServiceInspectOptions)
	if err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, stack)
	time.Sleep(3 * time.Second)
	get(t, stack)
	svcAfter, _, err := dockerClient(t).ServiceInspectWithRaw(ctx, api, swarmServiceInspectOptions)
	if err != nil {
		t.Fatal(err)
	}
	if stack.Status.LastAttemptedRevision != attempted || len(stack.Status.History) != entries || !svcAfter.UpdatedAt.Equal(svcBefore.UpdatedAt) {
		t.Errorf("the rolled back revision was applied again: history %d -> %d, service updated %s -> %s",
			entries, len(stack.Status.History), svcBefore.UpdatedAt, svcAfter.UpdatedAt)
	}

	// 5: v5-bad again, with the fast rollback config.
	setRelease(t, stack, "v5", composeFiles(cm.Name, "docker-compose.yml", "prod.yml", "prod-healthcheck.yml", "prod-update-config.yml", "prod-rollback-config.yml", "v5-bad.yml"))
	eventually(t, 4*time.Minute, "second v5 rollout rolled back", func() string {
		get(t, stack)
		if len(stack.Status.History) < entries+1 || stack.Status.History[0].Outcome != swarmv1.OutcomeRolledBack {
			return fmt.Sprintf("history %+v", stack.Status.History)
		}
		return ""
	})
	// The fast rollback config was in force during the rollout only: Swarm's rollback
	// brought back v3's spec, rollback config included.
	assertRolledBack(t, stack, api)

	// 6: one core file, one environment file (UTF-16 with BOM), one version file.
	setRelease(t, stack, "v5", composeFiles(cm.Name, "docker-compose.yml", "prod-full.yml", "v5.yml"))
	eventually(t, 4*time.Minute, "v5 completes", func() string {
		get(t, stack)
		if h := stack.Status.History[0]; h.Outcome != swarmv1.OutcomeCompleted || h.Version != "v5" {
			return fmt.Sprintf("history[0] %+v; %s", h, describeConditions(stack.Status.Conditions))
		}
		return ""
	})
	if img := swarmImage(t, api); !strings.HasPrefix(img, "numbers-api:v5") {
		t.Errorf("swarm runs %s after v5 completed", img)
	}
	var outcomes []string
	for _, h := range stack.Status.History {
		outcomes = append(outcomes, h.Version+" "+h.Outcome)
	}
	want := "v5 Completed, v5 RolledBack, v5 RolledBack, v3 Completed, v2 Completed, v1 Completed"
	if strings.Join(outcomes, ", ") != want {
		t.Errorf("history %q, want %q", strings.Join(outcomes, ", "), want)
	}
	if c := readyCondition(t, stack); c.Status != metav1.ConditionTrue || stack.Status.LastAppliedRevision != stack.Status.History[0].Revision {
		t.Errorf("after v5: Ready %+v, lastApplied %s", c, stack.Status.LastAppliedRevision)
	}
	// The metrics tell the same story.
	for outcome, want := range map[string]float64{swarmv1.OutcomeCompleted: 4, swarmv1.OutcomeRolledBack: 2} {
		if got := testutil.ToFloat64(metrics.RolloutsFinished.WithLabelValues(ns, stack.Name, outcome)); got != want {
			t.Errorf("rollouts finished %s: metric %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(metrics.ServiceUpdateState.WithLabelValues(ns, stack.Name, api, "completed")); got != 1 {
		t.Errorf("service update state metric for %s completed = %v", api, got)
	}
}

func assertRolledBack(t *testing.T, s *swarmv1.SwarmStack, api string) {
	t.Helper()
	ready := readyCondition(t, s)
	if ready.Status != metav1.ConditionFalse || ready.Reason != swarmv1.ReasonRolledBack || !strings.Contains(ready.Message, api) {
		t.Errorf("Ready after a rollback: %+v", ready)
	}
	if h := s.Status.History[0]; !strings.Contains(h.Message, api) || !strings.Contains(h.Message, "roll") || !strings.Contains(h.Message, "fail") {
		t.Errorf("history message %q does not carry Swarm's", h.Message)
	}
	if got := serviceStatus(t, s, api); got.UpdateState != "rollback_completed" {
		t.Errorf("api update state %q", got.UpdateState)
	}
	if img := swarmImage(t, api); !strings.HasPrefix(img, "numbers-api:v3") {
		t.Errorf("swarm runs %s after the rollback, want v3", img)
	}
}

func requestReconcile(t *testing.T, s *swarmv1.SwarmStack) {
	t.Helper()
	annotate(t, s, swarmv1.AnnotationReconcileRequestedAt, time.Now().Format(time.RFC3339Nano))
}

func annotate(t *testing.T, obj client.Object, key, value string) {
	t.Helper()
	update(t, obj, func(obj client.Object) {
		a := obj.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[key] = value
		obj.SetAnnotations(a)
	})
}

// deleteStack removes a stack and waits until its finalizer has run.
func deleteStack(t *testing.T, s *swarmv1.SwarmStack) {
	ctx := context.Background()
	if err := bed.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
		t.Error(err)
		return
	}
	eventually(t, 2*time.Minute, "stack "+s.Name+" deleted", func() string {
		err := bed.Client.Get(ctx, client.ObjectKeyFromObject(s), &swarmv1.SwarmStack{})
		if err == nil {
			return "still there"
		}
		return ""
	})
}
