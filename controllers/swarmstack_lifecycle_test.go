package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
)

func inlineStack(ns, name, stackName string, composeYAML string) *swarmv1.SwarmStack {
	return &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: "sandbox"},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				StackName: stackName,
				Compose:   swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "docker-compose.yml", Inline: &composeYAML}}},
			},
		},
	}
}

func setCompose(t *testing.T, s *swarmv1.SwarmStack, composeYAML string, mutate ...func(*swarmv1.SwarmStack)) {
	t.Helper()
	update(t, s, func(s *swarmv1.SwarmStack) {
		s.Spec.Compose.Files[0].Inline = &composeYAML
		for _, m := range mutate {
			m(s)
		}
	})
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := bed.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// waitReady waits for Ready=True at the stack's current generation.
func waitReady(t *testing.T, s *swarmv1.SwarmStack, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, s.Name+" Ready", func() string {
		get(t, s)
		c := condition(s.Status.Conditions, swarmv1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || s.Status.ObservedGeneration != s.Generation {
			return "not Ready: " + describeConditions(s.Status.Conditions)
		}
		return ""
	})
}

func waitReason(t *testing.T, s *swarmv1.SwarmStack, reason string, timeout time.Duration) metav1.Condition {
	t.Helper()
	var out metav1.Condition
	eventually(t, timeout, s.Name+" Ready reason "+reason, func() string {
		get(t, s)
		c := condition(s.Status.Conditions, swarmv1.ConditionReady)
		if c == nil || c.Reason != reason {
			return "conditions: " + describeConditions(s.Status.Conditions)
		}
		out = *c
		return ""
	})
	return out
}

func inspectService(t *testing.T, name string) (swarmtypes.Service, bool) {
	t.Helper()
	svc, _, err := dockerClient(t).ServiceInspectWithRaw(context.Background(), name, swarmtypes.ServiceInspectOptions{})
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return svc, false
		}
		t.Fatal(err)
	}
	return svc, true
}

func replicas(svc swarmtypes.Service) uint64 {
	if svc.Spec.Mode.Replicated == nil || svc.Spec.Mode.Replicated.Replicas == nil {
		return 0
	}
	return *svc.Spec.Mode.Replicated.Replicas
}

func removeServices(t *testing.T, names ...string) {
	for _, n := range names {
		_ = dockerClient(t).ServiceRemove(context.Background(), n)
	}
}

const twoServices = `services:
  a:
    image: numbers-api:v1
    deploy: {replicas: 1, update_config: {monitor: 1s}}
  b:
    image: numbers-api:v1
    deploy: {replicas: 1}
`

func TestStackCorrectsDriftSuspendsAndPrunes(t *testing.T) {
	ns, _ := newNamespace(t, "drift")
	s := inlineStack(ns, "drift", "drift", twoServices)
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	waitReady(t, s, time.Minute)

	// Someone changes a service by hand: the operator restores it and says so.
	svc, ok := inspectService(t, "drift_a")
	if !ok {
		get(t, s)
		t.Fatalf("drift_a missing while the stack says %s; services %+v", describeConditions(s.Status.Conditions), s.Status.Services)
	}
	spec := svc.Spec
	spec.TaskTemplate.ContainerSpec.Env = append(spec.TaskTemplate.ContainerSpec.Env, "HAND_MADE=1")
	if _, err := dockerClient(t).ServiceUpdate(context.Background(), svc.ID, svc.Version, spec, swarmtypes.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "drift corrected", func() string {
		svc, _ := inspectService(t, "drift_a")
		if env := strings.Join(svc.Spec.TaskTemplate.ContainerSpec.Env, " "); strings.Contains(env, "HAND_MADE") {
			return "env still " + env
		}
		return ""
	})
	eventually(t, 10*time.Second, "DriftCorrected event", func() string {
		var evs corev1.EventList
		if err := bed.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == "DriftCorrected" && strings.Contains(e.Message, "drift_a") {
				return ""
			}
		}
		return fmt.Sprintf("%d events, none DriftCorrected", len(evs.Items))
	})

	// Suspended: a spec change does not reach the swarm until resumed.
	scaled := strings.Replace(twoServices, "deploy: {replicas: 1}\n", "deploy: {replicas: 2}\n", 1)
	setCompose(t, s, scaled, func(s *swarmv1.SwarmStack) { s.Spec.Suspend = true })
	time.Sleep(3 * time.Second)
	if b, _ := inspectService(t, "drift_b"); replicas(b) != 1 {
		t.Fatalf("suspended stack changed: drift_b has %d replicas", replicas(b))
	}
	setCompose(t, s, scaled, func(s *swarmv1.SwarmStack) { s.Spec.Suspend = false })
	eventually(t, 30*time.Second, "resumed stack scales b", func() string {
		if b, _ := inspectService(t, "drift_b"); replicas(b) != 2 {
			return fmt.Sprintf("drift_b has %d replicas", replicas(b))
		}
		return ""
	})

	// Prune: b leaves the compose file and the swarm, a stays.
	onlyA := "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: 1, update_config: {monitor: 1s}}\n"
	setCompose(t, s, onlyA)
	eventually(t, 30*time.Second, "b pruned", func() string {
		if _, ok := inspectService(t, "drift_b"); ok {
			return "drift_b still exists"
		}
		if _, ok := inspectService(t, "drift_a"); !ok {
			return "drift_a was removed too"
		}
		return ""
	})
	waitReady(t, s, 30*time.Second)
}

func TestStackLeavesOthersServicesAlone(t *testing.T) {
	ctx := context.Background()
	ns, _ := newNamespace(t, "adopt")
	// A stack deployed by hand (docker stack deploy labels it so).
	manual := func(name string) swarmtypes.ServiceSpec {
		return swarmtypes.ServiceSpec{
			Annotations:  swarmtypes.Annotations{Name: name, Labels: map[string]string{swarmv1.LabelStackNamespace: "legacy"}},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "numbers-api:v1"}},
			Mode:         swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: ptr.To[uint64](0)}},
		}
	}
	for _, name := range []string{"legacy_a", "legacy_extra"} {
		if _, err := dockerClient(t).ServiceCreate(ctx, manual(name), swarmtypes.ServiceCreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeServices(t, "legacy_a", "legacy_extra") })
	before, _ := inspectService(t, "legacy_a")

	s := inlineStack(ns, "legacy", "legacy", "services:\n  a:\n    image: numbers-api:v2\n    deploy: {replicas: 1}\n")
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	c := waitReason(t, s, swarmv1.ReasonNotOwned, 30*time.Second)
	if stalled := condition(s.Status.Conditions, swarmv1.ConditionStalled); stalled == nil || !strings.Contains(c.Message, "adopt") {
		t.Errorf("refused adoption must be Stalled and say how to adopt: %s", describeConditions(s.Status.Conditions))
	}
	if after, _ := inspectService(t, "legacy_a"); after.Version.Index != before.Version.Index {
		t.Fatal("a stack the operator does not own was changed")
	}

	// A second SwarmStack for the same stack on the same cluster is refused.
	rival := inlineStack(ns, "rival", "legacy", "services:\n  a:\n    image: numbers-api:v3\n")
	create(t, rival)
	t.Cleanup(func() { deleteStack(t, rival) })
	waitReason(t, rival, swarmv1.ReasonConflict, 30*time.Second)

	// Adopted: the operator takes over what the compose file lists, and prunes nothing
	// it did not create.
	update(t, s, func(s *swarmv1.SwarmStack) { s.Spec.Adopt = true })
	waitReady(t, s, time.Minute)
	a, _ := inspectService(t, "legacy_a")
	if a.Spec.Labels[swarmv1.LabelOwner] != ns+".legacy" || a.Spec.TaskTemplate.ContainerSpec.Image != "numbers-api:v2" {
		t.Errorf("adopted service not taken over: labels %v image %s", a.Spec.Labels, a.Spec.TaskTemplate.ContainerSpec.Image)
	}
	if _, ok := inspectService(t, "legacy_extra"); !ok {
		t.Error("prune removed a service the operator never owned")
	}
	// Deleting the rival must not touch the stack it never owned.
	deleteStack(t, rival)
	if _, ok := inspectService(t, "legacy_a"); !ok {
		t.Error("deleting the refused rival removed the stack")
	}
}

func TestStackDeletionPolicies(t *testing.T) {
	ns, _ := newNamespace(t, "deletion")
	withNet := "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: 1}\n    networks: [back]\nnetworks:\n  back: {}\n"
	del := inlineStack(ns, "del", "del", withNet)
	orphan := inlineStack(ns, "orphan", "orphan", withNet)
	orphan.Spec.DeletionPolicy = "Orphan"
	create(t, del, orphan)
	t.Cleanup(func() { removeServices(t, "orphan_a") })
	waitReady(t, del, time.Minute)
	waitReady(t, orphan, time.Minute)

	deleteStack(t, del)
	if _, ok := inspectService(t, "del_a"); ok {
		t.Error("Delete policy left the service")
	}
	// Managers other than the leader see the removal a moment later.
	eventually(t, 15*time.Second, "Delete policy removes the network", func() string {
		nets, err := dockerClient(t).NetworkList(context.Background(), networkListOptions("del_back"))
		if err != nil {
			return err.Error()
		}
		if len(nets) != 0 {
			return "network " + nets[0].Name + " still exists"
		}
		return ""
	})
	deleteStack(t, orphan)
	if _, ok := inspectService(t, "orphan_a"); !ok {
		t.Error("Orphan policy removed the service")
	}
}

func TestStackRotatesSecretsAndKeepsThemOutOfStatus(t *testing.T) {
	ctx := context.Background()
	ns, _ := newNamespace(t, "secrets")
	const planted = "s3cr3t-planted-value-7f9c"
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Data: map[string][]byte{"password": []byte(planted)}}
	create(t, sec)
	yml := "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: 1, update_config: {monitor: 1s}}\n    secrets: [db_password]\nsecrets:\n  db_password: {file: ./db_password.txt}\n"
	s := inlineStack(ns, "sec", "sec", yml)
	s.Spec.Secrets = []swarmv1.StackSecret{{Name: "db_password", SecretRef: swarmv1.KeySelector{Name: "db", Key: "password"}}}
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	waitReady(t, s, time.Minute)
	first := secretNamesOf(t, "sec_a")
	if len(first) != 1 || !strings.HasPrefix(first[0], "sec_db_password-") {
		t.Fatalf("service secrets %v", first)
	}

	// Each rotation rolls the service onto a new secret version. The version a rollback
	// would need (the previous spec's) is kept; older ones are removed.
	rotate := func(suffix string) string {
		t.Helper()
		before := secretNamesOf(t, "sec_a")[0]
		update(t, sec, func(sec *corev1.Secret) { sec.Data["password"] = []byte(planted + suffix) })
		var now string
		eventually(t, time.Minute, "service moved to a new secret version", func() string {
			names := secretNamesOf(t, "sec_a")
			if len(names) != 1 || names[0] == before {
				return fmt.Sprintf("service secrets %v", names)
			}
			now = names[0]
			return ""
		})
		waitReady(t, s, time.Minute)
		return now
	}
	secretExists := func(name string) bool {
		list, err := dockerClient(t).SecretList(ctx, swarmtypes.SecretListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		if err != nil {
			t.Fatal(err)
		}
		return len(list) > 0
	}
	second := rotate("-2")
	if !secretExists(first[0]) {
		t.Error("the version the previous spec uses was removed: a rollback could not find it")
	}
	rotate("-3")
	eventually(t, 30*time.Second, "the oldest secret version removed", func() string {
		if secretExists(first[0]) {
			return first[0] + " still exists"
		}
		if !secretExists(second) {
			return "the rollback version " + second + " was removed too"
		}
		return ""
	})
	assertNoSecretLeak(t, ns, s, planted)
}

// assertNoSecretLeak checks that a planted value shows in no status or event.
func assertNoSecretLeak(t *testing.T, ns string, s *swarmv1.SwarmStack, planted string) {
	t.Helper()
	get(t, s)
	if strings.Contains(fmt.Sprintf("%+v", s.Status), planted) {
		t.Error("the secret value appears in the stack's status")
	}
	var evs corev1.EventList
	if err := bed.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if strings.Contains(e.Message, planted) {
			t.Errorf("the secret value appears in event %s: %s", e.Reason, e.Message)
		}
	}
}

func secretNamesOf(t *testing.T, service string) []string {
	svc, ok := inspectService(t, service)
	if !ok {
		t.Fatalf("service %s missing", service)
	}
	var names []string
	for _, ref := range svc.Spec.TaskTemplate.ContainerSpec.Secrets {
		names = append(names, ref.SecretName)
	}
	return names
}

func TestStackRollbackRetryAndDeadline(t *testing.T) {
	ns, _ := newNamespace(t, "annotations")
	v := func(tag string, monitor string) string {
		return fmt.Sprintf("services:\n  a:\n    image: numbers-api:%s\n    deploy:\n      replicas: 2\n      update_config: {monitor: %s, parallelism: 1}\n      rollback_config: {monitor: 1s, parallelism: 2}\n", tag, monitor)
	}
	s := inlineStack(ns, "ann", "ann", v("v1", "1s"))
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	waitReady(t, s, time.Minute)
	setCompose(t, s, v("v2", "1s"))
	waitReady(t, s, time.Minute)

	// Roll the whole stack back: Swarm puts v1 back, the stack says RolledBack, and the
	// operator does not write v2 again by itself.
	annotate(t, s, swarmv1.AnnotationRollback, "1")
	waitReason(t, s, swarmv1.ReasonRolledBack, time.Minute)
	eventually(t, 30*time.Second, "v1 back on the swarm", func() string {
		if img := swarmImage(t, "ann_a"); !strings.HasPrefix(img, "numbers-api:v1") {
			return img
		}
		return ""
	})
	requestReconcile(t, s)
	time.Sleep(2 * time.Second)
	if img := swarmImage(t, "ann_a"); !strings.HasPrefix(img, "numbers-api:v1") {
		t.Fatalf("the rolled back revision was written again: %s", img)
	}

	// Retry: the same revision is applied again.
	annotate(t, s, swarmv1.AnnotationRetry, "1")
	waitReady(t, s, time.Minute)
	if img := swarmImage(t, "ann_a"); !strings.HasPrefix(img, "numbers-api:v2") {
		t.Fatalf("retry did not apply v2: %s", img)
	}

	// A rollout slower than its deadline is rolled back through Swarm.
	setCompose(t, s, v("v3", "30s"), func(s *swarmv1.SwarmStack) { s.Spec.ProgressDeadlineSeconds = ptr.To[int32](3) })
	c := waitReason(t, s, swarmv1.ReasonDeadlineExceeded, time.Minute)
	if !strings.Contains(c.Message, "rolling back ann_a") && !strings.Contains(s.Status.History[0].Message, "rolling back ann_a") {
		t.Errorf("deadline message %q / %q", c.Message, s.Status.History[0].Message)
	}
	eventually(t, time.Minute, "v2 back after the deadline rollback", func() string {
		if img := swarmImage(t, "ann_a"); !strings.HasPrefix(img, "numbers-api:v2") {
			return img
		}
		return ""
	})
}

func TestStackReportsInvalidComposeWithoutTouchingTheSwarm(t *testing.T) {
	ns, _ := newNamespace(t, "invalid")
	s := inlineStack(ns, "bad", "bad", "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: one}\n")
	create(t, s)
	t.Cleanup(func() { deleteStack(t, s) })
	c := waitReason(t, s, swarmv1.ReasonComposeInvalid, 30*time.Second)
	if !strings.Contains(c.Message, "docker-compose.yml") || !strings.Contains(c.Message, "replicas") {
		t.Errorf("message must name the file and the key: %q", c.Message)
	}
	if _, ok := inspectService(t, "bad_a"); ok {
		t.Error("an invalid stack reached the swarm")
	}
	// A missing ConfigMap is waited for, and the stack deploys once it appears.
	s2 := inlineStack(ns, "later", "later", "")
	s2.Spec.Compose.Files = []swarmv1.ComposeFile{{Name: "docker-compose.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "later", Key: "compose"}}}
	create(t, s2)
	t.Cleanup(func() { deleteStack(t, s2) })
	waitReason(t, s2, swarmv1.ReasonSourceNotFound, 30*time.Second)
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"},
		Data: map[string]string{"compose": "services:\n  a:\n    image: numbers-api:v1\n    deploy: {replicas: 1}\n"}})
	waitReady(t, s2, time.Minute)
}
