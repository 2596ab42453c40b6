package controllers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/sandbox"
)

const (
	imageTestTag   = "swarm-operator:image-test"
	imageTestShard = "sharding.fluxcd.io/key"
	// The Lease of the image's shard: cmd's LeaderElectionID with the shard's suffix.
	imageTestLease = "swarm-operator.swarm.swarmops.io-image-test"
)

// TestShippedImage builds the operator image, runs it the way config/'s Deployment runs
// it (its args, non-root, read-only root filesystem, no capabilities, the volumes it
// declares) with a ServiceAccount token bound only by config/'s RBAC, and rolls a stack
// out through it.
func TestShippedImage(t *testing.T) {
	if bed == nil {
		t.Skip(skipReason)
	}
	ctx := context.Background()
	root, err := sandbox.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"docker", "kubectl", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			// Under CI a missing tool is a failure too: hack/install-prereqs.sh provides them.
			t.Fatalf("%s is needed to build and run the image: %v", tool, err)
		}
	}

	// 1. The image, as `make docker-build` ships it.
	runTool(t, root, "make", "docker-build", "IMG="+imageTestTag)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", imageTestTag).Run() })

	// 2. config/ as rendered, and the server accepts all of it.
	objs := renderedObjects(t, runTool(t, root, "kubectl", "kustomize", "config/default"))
	// A server dry run does not create the namespace its namespaced objects need.
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			applyRendered(t, o)
		}
	}
	adminKubeconfig := writeKubeconfig(t, "default")
	runTool(t, root, "kubectl", "--kubeconfig", adminKubeconfig, "apply", "--dry-run=server", "-k", "config/default")
	var deploy *appsv1.Deployment
	var sa *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
			applyRendered(t, o)
			if o.GetKind() == "ServiceAccount" {
				sa = o
			}
		case "Deployment":
			deploy = &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, deploy); err != nil {
				t.Fatal(err)
			}
		}
	}
	if deploy == nil || sa == nil {
		t.Fatalf("config/default renders no Deployment or ServiceAccount")
	}
	pod := deploy.Spec.Template.Spec
	if pod.ServiceAccountName != sa.GetName() || deploy.Namespace != sa.GetNamespace() {
		t.Fatalf("the Deployment runs as %s/%s, config/ renders the ServiceAccount %s/%s", deploy.Namespace, pod.ServiceAccountName, sa.GetNamespace(), sa.GetName())
	}

	// 3. A token of that ServiceAccount, mounted where a Pod has it: the binary finds the
	// API server, its CA and its namespace (for the leader election Lease) in-cluster.
	cs, err := kubernetes.NewForConfig(bed.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(sa.GetNamespace()).CreateToken(ctx, sa.GetName(),
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", sa.GetNamespace(), sa.GetName(), err)
	}
	saDir := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": bed.Config.CAData, "namespace": []byte(deploy.Namespace)} {
		if err := os.WriteFile(filepath.Join(saDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The container's user is not the test's: it must read the directory.
	if err := os.Chmod(saDir, 0o755); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(bed.Config.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}

	// 4. Only the container reconciles this test's objects: the in-process operator
	// watches every namespace, so it pauses until the test ends (cleanups run last-in
	// first-out: it restarts after the container is gone and the stack deleted).
	stopOperator()
	t.Cleanup(startOperator)
	args, probePort := containerArgs(t, pod.Containers[0].Args)
	dockerArgs := dockerRunArgs(t, deploy, saDir, host, port)
	cid := strings.TrimSpace(runTool(t, root, "docker", append(append(dockerArgs, imageTestTag), append(args, "--watch-label-selector="+imageTestShard+"=image-test")...)...))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "logs", "--tail", "80", cid).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		_ = exec.Command("docker", "rm", "-f", cid).Run()
		// A killed leader keeps its Lease until it expires; a rerun would wait for it.
		_ = bed.Client.Delete(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: deploy.Namespace, Name: imageTestLease}})
	})
	// The readiness probe of the Deployment, from outside as the kubelet asks it.
	eventually(t, 30*time.Second, "the container answers /readyz", func() string {
		if !containerRunning(t, cid) {
			logs, _ := exec.Command("docker", "logs", "--tail", "30", cid).CombinedOutput()
			t.Fatalf("the container exited:\n%s", logs)
		}
		resp, err := http.Get("http://127.0.0.1:" + probePort + "/readyz")
		if err != nil {
			return err.Error()
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.Status
		}
		return ""
	})

	// 5. A stack rolls out through the container.
	ns, err := bed.Namespace(ctx, "image")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := bed.CreateCluster(ctx, ns, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	update(t, cluster, func(c *swarmv1.SwarmCluster) { c.Labels = map[string]string{imageTestShard: "image-test"} })
	cm := numbersConfigMap(t, ns)
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "numbers-img", Labels: map[string]string{imageTestShard: "image-test"}},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: "v1",
				Compose: swarmv1.ComposeSource{Files: composeFiles(cm.Name, "docker-compose.yml")},
			},
		},
	}
	if err := bed.Client.Create(ctx, stack); err != nil {
		t.Fatal(err)
	}
	// Deleted while the container still runs, so that it is the one removing the stack.
	t.Cleanup(func() { deleteStack(t, stack) })
	waitOutcome(t, stack, "v1", swarmv1.OutcomeCompleted, time.Minute)
	if c := readyCondition(t, stack); c.Status != metav1.ConditionTrue {
		t.Errorf("Ready %+v", c)
	}
	if !containerRunning(t, cid) {
		t.Fatal("the container stopped")
	}
	// What only the container can have done: the in-process operator keeps its naming key
	// in "default" and elects no leader.
	get(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: deploy.Namespace, Name: "swarm-operator-naming-key"}})
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: deploy.Namespace, Name: imageTestLease}}
	get(t, lease)
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the Lease %s has no holder", imageTestLease)
	}
	logs, err := exec.Command("docker", "logs", cid).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string][]byte{"the token": []byte(tr.Status.Token), "the swarm's client key": bed.Swarm.ClientKeyPEM} {
		if bytes.Contains(logs, bytes.TrimSpace(secret)) {
			t.Errorf("the container logged %s", name)
		}
	}
}

// runTool runs a command in dir and returns its stdout; a non-zero exit fails the test.
func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func renderedObjects(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// applyRendered creates a rendered object and removes it after the test; one that
// exists (the namespace, which envtest never finalizes, on a rerun) is left as is.
func applyRendered(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	err := bed.Client.Create(context.Background(), o)
	if apierrors.IsAlreadyExists(err) {
		return
	}
	if err != nil {
		t.Fatalf("creating the rendered %s %s: %v", o.GetKind(), o.GetName(), err)
	}
	if o.GetKind() != "Namespace" {
		t.Cleanup(func() { _ = bed.Client.Delete(context.Background(), o) })
	}
}

// containerArgs are the Deployment's args with the probe and metrics ports moved to free
// ones on 127.0.0.1: with the host's network the Deployment's fixed ports may be taken.
func containerArgs(t *testing.T, args []string) (out []string, probePort string) {
	t.Helper()
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			probePort = freePort(t)
			a = "--health-probe-bind-address=127.0.0.1:" + probePort
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = "--metrics-bind-address=127.0.0.1:" + freePort(t)
		}
		out = append(out, a)
	}
	if probePort == "" {
		t.Fatalf("the Deployment's args %q set no --health-probe-bind-address", args)
	}
	return out, probePort
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// dockerRunArgs translate the Deployment's pod into `docker run` flags: its security
// context, its emptyDir volumes (tmpfs), its downward-API namespace and the token mount.
func dockerRunArgs(t *testing.T, d *appsv1.Deployment, saDir, host, port string) []string {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	args := []string{"run", "-d", "--network", "host",
		"-v", saDir + ":/var/run/secrets/kubernetes.io/serviceaccount:ro",
		"-e", "KUBERNETES_SERVICE_HOST=" + host, "-e", "KUBERNETES_SERVICE_PORT=" + port}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Fatalf("the Deployment's container has no read-only root filesystem")
	}
	args = append(args, "--read-only")
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	if sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Drop {
			args = append(args, "--cap-drop", string(c))
		}
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Fatalf("the Deployment does not ask runAsNonRoot")
	}
	// runAsNonRoot takes the image's user; the kubelet refuses it unless numeric and not 0.
	user := strings.TrimSpace(runTool(t, "", "docker", "image", "inspect", "--format", "{{.Config.User}}", imageTestTag))
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Fatalf("the image's user %q is not a numeric non-root uid", user)
	}
	args = append(args, "--user", user)
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.EmptyDir == nil {
			t.Fatalf("volume %s: only emptyDir volumes are translated", v.Name)
		}
		volumes[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Fatalf("volume mount %s: no such emptyDir volume", m.Name)
		}
		// Docker's tmpfs is mode 1777, as writable for the image's user as an emptyDir.
		args = append(args, "--tmpfs", m.MountPath)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			args = append(args, "-e", e.Name+"="+d.Namespace)
		case e.ValueFrom == nil:
			args = append(args, "-e", e.Name+"="+e.Value)
		default:
			t.Fatalf("env %s: its source is not translated", e.Name)
		}
	}
	return args
}

func containerRunning(t *testing.T, cid string) bool {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", "{{.State.Running}}", cid).Output()
	if err != nil {
		t.Fatal(fmt.Errorf("docker inspect %s: %w", cid, err))
	}
	return strings.TrimSpace(string(out)) == "true"
}
