package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	swarmv1 "github.com/swarmops/swarm-operator/api/v1alpha1"
	"github.com/swarmops/swarm-operator/internal/stack"
	"github.com/swarmops/swarm-operator/internal/swarm"
)

// namingKeySecret is the Secret where the operator keeps the key of secret and config
// names (controllers/naming_key.go).
const namingKeySecret = "swarm-operator-naming-key"

func (e *env) diffCommand(g *globalFlags) *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "diff STACK [-f FILE...]",
		Short: "What a reconcile would write to the Swarm now, service by service and field by field",
		Long: `Computes, with the operator's own code and nothing written, what a reconcile of the stack
would write against the live Swarm: services created, updated (field by field) and removed,
networks, and secret and config versions created (rotations) or removed by prune once the
rollout completed. With -f the given compose files replace the stack's, in order (and
its spec.sourceRef: a stack whose files come from a Flux source is diffed with -f only).

A value that comes from a Secret is never printed, neither the new one nor the one the
running service holds: the field says "(sensitive value changed)".

Exit code 0: no change; 1: changes; 2: an error (like flux diff).

Needs get on the SwarmCluster's TLS Secret (the Swarm is reached with it) and on the
operator's naming key Secret (--operator-namespace), so that secret names match.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := e.stack(ctx, args[0])
			if err != nil {
				return err
			}
			if len(files) > 0 {
				if err := replaceFiles(s, files); err != nil {
					return withCode(ExitError, err)
				}
			}
			if ref := s.Spec.SourceRef; ref != nil {
				return withCode(ExitError, fmt.Errorf("SwarmStack %s/%s reads its compose files from %s %s: diff reads no Flux artifacts, give the files with -f",
					s.Namespace, s.Name, ref.Kind, ref.Name))
			}
			sw, err := e.openSwarm(ctx, s)
			if err != nil {
				return withCode(ExitError, err)
			}
			key, err := e.namingKey(ctx)
			if err != nil {
				return withCode(ExitError, err)
			}
			plan, err := stack.PlanStack(ctx, e.c, sw, s, key)
			if err != nil {
				return withCode(ExitError, fmt.Errorf("SwarmStack %s/%s: %w", s.Namespace, s.Name, err))
			}
			if output != "" {
				if err := printStructured(e.out, plan, output); err != nil {
					return withCode(ExitError, err)
				}
			} else {
				printPlan(e, plan)
			}
			if plan.Empty() {
				return nil
			}
			return withCode(ExitChanges, nil)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "compose file replacing the stack's, repeatable; merged in order")
	cmd.Flags().StringVarP(&output, "output", "o", "", "yaml or json (default: text)")
	return cmd
}

// replaceFiles puts the local files in place of the stack's compose files, as inline
// files named by their base names, so the plan reads them as the operator would.
func replaceFiles(s *swarmv1.SwarmStack, files []string) error {
	var out []swarmv1.ComposeFile
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("-f %s: %w", f, err)
		}
		text := string(data)
		out = append(out, swarmv1.ComposeFile{Name: filepath.Base(f), Inline: &text})
	}
	s.Spec.Compose.Files = out
	// The local files stand in for the source's too: nothing is read from an artifact.
	s.Spec.SourceRef = nil
	return nil
}

func printPlan(e *env, p stack.StackPlan) {
	if p.Empty() {
		fmt.Fprintf(e.out, "Stack %s: no changes (revision %s)\n", p.Stack, shortRevision(p.Revision))
		return
	}
	fmt.Fprintf(e.out, "Stack %s, revision %s:\n", p.Stack, shortRevision(p.Revision))
	if p.Held != "" {
		fmt.Fprintf(e.out, "note: a reconcile writes nothing now: %s\n", p.Held)
	}
	sign := map[string]string{stack.ActionCreate: "+", stack.ActionUpdate: "~", stack.ActionRemove: "-"}
	for _, s := range p.Services {
		extra := ""
		if s.Drifted {
			extra = " (changed outside the operator: restored)"
		}
		fmt.Fprintf(e.out, "%s service %s%s\n", sign[s.Action], s.Name, extra)
		for _, f := range s.Fields {
			switch {
			case f.Sensitive && f.Old == "":
				fmt.Fprintf(e.out, "    %s: + (sensitive value)\n", f.Path)
			case f.Sensitive && f.New == "":
				fmt.Fprintf(e.out, "    %s: - (sensitive value)\n", f.Path)
			case f.Sensitive:
				// Never the values, in any form: the output goes to CI logs.
				fmt.Fprintf(e.out, "    %s: (sensitive value changed)\n", f.Path)
			case f.Old == "":
				fmt.Fprintf(e.out, "    %s: + %s\n", f.Path, f.New)
			case f.New == "":
				fmt.Fprintf(e.out, "    %s: - %s\n", f.Path, f.Old)
			default:
				fmt.Fprintf(e.out, "    %s: %s -> %s\n", f.Path, f.Old, f.New)
			}
		}
	}
	for _, group := range []struct {
		kind string
		objs []stack.ObjectChange
	}{{"network", p.Networks}, {"secret", p.Secrets}, {"config", p.Configs}} {
		for _, o := range group.objs {
			line := fmt.Sprintf("%s %s %s", sign[o.Action], group.kind, o.Name)
			if o.Replaces != "" {
				line += " (new version of " + o.Replaces + ", removed once no service uses it)"
			}
			if o.Action == stack.ActionRemove {
				line += " (pruned once the rollout completed)"
			}
			fmt.Fprintln(e.out, line)
		}
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(e.out, "warning: %s\n", w)
	}
}

func (e *env) treeCommand(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "tree STACK",
		Short: "The services, networks, secrets and configs the stack owns on the Swarm",
		Long: `Lists what the stack owns on its Swarm, read live through the SwarmCluster's endpoints.
Needs get on the SwarmCluster's TLS Secret.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.stackNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := e.stack(ctx, args[0])
			if err != nil {
				return err
			}
			sw, err := e.openSwarm(ctx, s)
			if err != nil {
				return withCode(ExitError, err)
			}
			t, err := stack.StackObjects(ctx, sw, s)
			if err != nil {
				return withCode(ExitError, fmt.Errorf("SwarmStack %s/%s: %w", s.Namespace, s.Name, err))
			}
			if output != "" {
				return printStructured(e.out, t, output)
			}
			printTree(e, s, t)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "yaml or json (default: a tree)")
	return cmd
}

func printTree(e *env, s *swarmv1.SwarmStack, t stack.StackTree) {
	fmt.Fprintf(e.out, "SwarmStack/%s/%s (stack %s on SwarmCluster %s)\n", s.Namespace, s.Name, t.Stack, s.Spec.ClusterRef.Name)
	type node struct{ line string }
	var nodes []node
	for _, svc := range t.Services {
		line := fmt.Sprintf("Service/%s  %s  %s  %d/%d", svc.Name, svc.Mode, svc.Image, svc.Running, svc.Desired)
		var uses []string
		for _, n := range svc.Networks {
			uses = append(uses, "network "+n)
		}
		for _, n := range svc.Secrets {
			uses = append(uses, "secret "+n)
		}
		for _, n := range svc.Configs {
			uses = append(uses, "config "+n)
		}
		if len(uses) > 0 {
			line += "  (uses " + strings.Join(uses, ", ") + ")"
		}
		nodes = append(nodes, node{line})
	}
	for _, n := range t.Networks {
		nodes = append(nodes, node{"Network/" + n.Name})
	}
	for _, n := range t.Secrets {
		nodes = append(nodes, node{"Secret/" + n.Name})
	}
	for _, n := range t.Configs {
		nodes = append(nodes, node{"Config/" + n.Name})
	}
	w := tabwriter.NewWriter(e.out, 0, 4, 1, ' ', 0)
	for i, n := range nodes {
		branch := "├── "
		if i == len(nodes)-1 {
			branch = "└── "
		}
		fmt.Fprintln(w, branch+n.line)
	}
	_ = w.Flush()
	for _, o := range t.Others {
		owner := "no owner label: not created by the operator"
		if o.Owner != "" {
			owner = "owned by SwarmStack " + o.Owner
		}
		fmt.Fprintf(e.out, "note: %s %s carries the stack's namespace label but is not this stack's (%s)\n", o.Kind, o.Name, owner)
	}
}

// openSwarm reaches the stack's Swarm through its SwarmCluster, with the cluster's TLS
// Secret, as the operator does.
func (e *env) openSwarm(ctx context.Context, s *swarmv1.SwarmStack) (swarm.Swarm, error) {
	var cluster swarmv1.SwarmCluster
	if err := e.c.Get(ctx, ktypes.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ClusterRef.Name}, &cluster); err != nil {
		return nil, fmt.Errorf("SwarmCluster %s/%s: %w", s.Namespace, s.Spec.ClusterRef.Name, err)
	}
	if e.opts.OpenSwarm != nil {
		return e.opts.OpenSwarm(ctx, e.c, &cluster)
	}
	return OpenCluster(ctx, e.c, &cluster)
}

// OpenCluster connects to the Swarm of a SwarmCluster with its endpoints and TLS Secret.
// A refused read of the Secret says which permission is missing.
func OpenCluster(ctx context.Context, c client.Reader, cluster *swarmv1.SwarmCluster) (swarm.Swarm, error) {
	t := swarm.Target{Endpoints: cluster.Spec.Endpoints, Insecure: cluster.Spec.Insecure}
	if ref := cluster.Spec.TLSSecretRef; ref != nil {
		var sec corev1.Secret
		if err := c.Get(ctx, ktypes.NamespacedName{Namespace: cluster.Namespace, Name: ref.Name}, &sec); err != nil {
			if apierrors.IsForbidden(err) {
				return nil, fmt.Errorf("reading Secret %s/%s, the TLS Secret of SwarmCluster %s, was refused: "+
					"diff and tree reach the Swarm with the cluster's client certificate, so they need get on that Secret: %w",
					cluster.Namespace, ref.Name, cluster.Name, err)
			}
			return nil, fmt.Errorf("TLS Secret %s/%s of SwarmCluster %s: %w", cluster.Namespace, ref.Name, cluster.Name, err)
		}
		for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if len(sec.Data[k]) == 0 {
				return nil, fmt.Errorf("TLS Secret %s/%s of SwarmCluster %s has no key %q (want ca.crt, tls.crt, tls.key)", cluster.Namespace, ref.Name, cluster.Name, k)
			}
		}
		t.CA, t.Cert, t.Key = sec.Data["ca.crt"], sec.Data["tls.crt"], sec.Data["tls.key"]
	}
	conn, err := swarm.NewConn(t)
	if err != nil {
		return nil, fmt.Errorf("SwarmCluster %s: %w", cluster.Name, err)
	}
	return conn, nil
}

// namingKey reads the operator's naming key: without it the names of secrets and configs
// (and the revision) would not be the operator's, and every one would show as changed.
func (e *env) namingKey(ctx context.Context) ([]byte, error) {
	var sec corev1.Secret
	err := e.c.Get(ctx, ktypes.NamespacedName{Namespace: e.operatorNS, Name: namingKeySecret}, &sec)
	switch {
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("reading Secret %s/%s, the operator's naming key, was refused: diff needs get on it so that secret and config names match the operator's: %w",
			e.operatorNS, namingKeySecret, err)
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("Secret %s/%s (the operator's naming key) does not exist: is the operator running in namespace %s? (--operator-namespace)", //nolint:staticcheck // a name starts the sentence
			e.operatorNS, namingKeySecret, e.operatorNS)
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s/%s: %w", e.operatorNS, namingKeySecret, err)
	}
	if len(sec.Data["key"]) == 0 {
		return nil, fmt.Errorf("Secret %s/%s has no key %q", e.operatorNS, namingKeySecret, "key") //nolint:staticcheck // a name starts the sentence
	}
	return sec.Data["key"], nil
}
