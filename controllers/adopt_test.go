package controllers_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	swarmtypes "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
)

// adoptCompose is deployed first by the docker CLI, then adopted by a SwarmStack with
// the same file. The CLI's spellings are all here: a bare image name, ports and mounts
// in an order of its own, a trailing slash, config targets without a leading slash.
const adoptCompose = `
services:
  api:
    image: numbers-api:v1
    environment: {ZED: last, ALPHA: first, LEVEL: debug}
    ports:
      - {target: 8081, published: 19418, mode: host}
      - {target: 8080, published: 19417, mode: host}
    volumes:
      - /etc/ssl/:/etc/certs/:ro
      - data:/data
    configs:
      - config1
      - {source: config2, target: etc/config2.conf}
    healthcheck:
      test: ["CMD", "/app", "health"]
      interval: 2s
      timeout: 3s
      retries: 2
    deploy: {replicas: 2}
    networks: [back]
  web:
    image: numbers-web:v1
    environment: [B=2, A=1]
    healthcheck: {interval: 1s, start_period: 1s}
    configs: [config1]
    deploy: {replicas: 1}
    networks: [back]
  db:
    image: numbers-api:v1
    secrets: [pw]
    deploy:
      replicas: 1
      update_config: {monitor: 1s}
    networks: [back]
networks:
  back: {}
volumes:
  data: {}
configs:
  config1: {file: ./app.conf}
  config2: {file: ./other.conf}
secrets:
  pw: {file: ./pw.txt}
`

// dockerCLI is a docker CLI that knows compose file format 3.13 (version 27 or later).
func dockerCLI(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("SWARM_DIFF_DOCKER"), "/usr/local/bin/docker", "docker"} {
		if c == "" {
			continue
		}
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		out, _ := exec.Command(p, "version", "--format", "{{.Client.Version}}").Output()
		var major int
		if _, err := fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), "%d.", &major); err == nil && major >= 27 {
			return p
		}
	}
	msg := "no docker CLI of version 27 or later (set SWARM_DIFF_DOCKER)"
	if sandbox.InCI() {
		t.Fatal(msg + " (CI=true: a missing prerequisite is an error)")
	}
	t.Skip(msg)
	return ""
}

// managerEndpoint is the TCP endpoint of a manager that answers as one.
func managerEndpoint(t *testing.T) string {
	t.Helper()
	for _, n := range bed.Swarm.Managers() {
		cli, err := bed.Swarm.Client(n)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		info, err := cli.Info(ctx)
		cancel()
		_ = cli.Close()
		if err == nil && info.Swarm.ControlAvailable {
			return n.Endpoint
		}
	}
	t.Fatal("no sandbox manager answers")
	return ""
}

// runningTasks lists the IDs of a service's running tasks, sorted.
func runningTasks(t *testing.T, cli *client.Client, service string) []string {
	t.Helper()
	tasks, err := cli.TaskList(context.Background(), swarmtypes.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range tasks {
		if tk.Status.State == swarmtypes.TaskStateRunning && tk.DesiredState == swarmtypes.TaskStateRunning {
			ids = append(ids, tk.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestAdoptCLIStackRestartsNoTask deploys a stack with `docker stack deploy`, adopts it
// with a SwarmStack of the same file, and checks with Swarm's own task IDs that no task
// of a service without secrets was replaced, that the service with a secret rolled once
// as the Adopted event says, and that history records the CLI's stack as Adopted.
func TestAdoptCLIStackRestartsNoTask(t *testing.T) {
	ns, cluster := newNamespace(t, "adopt")
	docker := dockerCLI(t)
	ctx := context.Background()
	cli := dockerClient(t)
	stackName := ns
	files := map[string]string{"docker-compose.yml": adoptCompose, "app.conf": "level=debug\n", "other.conf": "other\n", "pw.txt": "adopt-secret-value"}
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, docker, "stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", "docker-compose.yml", stackName)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DOCKER_CONFIG=" + dir,
		"DOCKER_HOST=" + managerEndpoint(t), "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + bed.Swarm.CertDir}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	t.Cleanup(func() { removeStackObjects(t, cli, stackName) })
	api, web, db := stackName+"_api", stackName+"_web", stackName+"_db"
	want := map[string]int{api: 2, web: 1, db: 1}
	before := map[string][]string{}
	eventually(t, 2*time.Minute, "the CLI's tasks running", func() string {
		for svc, n := range want {
			if before[svc] = runningTasks(t, cli, svc); len(before[svc]) != n {
				return fmt.Sprintf("%s: %d running tasks, want %d", svc, len(before[svc]), n)
			}
		}
		return ""
	})

	objs := []crclient.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopt-files"}, Data: map[string]string{"docker-compose.yml": adoptCompose, "app.conf": files["app.conf"], "other.conf": files["other.conf"]}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopt-pw"}, Data: map[string][]byte{"pw": []byte(files["pw.txt"])}},
	}
	for _, o := range objs {
		if err := bed.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				StackName: stackName,
				Version:   "cli",
				Adopt:     true,
				Compose:   swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "docker-compose.yml", ConfigMapRef: &swarmv1.KeySelector{Name: "adopt-files", Key: "docker-compose.yml"}}}},
				Configs: []swarmv1.StackConfig{
					{Name: "config1", ConfigMapRef: swarmv1.KeySelector{Name: "adopt-files", Key: "app.conf"}},
					{Name: "config2", ConfigMapRef: swarmv1.KeySelector{Name: "adopt-files", Key: "other.conf"}},
				},
				Secrets: []swarmv1.StackSecret{{Name: "pw", SecretRef: swarmv1.KeySelector{Name: "adopt-pw", Key: "pw"}}},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })
	waitOutcome(t, stack, "cli", swarmv1.OutcomeCompleted, 2*time.Minute)
	if r := condition(stack.Status.Conditions, swarmv1.ConditionReady); r == nil || r.Status != metav1.ConditionTrue {
		t.Fatalf("not Ready: %s", describeConditions(stack.Status.Conditions))
	}
	if h := stack.Status.History; len(h) != 2 || h[1].Outcome != swarmv1.OutcomeAdopted || !strings.HasPrefix(h[1].Revision, "sha256:") {
		t.Fatalf("history %+v", h)
	}

	for _, svc := range []string{api, web} {
		if got := runningTasks(t, cli, svc); !slices.Equal(got, before[svc]) {
			t.Errorf("%s: tasks %v before adoption, %v after: adoption replaced tasks", svc, before[svc], got)
		}
		s, _, err := cli.ServiceInspectWithRaw(ctx, svc, swarmtypes.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Spec.Labels[swarmv1.LabelOwner] != ns+".adopted" {
			t.Errorf("%s not adopted: labels %v", svc, s.Spec.Labels)
		}
		if s.PreviousSpec == nil {
			t.Errorf("%s was not rewritten", svc)
		}
	}
	if got := runningTasks(t, cli, db); slices.Equal(got, before[db]) {
		t.Errorf("%s uses a secret and should have rolled once onto the operator's: tasks %v", db, got)
	}
	// The next pass finds nothing to write: the spec-hash label is the rendered hash.
	versions := map[string]uint64{}
	for svc := range want {
		s, _, err := cli.ServiceInspectWithRaw(ctx, svc, swarmtypes.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		versions[svc] = s.Version.Index
	}
	at := time.Now().Format(time.RFC3339Nano)
	annotate(t, stack, swarmv1.AnnotationReconcileRequestedAt, at)
	eventually(t, time.Minute, "the requested reconcile handled", func() string {
		get(t, stack)
		if stack.Status.LastHandledReconcileAt != at {
			return "lastHandledReconcileAt " + stack.Status.LastHandledReconcileAt
		}
		return ""
	})
	for svc, v := range versions {
		s, _, err := cli.ServiceInspectWithRaw(ctx, svc, swarmtypes.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Version.Index != v {
			t.Errorf("%s written again by a pass with nothing to do (version %d, then %d)", svc, v, s.Version.Index)
		}
	}

	var events corev1.EventList
	if err := bed.Client.List(ctx, &events, crclient.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	adopted := ""
	for _, ev := range events.Items {
		if ev.Reason == swarmv1.EventAdopted {
			adopted = ev.Message
		}
	}
	_, rolling, _ := strings.Cut(adopted, "; ")
	if !strings.HasPrefix(rolling, db+" will roll once") || strings.Contains(rolling, api) || strings.Contains(rolling, web) || strings.Contains(adopted, files["pw.txt"]) {
		t.Errorf("Adopted event: %q", adopted)
	}
}

// removeStackObjects removes what the CLI created and the operator does not own (its
// networks, secrets and configs), once the services are gone.
func removeStackObjects(t *testing.T, cli *client.Client, stack string) {
	ctx := context.Background()
	label := filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+stack))
	if svcs, err := cli.ServiceList(ctx, swarmtypes.ServiceListOptions{Filters: label}); err == nil {
		for _, s := range svcs {
			_ = cli.ServiceRemove(ctx, s.ID)
		}
	}
	eventually(t, time.Minute, "stack "+stack+" removed from the swarm", func() string {
		var left []string
		if nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: label}); err == nil {
			for _, n := range nets {
				if cli.NetworkRemove(ctx, n.ID) != nil {
					left = append(left, n.Name)
				}
			}
		}
		if secrets, err := cli.SecretList(ctx, swarmtypes.SecretListOptions{Filters: label}); err == nil {
			for _, s := range secrets {
				if cli.SecretRemove(ctx, s.ID) != nil {
					left = append(left, s.Spec.Name)
				}
			}
		}
		if configs, err := cli.ConfigList(ctx, swarmtypes.ConfigListOptions{Filters: label}); err == nil {
			for _, c := range configs {
				if cli.ConfigRemove(ctx, c.ID) != nil {
					left = append(left, c.Spec.Name)
				}
			}
		}
		if len(left) > 0 {
			return "still there: " + strings.Join(left, ", ")
		}
		return ""
	})
}
