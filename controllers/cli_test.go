package controllers_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/cli"
)

// `kubectl swarm` against the test control plane and the sandbox Swarm, reading a
// kubeconfig as kubectl does, reaching the Swarm through the SwarmCluster's endpoints
// and TLS Secret: reconcile --wait exits 0 on a completed rollout and 1 on a rollback;
// diff exits 0 with no change and 1 with the field that changes; tree lists the stack.

// cliStack is one replicated service with a health check whose update rolls back on
// failure: numbers-api:v5 fails its health check (it lacks a setting), so v5 rolls back.
const cliStack = `services:
  numbers-api:
    image: numbers-api:v1
    healthcheck:
      test: ["CMD", "/app", "health"]
      interval: 1s
      timeout: 3s
      retries: 2
      start_period: 1s
    deploy:
      replicas: 2
      update_config: {parallelism: 2, monitor: 10s, failure_action: rollback, order: start-first}
      rollback_config: {parallelism: 2, monitor: 1s, failure_action: continue}
`

// writeKubeconfig writes the test control plane's credentials as a kubeconfig file.
func writeKubeconfig(t *testing.T, namespace string) string {
	t.Helper()
	cfg := bed.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: namespace}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

type cliRun struct {
	code        int
	out, errOut string
}

func kubectlSwarm(t *testing.T, kubeconfig string, args ...string) cliRun {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"--kubeconfig", kubeconfig}, args...), cli.Options{Stdout: &out, Stderr: &errOut})
	t.Logf("kubectl swarm %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return cliRun{code: code, out: out.String(), errOut: errOut.String()}
}

func TestCLIReconcileWaitDiffAndTree(t *testing.T) {
	ns, cluster := newNamespace(t, "cli")
	kubeconfig := writeKubeconfig(t, ns)
	// The suite's operator keeps its naming key where an operator run by hand does.
	operatorNS := os.Getenv("POD_NAMESPACE")
	if operatorNS == "" {
		operatorNS = "default"
	}
	text := cliStack
	stack := &swarmv1.SwarmStack{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cli"},
		Spec: swarmv1.SwarmStackSpec{
			ClusterRef: swarmv1.LocalObjectReference{Name: cluster.Name},
			SwarmStackTemplateSpec: swarmv1.SwarmStackTemplateSpec{
				Version: "v1",
				Compose: swarmv1.ComposeSource{Files: []swarmv1.ComposeFile{{Name: "docker-compose.yml", Inline: &text}}},
			},
		},
	}
	if err := bed.Client.Create(context.Background(), stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStack(t, stack) })

	// v1 rolls out: reconcile --wait exits 0.
	if r := kubectlSwarm(t, kubeconfig, "reconcile", "cli", "--wait", "--timeout", "3m"); r.code != cli.ExitOK || !strings.Contains(r.out, "Completed") {
		t.Fatalf("reconcile --wait on v1: exit %d", r.code)
	}
	if r := kubectlSwarm(t, kubeconfig, "diff", "cli", "--operator-namespace", operatorNS); r.code != cli.ExitOK || !strings.Contains(r.out, "no changes") {
		t.Fatalf("diff after the rollout: exit %d (want 0: the plan must be what the operator wrote)", r.code)
	}
	if r := kubectlSwarm(t, kubeconfig, "tree", "cli"); r.code != 0 || !strings.Contains(r.out, "Service/cli_numbers-api") || !strings.Contains(r.out, "2/2") ||
		!strings.Contains(r.out, "Network/cli_default") {
		t.Fatalf("tree: exit %d", r.code)
	}
	if r := kubectlSwarm(t, kubeconfig, "get", "stack", "cli"); r.code != 0 || !strings.Contains(r.out, "cli_numbers-api") || !strings.Contains(r.out, "numbers-api:v1") {
		t.Fatalf("get stack: exit %d", r.code)
	}

	// Suspended, v5 is only a diff: exit 1 with the image field.
	if r := kubectlSwarm(t, kubeconfig, "suspend", "cli", "--timeout", "1m"); r.code != 0 {
		t.Fatalf("suspend: exit %d", r.code)
	}
	v5 := strings.Replace(cliStack, "numbers-api:v1", "numbers-api:v5", 1)
	update(t, stack, func(s *swarmv1.SwarmStack) {
		s.Spec.Version = "v5"
		s.Spec.Compose.Files[0].Inline = &v5
	})
	r := kubectlSwarm(t, kubeconfig, "diff", "cli", "--operator-namespace", operatorNS)
	if r.code != cli.ExitChanges || !strings.Contains(r.out, `TaskTemplate.ContainerSpec.Image: "numbers-api:v1" -> "numbers-api:v5"`) || !strings.Contains(r.out, "suspended") {
		t.Fatalf("diff of v5: exit %d", r.code)
	}
	// Only what the write changes: no network ID against its name, no default Swarm filled in.
	if strings.Contains(r.out, "TaskTemplate.Networks") || strings.Contains(r.out, "RollbackConfig.Order") {
		t.Fatalf("diff of v5 shows fields the write does not change")
	}
	if img := swarmImage(t, "cli_numbers-api"); !strings.HasPrefix(img, "numbers-api:v1") {
		t.Fatalf("a suspended stack was written: the swarm runs %s", img)
	}

	// Resumed, v5 rolls out and Swarm rolls it back: reconcile --wait exits 1.
	if r := kubectlSwarm(t, kubeconfig, "resume", "cli", "--timeout", "1m"); r.code != 0 {
		t.Fatalf("resume: exit %d", r.code)
	}
	r = kubectlSwarm(t, kubeconfig, "reconcile", "cli", "--wait", "--timeout", "4m")
	if r.code != cli.ExitFailed || !strings.Contains(r.errOut, swarmv1.ReasonRolledBack) {
		t.Fatalf("reconcile --wait on a rollback: exit %d, want %d with RolledBack", r.code, cli.ExitFailed)
	}
	if r := kubectlSwarm(t, kubeconfig, "history", "cli"); !strings.Contains(r.out, swarmv1.OutcomeRolledBack) || !strings.Contains(r.out, swarmv1.OutcomeCompleted) {
		t.Fatalf("history:\n%s", r.out)
	}
	if r := kubectlSwarm(t, kubeconfig, "events", "cli"); !strings.Contains(r.out, swarmv1.ReasonRolledBack) || !strings.Contains(r.out, swarmv1.EventRolloutStarted) {
		t.Fatalf("events:\n%s", r.out)
	}
	// A retry is acted on (the revision written again) and rolls back again: exit 1.
	if r := kubectlSwarm(t, kubeconfig, "retry", "cli", "--wait", "--timeout", "4m"); r.code != cli.ExitFailed || !strings.Contains(r.errOut, swarmv1.ReasonRolledBack) {
		t.Fatalf("retry --wait: exit %d, want %d with RolledBack", r.code, cli.ExitFailed)
	}
}
