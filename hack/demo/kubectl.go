package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/swarmops/swarm-operator/internal/sandbox"
	"github.com/swarmops/swarm-operator/test/testbed"
)

// cli runs what a user types: the real kubectl, with the kubectl-swarm plugin this
// repository builds on its PATH, against the demo's control plane.
type cli struct {
	dir        string
	kubeconfig string
}

// newCLI writes a kubeconfig for the test bed and builds the plugin next to it.
func newCLI(bed *testbed.Bed) (*cli, error) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		return nil, fmt.Errorf("the demo shows real kubectl output: %w", err)
	}
	dir, err := os.MkdirTemp("", "swarm-operator-demo-")
	if err != nil {
		return nil, err
	}
	c := &cli{dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig")}
	cfg := bed.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["demo"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["demo"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["demo"] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: "demo", Namespace: ns}
	kc.CurrentContext = "demo"
	if err := clientcmd.WriteToFile(*kc, c.kubeconfig); err != nil {
		c.close()
		return nil, err
	}
	root, err := sandbox.RepoRoot()
	if err != nil {
		c.close()
		return nil, err
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-swarm"), "./cmd/kubectl-swarm")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		c.close()
		return nil, fmt.Errorf("building kubectl-swarm: %w: %s", err, out)
	}
	return c, nil
}

func (c *cli) close() { _ = os.RemoveAll(c.dir) }

// kubectl prints the command as typed, then its output; a failure is shown, not
// returned (the command only shows state).
func (c *cli) kubectl(args ...string) {
	if err := c.run(args...); err != nil {
		fmt.Printf("(%v)\n", err)
	}
}

// run is kubectl for a command the demo depends on: its failure is returned.
func (c *cli) run(args ...string) error {
	fmt.Printf("\n$ kubectl %s\n", strings.Join(args, " "))
	cmd := exec.Command("kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "PATH="+c.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
